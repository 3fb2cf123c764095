-- testsite_spec.lua: scripts/testsite.lua, the crawler's synthetic site, checked over HTTP on
-- loopback: robots.txt, faults, redirects, stats, and a small reference crawl (its own URL
-- resolver and robots matcher) that must find exactly what site:expected() promises.
local sl = require "sluice"
local http = require "sluice.http"
local H = require "spec.helpers"
local testsite = H.testsite()

local get = H.get

---------------------------------------------------------------------------------------------
-- An independent reading of URLs (RFC 3986 5.2 and 6.2), HTML links and robots.txt.

local function split(ref)
  local scheme, rest = ref:match("^(%a[%w+.-]*):(.*)$")
  rest = (rest or ref):gsub("#.*$", "")
  local path, query = rest:match("^([^?]*)%?(.*)$")
  if path then rest = path end
  local auth, p = rest:match("^//([^/]*)(.*)$")
  return scheme and scheme:lower(), auth, auth and p or rest, query
end

local function remove_dots(input)
  local out = {}
  while input ~= "" do
    if input:find("^%.%.?/") then input = input:gsub("^%.%.?/", "")
    elseif input:find("^/%./") or input == "/." then input = "/" .. input:sub(4)
    elseif input:find("^/%.%./") or input == "/.." then input = "/" .. input:sub(5); out[#out] = nil
    elseif input == "." or input == ".." then input = ""
    else
      local seg = input:match("^/?[^/]*")
      out[#out + 1], input = seg, input:sub(#seg + 1)
    end
  end
  return table.concat(out)
end

-- The normalized absolute URL of `ref` read against `base`; nil unless it is http.
local function absolute(base, ref)
  local bs, ba, bp, bq = split(base)
  local s, a, p, q = split(ref)
  if not s then
    if a then s = bs
    elseif p == "" then s, a, p, q = bs, ba, bp, q or bq
    elseif p:sub(1, 1) == "/" then s, a = bs, ba
    else s, a, p = bs, ba, bp:match("^(.*/)") .. p end
  end
  if s ~= "http" then return nil end
  p = remove_dots(p):gsub("%%(%x%x)", function(hex)
    local c = string.char(tonumber(hex, 16))
    return c:find("^[%w%-%._~]$") and c or "%" .. hex:upper()
  end)
  return "http://" .. a:lower():gsub(":80$", "") .. (p == "" and "/" or p) ..
    (q and q ~= "" and "?" .. q or "")
end

-- The <base href> and the a/area/link hrefs of an HTML body (comments skipped).
local function extract(body)
  local base, hrefs = nil, {}
  for tag, attrs in body:gsub("<!%-%-.-%-%->", ""):gmatch("<(%a+)([^>]*)>") do
    tag = tag:lower()
    local href = attrs:match('[Hh][Rr][Ee][Ff]="([^"]*)"') or attrs:match("[Hh][Rr][Ee][Ff]='([^']*)'")
    href = href and href:gsub("&quot;", '"'):gsub("&amp;", "&")
    if href and tag == "base" then base = base or href
    elseif href and (tag == "a" or tag == "area" or tag == "link") then hrefs[#hrefs + 1] = href end
  end
  return base, hrefs
end

-- The Allow/Disallow rules of robots.txt's `*` group.
local function robots_rules(body)
  local rules, in_agents, star = {}, false, false
  for line in body:gmatch("[^\r\n]+") do
    local k, v = line:gsub("#.*", ""):match("^%s*([%a-]+)%s*:%s*(.-)%s*$")
    k = k and k:lower()
    if k == "user-agent" then
      if not in_agents then star = false end
      in_agents, star = true, star or v == "*"
    elseif k then
      in_agents = false
      if star and (k == "allow" or k == "disallow") and v ~= "" then
        local anchored = v:sub(-1) == "$"
        local pat = (anchored and v:sub(1, -2) or v):gsub("%p", "%%%0"):gsub("%%%*", ".-")
        rules[#rules + 1] = {allow = k == "allow", len = #v, pat = "^" .. pat .. (anchored and "$" or "")}
      end
    end
  end
  return rules
end

local function allowed(rules, pq)
  local best, allow = -1, true
  for _, r in ipairs(rules) do
    if pq:find(r.pat) and (r.len > best or r.len == best and r.allow) then best, allow = r.len, r.allow end
  end
  return allow
end

-- Crawls the site breadth-first as a correct crawler would (robots.txt, links as written,
-- Location as a link, 5xx and 429 retried at once up to 3 times) and returns url -> status,
-- the set of disallowed URLs it saw, and the number of link mismatches with site:links().
local function crawl(site)
  local client = http.client{max_per_host = 8, max_redirects = 0}
  finally(function() client:close() end)
  local rules, ours = {}, {[site.dead] = true}
  for _, o in ipairs(site.hosts) do
    rules[o], ours[o] = robots_rules(get(o .. "/robots.txt").body), true
  end
  local found, disallowed, mismatches, level = {}, {}, 0, {}
  local function see(url)
    local origin, pq = url:match("^(http://[^/]+)(.*)$")
    if not ours[origin] or found[url] or disallowed[url] then return end
    if rules[origin] and not allowed(rules[origin], pq) then disallowed[url] = true; return end
    found[url], level[#level + 1] = true, url
  end
  local function fetch(url)
    local res, err
    for _ = 1, 4 do
      res, err = client:get(url)
      if not res or (res.status < 500 and res.status ~= 429) then break end
    end
    if not res then found[url] = "error"; return end
    found[url] = res.status
    if res.headers.location then see(absolute(url, res.headers.location)) end
    if res.status ~= 200 or not res.headers["content-type"]:find("^text/html") then return end
    local base, hrefs = extract(res.body)
    base = base and absolute(url, base) or url
    local mine, theirs = {}, {}
    for _, href in ipairs(hrefs) do
      local u = absolute(base, href)
      if u then mine[#mine + 1] = u; see(u) end
    end
    for _, l in ipairs(select(2, site:links(url))) do theirs[#theirs + 1] = l.url end
    table.sort(mine)
    table.sort(theirs)
    if table.concat(mine, " ") ~= table.concat(theirs, " ") then mismatches = mismatches + 1 end
  end
  for _, seed in ipairs(site.seeds) do see(seed) end
  while #level > 0 do
    local jobs = {}
    for i, url in ipairs(level) do jobs[i] = function() fetch(url) end end
    level = {}
    sl.gather(jobs)
  end
  return found, disallowed, mismatches
end

---------------------------------------------------------------------------------------------

describe("testsite", function()
  it("serves robots.txt with a badbot group, an Allow inside a Disallow, * and $ rules", function()
    local site = H.site{hosts = 2, pages = 20, crawl_delay = 0.05}
    local res = get(site.hosts[1] .. "/robots.txt")
    assert.equals(200, res.status)
    assert.matches("^text/plain", res.headers["content-type"])
    local body = res.body
    assert.matches("User%-agent: badbot\nDisallow: /\n\nUser%-agent: %*\n", body)
    for _, line in ipairs{"Disallow: /private/", "Allow: /private/open/", "Disallow: /old$",
                          "Disallow: /*?sort=", "Crawl-delay: 0.05"} do
      assert.truthy(body:find("\n" .. line .. "\n", 1, true), line)
    end
    assert.falsy(get(site.hosts[2] .. "/robots.txt").body:find("Crawl-delay", 1, true))
    local rules = robots_rules(body)
    assert.is_false(allowed(rules, "/private/1.html"))
    assert.is_true(allowed(rules, "/private/open/1.html"))
    assert.is_false(allowed(rules, "/old"))
    assert.is_true(allowed(rules, "/old/1.html"))
    assert.is_false(allowed(rules, "/p/3.html?sort=date"))
    assert.same({1, 1}, {site:stats().robots[site.hosts[1]], site:stats().robots[site.hosts[2]]})
  end)

  it("writes pages whose links, read as written, are site:links()'s", function()
    local site = H.site{hosts = 2, pages = 40}
    local res = get(site.seeds[1])
    assert.equals(200, res.status)
    assert.matches("^text/html", res.headers["content-type"])
    assert.matches("<title>Page 0 of host 1 %- sluice test site</title>", res.body)
    assert.is_true(#res.body > 300)
    local base, hrefs = extract(res.body)
    assert.is_nil(base)
    local _, links = site:links(site.seeds[1])
    local written = {}
    for _, l in ipairs(links) do
      if l.tag ~= "comment" then written[#written + 1] = l.href end
      if l.url then assert.equals(l.url, absolute(site.seeds[1], l.href)) end
    end
    assert.same(written, hrefs)
    assert.equals(site.hosts[1] .. "/p/1.html", links[2].url)   -- the first child
    -- a dot segment, an escaped digit and a fragment: the same page
    assert.equals(get(site.hosts[1] .. "/p/12.html").body, get(site.hosts[1] .. "/x/../p/%31%32.html#a").body)
  end)

  it("answers 500 to a flaky page N times, then 200; 429 and 503 with Retry-After", function()
    local site = H.site{hosts = 2, pages = 30}
    local o = site.hosts[1]
    local retries = site:retries()
    assert.same({[o .. "/flaky/1.html"] = 1, [o .. "/flaky/2.html"] = 2, [o .. "/busy/1.html"] = 1,
      [o .. "/unavailable.html"] = 1, [o .. "/fail.html"] = math.huge,
      [site.hosts[2] .. "/flaky/1.html"] = 1, [site.hosts[2] .. "/flaky/2.html"] = 2,
      [site.hosts[2] .. "/busy/1.html"] = 1}, retries)
    local seq = {}
    for i = 1, 4 do seq[i] = get(o .. "/flaky/2.html").status end
    assert.same({500, 500, 200, 200}, seq)
    local busy = get(o .. "/busy/1.html")
    assert.same({429, "1"}, {busy.status, busy.headers["retry-after"]})
    assert.equals(200, get(o .. "/busy/1.html").status)
    local unavailable = get(o .. "/unavailable.html")
    assert.equals(503, unavailable.status)
    assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", unavailable.headers["retry-after"])
    assert.equals(200, get(o .. "/unavailable.html").status)
    for _ = 1, 5 do assert.equals(500, get(o .. "/fail.html").status) end
    site:reset()
    assert.equals(500, get(o .. "/flaky/2.html").status)
  end)

  it("redirects, serves files and 404s, and links a port where nothing listens", function()
    local site = H.site{hosts = 2, pages = 30}
    local o = site.hosts[1]
    local r1 = get(o .. "/r/1")
    assert.same({301, "/moved/1.html"}, {r1.status, r1.headers.location})
    assert.matches("^" .. o:gsub("%p", "%%%0") .. "/", get(o .. "/r/2").headers.location)
    assert.matches("^%.%./", get(o .. "/r/3").headers.location)
    local r4 = get(o .. "/r/4")
    assert.equals(302, r4.status)
    assert.equals(site.hosts[2], r4.headers.location:match("^http://[^/]+"))
    local bin = get(o .. "/files/1.bin")
    assert.same({200, "application/octet-stream", 1024}, {bin.status, bin.headers["content-type"], #bin.body})
    assert.matches("^text/plain", get(o .. "/files/2.txt").headers["content-type"])
    for _, path in ipairs{"/missing/1.html", "/p/30.html", "/p/0.html", "/nope"} do
      assert.equals(404, get(o .. path).status, path)
    end
    local expected = site:expected()
    assert.equals("error", expected[site.dead .. "/"])
    local res, err, code = http.get(site.dead .. "/")
    assert.is_nil(res)
    assert.equals("ECONNREFUSED", code, err)
  end)

  it("counts requests per URL and the peak of requests in flight per host", function()
    local site = H.site{hosts = 1, pages = 10}
    local o = site.hosts[1]
    local s = site:stats()
    assert.same({0, 0, 0}, {s.requests, s.max_inflight[o], s.inflight[o]})
    local t1 = sl.spawn(get, o .. "/slow/1.html")
    local t2 = sl.spawn(get, o .. "/slow/2.html")
    assert.same({200, 200}, {t1:join().status, t2:join().status})
    get(o .. "/")
    get(o .. "/p/%31.html")
    get(o .. "/p/1.html?")
    get(o .. "/robots.txt")
    s = site:stats()
    assert.same({6, 2, 0, 1}, {s.requests, s.max_inflight[o], s.inflight[o], s.robots[o]})
    assert.same({[o .. "/slow/1.html"] = 1, [o .. "/slow/2.html"] = 1, [o .. "/"] = 1,
      [o .. "/p/1.html"] = 2}, s.by_path)
    site:reset_stats()
    s = site:stats()
    assert.same({0, 0, {}}, {s.requests, s.max_inflight[o], s.by_path})
  end)

  it("expects every page, the features' URLs and nothing disallowed", function()
    local site = H.site{hosts = 3, pages = 200}
    local expected, disallowed = site:expected(), site:disallowed()
    -- 19 feature URLs a host, 4 more on the first (503, always 500, 302, the closed port)
    assert.equals(3 * (200 + 19) + 4, H.nkeys(expected))
    for _, seed in ipairs(site.seeds) do assert.equals(200, expected[seed]) end
    for h = 1, 3 do
      for n = 0, 199 do assert.equals(200, expected[site.hosts[h] .. testsite.page_path(n)]) end
    end
    assert.equals(3 * 4, #disallowed)
    for _, url in ipairs(disallowed) do
      assert.is_nil(expected[url])
      assert.truthy(url:find("/private/%d") or url:find("/old$") or url:find("%?sort="), url)
    end
    local by_status = {}
    for _, st in pairs(expected) do by_status[st] = (by_status[st] or 0) + 1 end
    -- per host: 13 answer 200, 3 are 301s and 3 404s
    assert.same({[200] = 3 * 213 + 1, [404] = 9, [301] = 9, [302] = 1, [500] = 1, error = 1}, by_status)
  end)

  it("is found exactly by a crawl that reads the links as written", function()
    local site = H.site{hosts = 3, pages = 150, crawl_delay = 0.05}
    local found, disallowed, mismatches = crawl(site)
    assert.equals(0, mismatches)
    assert.same(site:expected(), found)
    local list = {}
    for url in pairs(disallowed) do list[#list + 1] = url end
    table.sort(list)
    assert.same(site:disallowed(), list)
    local s = site:stats()
    local retries = site:retries()
    for url, n in pairs(s.by_path) do
      assert.equals(math.min(1 + (retries[url] or 0), 4), n, url)
      assert.is_nil(disallowed[url], url)
    end
    assert.equals(H.nkeys(found) - 1, H.nkeys(s.by_path))   -- all but the closed port's URL
  end, {timeout = 10})

  it("gives the same pages for the same seed, other pages for another", function()
    local a, b = H.site{hosts = 2, pages = 50, seed = 7}, H.site{hosts = 2, pages = 50, seed = 7}
    local c = H.site{hosts = 2, pages = 50, seed = 8}
    -- Ports differ from site to site: they are written as HOST<index>.
    local function unport(site, s)
      for i, o in ipairs(site.hosts) do s = s:gsub(o:match("//(.*)"):gsub("%p", "%%%0"), "HOST" .. i) end
      return (s:gsub(site.dead:match("//(.*)"):gsub("%p", "%%%0"), "DEAD"))
    end
    local function page(site, h, path) return unport(site, get(site.hosts[h] .. path).body) end
    for _, path in ipairs{"/", "/p/17.html", "/p/49.html", "/old/1.html", "/r/3"} do
      assert.equals(page(a, 2, path), page(b, 2, path), path)
    end
    assert.are_not.equal(page(a, 1, "/p/17.html"), page(c, 1, "/p/17.html"))
    local function expected(site)
      local t = {}
      for url, st in pairs(site:expected()) do t[unport(site, url)] = st end
      return t
    end
    assert.same(expected(a), expected(b))
  end)

  it("in plain mode has only 200 pages, every one linked, robots allowing all", function()
    local site = H.site{hosts = 2, pages = 300, plain = true}
    local robots = get(site.hosts[1] .. "/robots.txt").body
    assert.same({}, robots_rules(robots))
    local found, disallowed, mismatches = crawl(site)
    assert.same({0, {}}, {mismatches, disallowed})
    assert.equals(2 * 300, H.nkeys(found))
    for _, st in pairs(found) do assert.equals(200, st) end
    assert.same(site:expected(), found)
    assert.same({}, site:retries())
    for _, n in pairs(site:stats().by_path) do assert.equals(1, n) end
  end)

  it("runs as a script: seeds on stdout and in the seeds file, usage errors exit 2", function()
    local r = H.run{"scripts/testsite.lua", "--pages", "0"}
    assert.equals(2, r.code)
    assert.matches("testsite: %-%-pages must be an integer >= 1\nusage: ", r.err)
    r = H.run{"scripts/testsite.lua", "--bogus"}
    assert.equals(2, r.code)
    local file = os.tmpname()
    os.remove(file)
    finally(function() os.remove(file) end)
    -- Runs the site for a moment: `timeout` ends it like SIGTERM would.
    local out, code = H.sh("timeout --preserve-status -s INT 1 " .. H.quote(H.bin) ..
      " scripts/testsite.lua --hosts 2 --pages 10 --seeds-file " .. H.quote(file) .. " 2>/dev/null")
    assert.equals(130, code)
    assert.matches("^http://127%.0%.0%.1:%d+/\nhttp://127%.0%.0%.1:%d+/\n$", out)
    assert.equals(out, H.read_file(file))
  end)
end)
