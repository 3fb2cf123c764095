-- sluice.crawl.robots: robots.txt as RFC 9309 reads it. parse() keeps the groups that apply
-- to one user agent (merged; `*` when none names it); allowed() picks the longest matching
-- rule, Allow winning a tie, with `*` matching any run of characters and `$` the end. Paths
-- are compared with their percent-encoding normalized the way sluice.url writes URLs.
--
-- A hostile file must cost no more than a big honest one, so everything is bounded: the
-- body is cut at MAX_BODY; a path longer than MAX_PATH is not matched (it counts as
-- disallowed) and rules that could only match such paths are dropped; rules without `*`
-- are looked up in tables, not tried one by one; and the searches for the `*`-separated
-- pieces of the others may cost BUDGET per path, beyond which the path counts as
-- disallowed. Honest files and URLs never come near these limits.
local M = {}

--- Bytes of a robots.txt that are read (RFC 9309 2.5 asks for at least 500 KiB); a longer
-- file is cut after its last whole line within them.
M.MAX_BODY = 512 * 1024

--- The longest path (with its query) matched against the rules, in bytes.
M.MAX_PATH = 8192

--- What matching one path against the wildcard rules may cost, in the units of
-- search_cost: about 5 ms of CPU at worst. 1,000 wildcard rules against a 200-byte path
-- cost about 40,000.
M.BUDGET = 1000000

local sub, find, byte, gsub = string.sub, string.find, string.byte, string.gsub

--- The token a robots.txt user-agent line is compared with: the product name of the user
-- agent, lower case ("sluice-crawl" for "sluice-crawl/0.1 (+http://x)").
function M.token(user_agent)
  return (user_agent:match("^%s*([%w_%-]+)") or user_agent):lower()
end

-- A rule's path with percent-encoding as sluice.url writes URLs (url.c's own rule, so
-- rules and the normalized URLs they are matched against never disagree): escapes of
-- unreserved characters decoded, other escapes in upper case, bytes that may not appear
-- raw encoded, a stray '%' as %25.
local normalize_path = require("sluice.url").normalize_escapes

