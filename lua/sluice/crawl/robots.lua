-- sluice.crawl.robots: robots.txt as RFC 9309 reads it. parse() keeps the groups that apply
-- to one user agent (merged; `*` when none names it); allowed() picks the longest matching
-- rule, Allow winning a tie, with `*` matching any run of characters and `$` the end.
local M = {}

--- The token a robots.txt user-agent line is compared with: the product name of the user
-- agent, lower case ("sluice" for "sluice/0.1 (+http://x)").
function M.token(user_agent)
  return (user_agent:match("^%s*([%w_%-]+)") or user_agent):lower()
end

-- A rule's path as a matcher: plain prefixes compare with find(…, 1, true); a pattern with
-- `*` or a final `$` becomes an anchored Lua pattern.
local function compile(path, allow)
  -- Percent escapes compare in upper case, as sluice.url writes them.
  path = path:gsub("%%(%x%x)", function(h) return "%" .. h:upper() end)
  local rule = {len = #path, allow = allow}
  if not path:find("[*$]") then
    rule.prefix = path
    return rule
  end
  local anchored = path:sub(-1) == "$"
  if anchored then path = path:sub(1, -2) end
  local parts = {}
  for piece in (path .. "*"):gmatch("([^*]*)%*") do
    parts[#parts + 1] = piece:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  end
  rule.pattern = "^" .. table.concat(parts, ".-") .. (anchored and "$" or "")
  return rule
end

-- Longest first; an Allow before a Disallow of the same length.
local function order(a, b)
  if a.len ~= b.len then return a.len > b.len end
  return a.allow and not b.allow
end

--- Parses a robots.txt body for the user agent `token` (see M.token). Returns the rules:
-- `{rules = {...}, delay = seconds or nil, sitemaps = {...}}`.
function M.parse(body, token)
  local mine, star = {}, {}         -- rules of the groups naming us, and of `*` groups
  local mine_delay, star_delay
  local sitemaps = {}
  local in_agents = false           -- inside the user-agent lines that open a group
  local named, any = false, false   -- the current group names us / is a `*` group
  local grouped = false             -- a group has started (rules before one are ignored)
  local seen_mine = false           -- some group names us: the `*` groups do not apply
  -- RFC 9309 asks for at least 500 KiB to be parsed; a longer file is cut there.
  body = body:sub(1, 512 * 1024)
  for line in body:gmatch("[^\r\n]+") do
    local key, value = line:gsub("#.*", ""):match("^%s*([%a%-]+)%s*:%s*(.-)%s*$")
    key = key and key:lower()
    if key == "user-agent" then
      if not in_agents then named, any, in_agents, grouped = false, false, true, true end
      local v = value:lower()
      -- urllib.robotparser's rule: a line names us if it is part of our token.
      if v == "*" then any = true
      elseif v ~= "" and token:find(v, 1, true) then named, seen_mine = true, true end
    elseif key == "sitemap" then
      sitemaps[#sitemaps + 1] = value
    elseif key then
      in_agents = false
      local target = grouped and (named and mine or any and star) or nil
      if (key == "allow" or key == "disallow") and target and value ~= "" then
        -- (an empty Disallow allows everything: it adds no rule)
        target[#target + 1] = compile(value, key == "allow")
      elseif key == "crawl-delay" and target then
        local d = tonumber(value)
        if d and d >= 0 then
          if named then mine_delay = d else star_delay = d end
        end
      end
    end
  end
  local rules, delay
  if seen_mine then rules, delay = mine, mine_delay
  else rules, delay = star, star_delay end
  table.sort(rules, order)
  return {rules = rules, delay = delay, sitemaps = sitemaps}
end

--- Whether `path` (the path and query of a normalized URL, e.g. "/a/b?x=1") may be fetched
-- under `robots` (what parse returned). "/robots.txt" itself is always allowed.
function M.allowed(robots, path)
  if path == "/robots.txt" then return true end
  local rules = robots.rules
  for i = 1, #rules do
    local r = rules[i]
    local hit
    if r.prefix then hit = path:sub(1, r.len) == r.prefix
    else hit = path:find(r.pattern) ~= nil end
    if hit then return r.allow end
  end
  return true
end

--- A policy that allows everything (no robots.txt, a 4xx, or --ignore-robots).
M.allow_all = {rules = {}, sitemaps = {}}

return M
