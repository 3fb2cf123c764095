-- sluice.crawl.robots: robots.txt as RFC 9309 reads it. parse() keeps the groups that apply
-- to one user agent (merged; `*` when none names it); allowed() picks the longest matching
-- rule, Allow winning a tie, with `*` matching any run of characters and `$` the end. Paths
-- are compared with their percent-encoding normalized the way sluice.url writes URLs.
local M = {}

--- The token a robots.txt user-agent line is compared with: the product name of the user
-- agent, lower case ("sluice-crawl" for "sluice-crawl/0.1 (+http://x)").
function M.token(user_agent)
  return (user_agent:match("^%s*([%w_%-]+)") or user_agent):lower()
end

local UNRESERVED = "[%w%-%._~]"

-- A rule's path with percent-encoding as sluice.url writes it: escapes of unreserved
-- characters decoded, other escapes in upper case, bytes that may not appear raw encoded.
local function normalize_path(path)
  path = path:gsub("%%(%x%x)", function(h)
    local c = string.char(tonumber(h, 16))
    if c:find(UNRESERVED) then return c end
    return "%" .. h:upper()
  end)
  return (path:gsub('[%c%s"<>\\^`{|}\128-\255]', function(c)
    return string.format("%%%02X", c:byte())
  end))
end

-- A rule's path as a matcher: the pieces between `*`s, matched left to right, each at its
-- first place after the previous one (which is enough for `*`-only patterns: no
-- backtracking, so a hostile robots.txt costs linear time), and `$` anchoring the end.
local function compile(path, allow)
  local anchored = path:sub(-1) == "$"
  if anchored then path = path:sub(1, -2) end
  path = normalize_path(path)
  local rule = {len = #path + (anchored and 1 or 0), allow = allow, anchored = anchored}
  local pieces = {}
  for piece in (path .. "*"):gmatch("([^*]*)%*") do pieces[#pieces + 1] = piece end
  if #pieces == 1 and not anchored then rule.prefix = pieces[1] end
  rule.pieces = pieces
  return rule
end

local function matches(rule, path)
  if rule.prefix then return path:sub(1, #rule.prefix) == rule.prefix end
  local pieces, n = rule.pieces, #rule.pieces
  local first = pieces[1]
  if path:sub(1, #first) ~= first then return false end
  if n == 1 then return #path == #first end   -- "/x$": the whole path
  local pos = #first + 1
  for i = 2, n - 1 do
    local p = pieces[i]
    if p ~= "" then
      local s, e = path:find(p, pos, true)
      if not s then return false end
      pos = e + 1
    end
  end
  local last = pieces[n]
  if rule.anchored then
    if last == "" then return true end   -- "…*$": anything may follow
    local start = #path - #last + 1
    return start >= pos and path:sub(start) == last
  end
  return last == "" or path:find(last, pos, true) ~= nil
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
  body = body:sub(1, 512 * 1024):gsub("^\239\187\191", "")   -- and a UTF-8 BOM dropped
  for line in body:gmatch("[^\r\n]+") do
    local key, value = line:gsub("#.*", ""):match("^%s*([%a%-]+)%s*:%s*(.-)%s*$")
    key = key and key:lower()
    if key == "user-agent" then
      if not in_agents then named, any, in_agents, grouped = false, false, true, true end
      -- The product token of the line, compared without case (RFC 9309 2.2.1).
      local v = (value:match("^[%w_%-*]+") or ""):lower()
      if v == "*" then any = true
      elseif v == token then named, seen_mine = true, true end
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
        if d and d >= 0 and d < math.huge then
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
    if matches(r, path) then return r.allow end
  end
  return true
end

--- A policy that allows everything (no robots.txt, a 4xx, or --ignore-robots).
M.allow_all = {rules = {}, sitemaps = {}}

return M