-- A rule's pattern compiled, or nil when its literal bytes exceed `max` (it could only
-- match longer paths). `len`, the precedence, is the length of the normalized pattern as
-- written. For matching, a run of `*` is one and a trailing `*` goes (with a `$` after it:
-- it anchors nothing), which leaves the literal pieces between the stars: `pieces[1]` must
-- start the path, the others follow in order, and with `anchored` the last one ends it.
-- `need[i]` is how many bytes pieces i.. still need (up to the anchored last one,
-- excluded), to give up as soon as they cannot fit.
local function compile(pattern, allow, max)
  local anchored = sub(pattern, -1) == "$"
  if anchored then pattern = sub(pattern, 1, -2) end
  pattern = normalize_path(pattern)
  local glob = gsub(pattern, "%*%*+", "*")
  local r = {len = #pattern + (anchored and 1 or 0), allow = allow,
             key = (anchored and "$" or "*") .. pattern}   -- (the first byte: anchored or not)
  if sub(glob, -1) == "*" then glob, anchored = sub(glob, 1, -2), false end
  local pieces = {}
  for piece in (glob .. "*"):gmatch("([^*]*)%*") do pieces[#pieces + 1] = piece end
  local n = #pieces
  local literal = #glob - (n - 1)
  if literal > max then return nil end
  if n == 1 then
    if anchored then r.exact = glob else r.prefix = glob end
    return r
  end
  local need, sum = {}, 0
  for i = (anchored and n - 1 or n), 2, -1 do
    sum = sum + #pieces[i]
    need[i] = sum
  end
  r.pieces, r.n, r.anchored, r.need, r.literal = pieces, n, anchored, need, literal
  return r
end

-- How many times each byte occurs in the path, counted when first asked for.
local function occurrences(path, counts, c)
  local k = counts[c]
  if not k then
    local ch = string.char(c)
    k = select(2, gsub(path, ch:find("%w") and ch or "%" .. ch, ""))
    counts[c] = k
  end
  return k
end

-- Costs, in units of about 5 ns of CPU: trying a wildcard rule, and a search for piece p
-- that tried `places` places of the path. A plain string.find runs memchr over them and
-- compares p at each place where p's first byte is (a long p at length), so this bounds
-- its work; the count of that byte in the whole path keeps a search for an absent or rare
-- byte cheap.
local RULE_COST = 16
local function search_cost(path, counts, places, p)
  local tries = places
  if places > 64 then tries = math.min(places, occurrences(path, counts, byte(p))) end
  return 16 + (places >> 6) + tries * (1 + (#p >> 7))
end

-- Whether the wildcard rule r matches path (of length n), and what its searches cost.
-- Pieces are found left to right, each at its first place after the previous one: for
-- patterns made of `*` only this never misses a match, so nothing is tried twice, and each
-- search starts where the last one ended.
local function matches(r, path, n, counts)
  local cost = RULE_COST
  if r.literal > n then return false, cost end
  local pieces, k = r.pieces, r.n
  local first = pieces[1]
  if first ~= "" and sub(path, 1, #first) ~= first then return false, cost end
  local limit, last = n, k
  if r.anchored then
    -- the last piece must end the path: check that first; the others must end before it
    local p = pieces[k]
    if sub(path, n - #p + 1) ~= p then return false, cost end
    limit, last = n - #p, k - 1
  end
  local pos, need = #first + 1, r.need
  for i = 2, last do
    if pos - 1 + need[i] > limit then return false, cost end
    local p = pieces[i]
    local s, e = find(path, p, pos, true)
    if not s or e > limit then
      return false, cost + search_cost(path, counts, math.max(0, n - #p - pos + 2), p)
    end
    cost = cost + search_cost(path, counts, s - pos + 1, p)
    pos = e + 1
  end
  return true, cost
end

-- Longest first; an Allow before a Disallow of the same length.
local function order(a, b)
  if a.len ~= b.len then return a.len > b.len end
  return a.allow and not b.allow
end

-- The policy made of a group's rules: all of them by precedence (`rules`), the wildcard
-- ones apart (`wild`), and the others in tables: `exact` by path, `prefix[n]` by prefix of
-- n bytes, with `lens` the prefix lengths. Of two rules with the same normalized pattern
-- the Allow always wins (same length), so a Disallow twin is dropped; of two prefix rules
-- with the same prefix ("/a" and "/a*"), the first by precedence is the one kept.
local function policy(list, delay, sitemaps)
  table.sort(list, order)
  local rules, wild, exact, prefix, lens, seen = {}, {}, {}, {}, {}, {}
  for _, r in ipairs(list) do
    if not seen[r.key] then
      seen[r.key] = true
      rules[#rules + 1] = r
      if r.exact then
        exact[r.exact] = exact[r.exact] or r
      elseif r.prefix then
        local t = prefix[#r.prefix]
        if not t then
          t = {}
          prefix[#r.prefix] = t
          lens[#lens + 1] = #r.prefix
        end
        t[r.prefix] = t[r.prefix] or r
      else
        wild[#wild + 1] = r
      end
    end
  end
  return {rules = rules, wild = wild, exact = exact, prefix = prefix, lens = lens,
          delay = delay, sitemaps = sitemaps}
end

--- Parses a robots.txt body for the user agent `token` (see M.token). Returns the policy:
-- `{rules = {...}, delay = seconds or nil, sitemaps = {...}}` (and lookup tables).
function M.parse(body, token)
  local mine, star = {}, {}         -- rules of the groups naming us, and of `*` groups
  local mine_delay, star_delay
  local sitemaps = {}
  local in_agents = false           -- inside the user-agent lines that open a group
  local named, any = false, false   -- the current group names us / is a `*` group
  local grouped = false             -- a group has started (rules before one are ignored)
  local seen_mine = false           -- some group names us: the `*` groups do not apply
  if #body > M.MAX_BODY then
    -- cut after the last whole line, so that no rule is read in part
    body = sub(body, 1, M.MAX_BODY):match("^.*[\r\n]") or ""
  end
  body = gsub(body, "^\239\187\191", "")   -- a UTF-8 BOM
  for line in body:gmatch("[^\r\n]+") do
    local key, value = gsub(line, "#.*", ""):match("^%s*([%a%-]+)%s*:%s*(.-)%s*$")
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
        target[#target + 1] = compile(value, key == "allow", M.MAX_PATH)
      elseif key == "crawl-delay" and target then
        local d = tonumber(value)
        if d and d >= 0 and d < math.huge then
          if named then mine_delay = d else star_delay = d end
        end
      end
    end
  end
  if seen_mine then return policy(mine, mine_delay, sitemaps) end
  return policy(star, star_delay, sitemaps)
end

-- Of the rule that matched so far (best, maybe nil) and r, the one that decides.
local function better(best, r)
  if not best or r.len > best.len then return r end
  if r.len == best.len and r.allow and not best.allow then return r end
  return best
end

--- Whether `path` (the path and query of a normalized URL, e.g. "/a/b?x=1") may be fetched
-- under `robots` (what parse returned). "/robots.txt" itself is always allowed. When there
-- are rules, a path longer than MAX_PATH, or one whose matching would cost more than
-- `budget` (default BUDGET), is not allowed: false and "path too long" or "too costly to
-- match".
function M.allowed(robots, path, budget)
  if #robots.rules == 0 then return true end
  -- (escapes as the rules have them: a no-op for a normalized URL's path, which is why it
  -- is skipped when there is no escape at all)
  if find(path, "%", 1, true) then path = normalize_path(path) end
  if path == "/robots.txt" then return true end
  local n = #path
  if n > M.MAX_PATH then return false, "path too long" end
  -- The rules without `*`: the exact one, if any, and a prefix one per length at most.
  local best = robots.exact[path]
  local lens, prefix = robots.lens, robots.prefix
  for i = 1, #lens do
    local len = lens[i]
    if len <= n then
      local r = prefix[len][sub(path, 1, len)]
      if r then best = better(best, r) end
    end
  end
  -- Then the wildcard rules that could still win, by precedence.
  -- (byte counts are only asked for in paths longer than 64 bytes)
  local wild, counts = robots.wild, n > 64 and {} or nil
  budget = budget or M.BUDGET
  for i = 1, #wild do
    local r = wild[i]
    if best and better(best, r) == best then break end
    local ok, cost = matches(r, path, n, counts)
    if ok then return r.allow end
    budget = budget - cost
    if budget < 0 then return false, "too costly to match" end
  end
  if best then return best.allow end
  return true
end

--- Whether one rule's pattern (what follows Allow: or Disallow:, with `*` and `$`) matches
-- `path`, as allowed() would decide it but with no limit of length or cost: for specs and
-- for fuzzing against a reference matcher.
function M.match(pattern, path)
  local r = compile(pattern, false, math.huge)
  if r.exact then return path == r.exact end
  if r.prefix then return sub(path, 1, #r.prefix) == r.prefix end
  return (matches(r, path, #path, {}))
end

--- A policy that allows everything (no robots.txt, a 4xx, or --ignore-robots).
M.allow_all = policy({}, nil, {})

return M
