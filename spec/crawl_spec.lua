-- crawl_spec.lua: sluice.crawl and scripts/crawl.lua against scripts/testsite.lua and small
-- servers started here on 127.0.0.1: every reachable allowed page exactly once, robots.txt,
-- per-host limits and delays, retries with Retry-After, scope, spilling, and kill -9 / Ctrl-C
-- with --state resuming without loss.
local sl = require "sluice"
local http = require "sluice.http"
local crawl = require "sluice.crawl"
local cjson = require "cjson"
local H = require "spec.helpers"

local testsite = H.testsite()

local devnull = assert(io.open("/dev/null", "w"))

-- A record from its JSON line, with JSON nulls as nil.
local function decode(line)
  local r = cjson.decode(line)
  for k, v in pairs(r) do
    if v == cjson.null then r[k] = nil end
  end
  return r
end

-- Runs a crawl in this process; returns the records (in order), by URL, and the summary.
local function run(opts)
  local recs, by_url = {}, {}
  opts.out = function(line, rec)
    local r = decode(line)
    assert.equals(rec.url, r.url)
    recs[#recs + 1] = r
    assert.is_nil(by_url[r.url], "two records for " .. r.url)
    by_url[r.url] = r
  end
  opts.status = false
  opts.log = opts.log or devnull
  opts.backoff = opts.backoff or 0.01
  local summary = crawl.run(opts)
  return recs, by_url, summary
end

local poll = H.poll

local function count_lines(path)
  return H.count("\n", H.read_file(path))
end

-- Starts scripts/crawl.lua on the site with a state directory, slowly (limit 2, 1 per host),
-- and waits until `lines` records are out. Returns the state dir, the output, the
-- arguments (to run the same command again) and the process.
local function crawl_stateful(site, lines)
  local dir = os.tmpname()
  os.remove(dir)
  local out = dir .. ".jsonl"
  local args = {"scripts/crawl.lua", "--limit", "2", "--per-host", "1", "--state", dir,
                "--out", out}
  for _, s in ipairs(site.seeds) do args[#args + 1] = s end
  local p = H.spawn(args)
  assert.is_true(poll(function() return count_lines(out) >= lines or H.exited(p) end, 20))
  assert.is_nil(H.exited(p), "the crawl ended before it could be stopped")
  return dir, out, args, p
end

-- The records of an output file, checking that no URL has two: a set of URLs and a count.
local function read_records(out)
  local seen, n = {}, 0
  for line in io.lines(out) do
    local r = decode(line)
    assert.is_nil(seen[r.url], "two records for " .. r.url)
    seen[r.url] = true
    n = n + 1
  end
  return seen, n
end

describe("crawl against the test site", function()
  local site
  before_each(function() site = testsite.start{hosts = 3, pages = 150, seed = 7} end)
  after_each(function() site:close() end)

  it("fetches every reachable allowed page exactly once, and nothing disallowed", function()
    local recs, by_url, summary = run{seeds = site.seeds, limit = 12, per_host = 3}
    local expected = site:expected()
    local missing, extra, wrong = {}, {}, {}
    for u, status in pairs(expected) do
      local r = by_url[u]
      if not r then missing[#missing + 1] = u
      elseif status == "error" then
        if r.error == nil or r.status ~= nil then wrong[#wrong + 1] = u end
      elseif r.status ~= status then
        wrong[#wrong + 1] = u .. " " .. tostring(r.status) .. " ~= " .. status
      end
    end
    for u in pairs(by_url) do
      if expected[u] == nil then extra[#extra + 1] = u end
    end
    assert.same({}, missing)
    assert.same({}, extra)
    assert.same({}, wrong)
    assert.equals(#recs, summary.pages)
    local stats = site:stats()
    for _, u in ipairs(site:disallowed()) do
      assert.is_nil(stats.by_path[u], "disallowed " .. u .. " was fetched")
    end
    assert.is_true(#site:disallowed() > 0)
    assert.is_true(summary.disallowed > 0)
    for _, origin in ipairs(site.hosts) do
      assert.equals(1, stats.robots[origin], "robots.txt of " .. origin)
      assert.is_true(stats.max_inflight[origin] <= 3, origin .. " had "
                     .. stats.max_inflight[origin] .. " requests at once")
    end
    -- Retries: the flaky pages were asked more than once and ended well; the rest once.
    local retried = 0
    for path, n in pairs(stats.by_path) do
      local rec = by_url[path]
      if n > 1 then
        retried = retried + 1
        assert.is_truthy(rec, path)
        assert.is_true(rec.status == 200 or rec.status == 500, path)
      end
    end
    assert.is_true(retried >= 2)
    assert.is_true(summary.retries >= retried)
    -- Records have every field; the always-failing page is recorded with its error.
    for _, r in ipairs(recs) do
      assert.is_number(r.depth)
      assert.is_number(r.bytes)
      assert.is_number(r.links)
      assert.is_number(r.time)
      if r.status == 500 then assert.is_string(r.error) end
    end
  end)

  it("keeps to the depth limit and the page limit", function()
    local recs = run{seeds = site.seeds, limit = 8, per_host = 2, depth = 1}
    local depths = {}
    for _, r in ipairs(recs) do depths[r.depth] = (depths[r.depth] or 0) + 1 end
    assert.equals(#site.seeds, depths[0])
    assert.is_true((depths[1] or 0) > 0)
    assert.is_nil(depths[2])
    local limited = run{seeds = site.seeds, limit = 8, per_host = 2, max_pages = 25}
    assert.equals(25, #limited)
  end)

  it("stays on the seeds' hosts with same_host, and applies allow and deny", function()
    local recs = run{seeds = {site.seeds[1]}, limit = 8, per_host = 2, same_host = true}
    for _, r in ipairs(recs) do
      assert.equals(1, r.url:find(site.hosts[1], 1, true), r.url)
    end
    local denied = run{seeds = site.seeds, limit = 8, per_host = 2, deny = {"/r/"},
                       allow = {"^http://127%.0%.0%.1:%d+/"}}
    for _, r in ipairs(denied) do assert.is_nil(r.url:find("/r/", 1, true), r.url) end
  end)

  it("gives the same result when the frontier spills to disk", function()
    local _, all = run{seeds = site.seeds, limit = 8, per_host = 2}
    site:reset()
    local _, spilled = run{seeds = site.seeds, limit = 8, per_host = 2, max_queued = 20}
    local a, b = {}, {}
    for u in pairs(all) do a[#a + 1] = u end
    for u in pairs(spilled) do b[#b + 1] = u end
    table.sort(a)
    table.sort(b)
    assert.same(a, b)
  end)

  it("finds the same URLs with a Bloom filter as its seen set", function()
    local _, exact = run{seeds = site.seeds, limit = 8, per_host = 2}
    site:reset()
    local _, bloom, summary = run{seeds = site.seeds, limit = 8, per_host = 2, seen = "bloom",
                                  capacity = 10000, fp_rate = 1e-9}
    for u in pairs(exact) do assert.is_truthy(bloom[u], u) end
    for u in pairs(bloom) do assert.is_truthy(exact[u], u) end
    assert.is_true(summary.seen_bytes < 10000 * 8)
  end)

  it("guards its state directory: one crawl at a time, and the same output", function()
    local dir = os.tmpname()
    os.remove(dir)
    local a, b = dir .. ".a.jsonl", dir .. ".b.jsonl"
    local function crawl_to(out, extra)
      local opts = {seeds = site.seeds, state = dir, out = out, max_pages = 5, status = false,
                    log = devnull}
      for k, v in pairs(extra or {}) do opts[k] = v end
      return pcall(crawl.run, opts)
    end
    assert.is_true(crawl_to(a))
    local ok, err = crawl_to(b)
    assert.is_false(ok)
    H.has("wrote its records to " .. a .. "; resume it with the same output", err)
    -- A lock held by a live process (this one) refuses a second crawl.
    local me = H.read_file("/proc/self/stat"):match("^%d+")
    os.execute("mkdir " .. H.quote(dir .. "/lock"))
    H.write_file(dir .. "/lock/pid", me .. "\n")
    local r = H.run({"scripts/crawl.lua", "--state", dir, "--out", a, site.seeds[1]})
    assert.equals(1, r.code)
    H.has("crawl: the state directory " .. dir .. " is in use by process " .. me, r.err)
    -- The lock of a process that is gone (kill -9) is taken over.
    H.write_file(dir .. "/lock/pid", "999999999\n")
    assert.is_true(crawl_to(a, {max_pages = 10}))
    assert.equals(10, count_lines(a))
    assert.is_falsy(os.rename(dir .. "/lock", dir .. "/lock"), "the lock was not released")
    os.execute("rm -rf " .. H.quote(dir) .. " " .. H.quote(a) .. " " .. H.quote(b))
  end)

  it("with a state directory, appends to what the output held and does not requeue "
     .. "disallowed URLs", function()
    local dir = os.tmpname()
    os.remove(dir)
    local out = dir .. ".jsonl"
    H.write_file(out, "earlier line\n")
    local opts = {seeds = site.seeds, state = dir, out = out, status = false, log = devnull}
    local first = crawl.run(opts)
    assert.is_true(first.disallowed > 0)
    assert.equals("earlier line\n", H.read_file(out):sub(1, 13))
    local again = crawl.run(opts)
    assert.equals(0, again.pages)
    assert.equals(0, again.queued)
    assert.equals(first.pages + 1, count_lines(out))
    os.execute("rm -rf " .. H.quote(dir) .. " " .. H.quote(out))
  end)

  it("a cancelled crawl stops its fetches, writes its summary and re-raises", function()
    local logpath = os.tmpname()
    local log = assert(io.open(logpath, "w"))
    local pages, crawler_task = 0, nil
    crawler_task = sl.spawn(function()
      return run{seeds = site.seeds, limit = 8, per_host = 3, log = log,
                 handler = function()
                   pages = pages + 1
                   if pages == 20 then crawler_task:cancel() end
                 end}
    end)
    assert.is_true(crawler_task:wait(10))
    assert.equals("cancelled", crawler_task:status())
    log:close()
    H.has("crawl: interrupted: ", H.read_file(logpath))
    os.remove(logpath)
  end)

  it("scripts/crawl.lua applies its options", function()
    local out = os.tmpname()
    local seeds = H.tmpfile(table.concat(site.seeds, "\n") .. "\n# a comment\n")
    local p = H.spawn({"scripts/crawl.lua", "--depth", "3", "--same-host", "--ignore-robots",
                       "--user-agent", "testbot/1", "--limit", "4", "--per-host=2", "--delay", "0",
                       "--out", out, "-f", seeds})
    assert.equals(0, H.wait(p, 30), H.read_file(p.err))
    local seen, n = read_records(out)
    local everything = 0
    for _ in pairs(site:expected()) do everything = everything + 1 end
    assert.is_true(n > #site.seeds and n < everything, n .. " records")
    local origins = {}
    for _, o in ipairs(site.hosts) do origins[o] = true end
    for line in io.lines(out) do
      local r = decode(line)
      assert.is_true(r.depth <= 3, r.url)
      assert.is_true(origins[r.url:match("^http://[^/]+")] ~= nil, r.url)
    end
    local stats = site:stats()
    for _, o in ipairs(site.hosts) do assert.equals(0, stats.robots[o] or 0) end
    local disallowed_fetched = 0
    for _, u in ipairs(site:disallowed()) do
      if seen[u] then disallowed_fetched = disallowed_fetched + 1 end
    end
    assert.is_true(disallowed_fetched > 0, "--ignore-robots fetched nothing robots.txt forbids")
    H.has("crawl: done: " .. n .. " pages", H.read_file(p.err))
    os.remove(out)
    os.remove(seeds)
  end)

  it("draws a live status line when stderr is a terminal", function()
    local tty, done = os.tmpname(), os.tmpname()
    os.remove(done)
    local cmd = {H.quote(H.bin), "scripts/crawl.lua", "--per-host", "4", "--out", "/dev/null"}
    for _, seed in ipairs(site.seeds) do cmd[#cmd + 1] = seed end
    -- script(1) gives the crawl a pseudo-terminal and copies what it draws to a file
    os.execute(("(script -qfec %s %s >/dev/null 2>&1 </dev/null; echo $? >%s) &")
               :format(H.quote(table.concat(cmd, " ")), H.quote(tty), H.quote(done)))
    assert.is_true(poll(function() return H.read_file(done):find("\n") ~= nil end, 30))
    local screen = H.read_file(tty)
    H.has("\r\27[Kcrawl: ", screen)
    H.has(" in flight, ", screen)
    H.has("crawl: done: ", screen)
    os.remove(tty)
    os.remove(done)
  end)

  it("resumes after kill -9 without losing or refetching anything", function()
    local dir, out, args, p = crawl_stateful(site, 60)
    os.execute("kill -9 " .. p.pid)
    H.wait(p, 10)
    local before = count_lines(out)
    local done_at_kill = {}
    for u in H.read_file(dir .. "/journal"):gmatch("\n=\t([^\t]+)") do done_at_kill[u] = true end
    local fetched_before = {}
    for path, n in pairs(site:stats().by_path) do fetched_before[path] = n end
    local q = H.spawn(args)
    assert.equals(0, H.wait(q, 40), H.read_file(q.err))
    H.has("resuming", H.read_file(q.err))
    local seen, nrecs = read_records(out)
    assert.is_true(nrecs > before)
    local expected, n = site:expected(), 0
    for u in pairs(expected) do
      assert.is_true(seen[u], "no record for " .. u)
      n = n + 1
    end
    assert.equals(n, nrecs)
    -- Nothing the journal had confirmed before the kill was asked for again; what was asked
    -- again is at most what was in flight (limit 2) or waiting for a retry then.
    local again, confirmed = 0, 0
    local after = site:stats().by_path
    for u in pairs(done_at_kill) do
      confirmed = confirmed + 1
      assert.equals(fetched_before[u], after[u], u .. " was fetched again")
    end
    assert.is_true(confirmed >= 50, "confirmed before the kill: " .. confirmed)
    for u, n2 in pairs(after) do
      if fetched_before[u] and n2 > fetched_before[u] and (site:retries()[u] or 0) == 0 then
        again = again + 1
      end
    end
    assert.is_true(again <= 2, "fetched again: " .. again)
    os.execute("rm -rf " .. H.quote(dir) .. " " .. H.quote(out))
  end)

  it("writes the state and the summary on Ctrl-C, and the same command goes on", function()
    local dir, out, args, p = crawl_stateful(site, 30)
    os.execute("kill -INT " .. p.pid)
    assert.equals(130, H.wait(p, 10))
    local err = H.read_file(p.err)
    H.has("crawl: interrupted:", err)
    H.has("still queued (run the same command to resume)", err)
    H.has("\n=\t", H.read_file(dir .. "/journal"))
    local q = H.spawn(args)
    assert.equals(0, H.wait(q, 40), H.read_file(q.err))
    local _, n = read_records(out)
    local want = 0
    for _ in pairs(site:expected()) do want = want + 1 end
    assert.equals(want, n)
    os.execute("rm -rf " .. H.quote(dir) .. " " .. H.quote(out))
  end)
end, {timeout = 60})

-- A server whose handler is given; returns it and its base URL.
local function serve(handler)
  local server = assert(http.serve{port = 0, handler = handler})
  return server, "http://127.0.0.1:" .. server.port
end

describe("crawl politeness and retries", function()
  it("honours Retry-After on a 429 and holds the host meanwhile", function()
    local times, calls = {}, 0
    local server, base = serve(function(req)
      if req.path == "/robots.txt" then return 404 end
      calls = calls + 1
      times[#times + 1] = sl.now()
      if calls == 1 then return 429, {["Retry-After"] = "1"}, "slow down" end
      return 200, {["Content-Type"] = "text/html"}, "<p>ok</p>"
    end)
    local recs = run{seeds = {base .. "/"}, backoff = 0.01}
    server:close()
    assert.equals(1, #recs)
    assert.equals(200, recs[1].status)
    assert.equals(2, #times)
    assert.is_true(times[2] - times[1] >= 0.95, "retried after " .. (times[2] - times[1]))
  end)

  it("records the failure after the last try, with the error", function()
    local calls = 0
    local server, base = serve(function(req)
      if req.path == "/robots.txt" then return 404 end
      calls = calls + 1
      return 503, nil, "down"
    end)
    local recs, _, summary = run{seeds = {base .. "/"}, retries = 2, backoff = 0.01}
    server:close()
    assert.equals(3, calls)
    assert.equals(503, recs[1].status)
    assert.equals("HTTP 503 after 3 attempts", recs[1].error)
    assert.equals(1, summary.errors)
    -- a refused connection is retried too, then recorded
    local refused = run{seeds = {base .. "/"}, retries = 1, robots = false}
    assert.is_nil(refused[1].status)
    H.has("ECONNREFUSED", refused[1].error)
  end)

  it("spaces requests to one host by the delay and robots.txt's Crawl-delay", function()
    local times = {}
    local server, base = serve(function(req)
      if req.path == "/robots.txt" then return 200, nil, "User-agent: *\nCrawl-delay: 0.1\n" end
      times[#times + 1] = sl.now()
      local n = tonumber(req.path:match("%d+")) or 0
      local body = n < 4 and ('<a href="/p' .. (n + 1) .. '">next</a>') or "end"
      return 200, {["Content-Type"] = "text/html"}, body
    end)
    run{seeds = {base .. "/p0"}, per_host = 4}
    server:close()
    assert.equals(5, #times)
    for i = 2, #times do
      assert.is_true(times[i] - times[i - 1] >= 0.095, "gap " .. (times[i] - times[i - 1]))
    end
  end)

  it("keeps the first 512 KiB of a robots.txt, in whole lines", function()
    local robots_txt = "User-agent: *\nDisallow: /a\n" .. ("# pad\n"):rep(100000)
                       .. "Disallow: /b\n"
    local server, base = serve(function(req)
      if req.path == "/robots.txt" then return 200, nil, robots_txt end
      if req.path ~= "/" then return 200, nil, "x" end
      return 200, {["Content-Type"] = "text/html"}, '<a href="/a">a</a><a href="/b">b</a>'
    end)
    local _, by_url, summary = run{seeds = {base .. "/"}}
    server:close()
    assert.is_true(#robots_txt > 600000)
    assert.is_nil(by_url[base .. "/a"])
    assert.equals(200, by_url[base .. "/b"].status)
    assert.equals(1, summary.disallowed)
  end)

  it("a slow host does not hold up the others", function()
    local slow, slow_base = serve(function(req)
      if req.path == "/robots.txt" then return 404 end
      sl.sleep(0.3)
      local links = {}
      for i = 1, 6 do links[i] = '<a href="/s' .. i .. '">s</a>' end
      return 200, {["Content-Type"] = "text/html"}, table.concat(links)
    end)
    local fast, fast_base = serve(function(req)
      if req.path == "/robots.txt" then return 404 end
      local links = {}
      for i = 1, 30 do links[i] = '<a href="/f' .. i .. '">f</a>' end
      return 200, {["Content-Type"] = "text/html"}, table.concat(links)
    end)
    local recs = run{seeds = {slow_base .. "/", fast_base .. "/"}, limit = 4, per_host = 2}
    slow:close()
    fast:close()
    local slow_seen, last_fast = 0, nil
    for i, r in ipairs(recs) do
      if r.url:find(fast_base, 1, true) then last_fast = i end
    end
    for i = 1, last_fast do
      if recs[i].url:find(slow_base, 1, true) then slow_seen = slow_seen + 1 end
    end
    assert.equals(31, #recs - 7)
    assert.is_true(slow_seen <= 2, "slow records before the fast host finished: " .. slow_seen)
  end)

  it("follows redirects through the frontier and calls the handler", function()
    local server, base = serve(function(req)
      if req.path == "/robots.txt" then return 404 end
      if req.path == "/old" then return 301, {Location = "/new#x"} end
      return 200, {["Content-Type"] = "text/html; charset=utf-8"},
             '<title> T </title><a href="/old">o</a><a href="mailto:x@y">m</a>'
    end)
    local titles = {}
    local recs, by_url = run{seeds = {base .. "/"}, handler = function(page)
      titles[page.url] = page.title
      page:emit({n = #page.links})
      if page.url:find("/new$") then page:follow("/extra") end
    end}
    server:close()
    assert.equals(4, #recs)
    assert.equals(301, by_url[base .. "/old"].status)
    assert.equals(base .. "/new", by_url[base .. "/old"].redirect)
    assert.equals(200, by_url[base .. "/new"].status)
    assert.equals(base .. "/new", by_url[base .. "/extra"].parent)
    assert.equals("T", titles[base .. "/"])
    assert.same({{n = 1}}, by_url[base .. "/"].items)
  end)

  it("records a handler's mistakes in the URL's record and goes on", function()
    local server, base = serve(function(req)
      if req.path == "/robots.txt" then return 404 end
      return 200, {["Content-Type"] = "text/html"}, '<a href="/a">a</a><a href="/b">b</a>'
    end)
    local recs, by_url = run{seeds = {base .. "/"}, limit = 1, handler = function(page)
      if page.url == base .. "/" then table.insert(page.links, "/c#x") end   -- not normalized
      if page.url == base .. "/a" then page:emit({f = print}) end            -- not JSON
      if page.url == base .. "/b" then page.links = nil end                  -- not a list
    end}
    server:close()
    assert.equals(4, #recs)
    assert.truthy(by_url[base .. "/c"])
    H.has("handler: cannot write the emitted items", by_url[base .. "/a"].error)
    H.has("handler: page.links is not a list", by_url[base .. "/b"].error)
  end)

  it("finishes with the smallest max_queued, and keeps to max_pages", function()
    local server, base = serve(function(req)
      if req.path == "/robots.txt" then return 404 end
      local n = tonumber(req.path:match("%d+")) or 0
      local links = {}
      for i = 1, 3 do links[i] = ('<a href="/%d">x</a>'):format(n * 3 + i) end
      return 200, {["Content-Type"] = "text/html"}, n < 10 and table.concat(links) or ""
    end)
    local recs = run{seeds = {base .. "/0"}, max_queued = 1}
    assert.equals(31, #recs)
    -- robots.txt of a second host is unreachable: its URLs' failure records count too
    local down, dead = serve(function() return 503, nil, "down" end)
    local limited = run{seeds = {dead .. "/", base .. "/0"}, max_pages = 2, retries = 0}
    server:close()
    down:close()
    assert.equals(2, #limited)
  end)

  it("keeps to allowed_domains, a domain or the hosts under it, in any case", function()
    local server, base = serve(function(req)
      if req.path == "/robots.txt" then return 404 end
      return 200, {["Content-Type"] = "text/html"}, '<a href="/a">a</a>'
    end)
    local inside = run{seeds = {base .. "/"}, allowed_domains = {"0.0.1", "example.com"}}
    local outside = run{seeds = {base .. "/"}, allowed_domains = {"27.0.0.1"}}
    local exact = run{seeds = {base .. "/"}, allowed_domains = {"127.0.0.1"}}
    server:close()
    assert.equals(2, #inside)
    assert.equals(0, #outside)
    assert.equals(2, #exact)
  end)

  it("refuses bad options and seeds with clear errors", function()
    assert.has_error(function() crawl.new{seeds = {"http://x/"}, limit = 0} end,
                     "crawl: bad option 'limit' (integer >= 1 expected, got 0)")
    assert.has_error(function() crawl.new{seeds = {"http://x/"}, bogus = 1} end,
                     "crawl: unknown option 'bogus'")
    assert.has_error(function() crawl.new{seeds = {}} end, "crawl: no seeds (option 'seeds')")
    assert.has_error(function() crawl.new{seeds = {"http://x/"}, delay = math.huge} end,
                     "crawl: bad option 'delay' (number >= 0 expected, got inf)")
    assert.has_error(function() crawl.new{seeds = {"http://x/"}, deny = {"[x"}} end,
                     "crawl: bad option 'deny' (entry 1 is not a valid Lua pattern: [x)")
    assert.truthy(crawl.new{seeds = {"http://x/"}, timeout = false})
    local ok, err = pcall(crawl.new, {seeds = {"ftp://x/"}})
    assert.is_false(ok)
    H.has("crawl: bad seed 'ftp://x/'", err)
  end)
end, {timeout = 20})

describe("scripts/crawl.lua", function()
  it("rejects bad arguments with exit status 2", function()
    local r = H.run({"scripts/crawl.lua", "--limit", "x", "http://127.0.0.1:1/"})
    assert.equals(2, r.code)
    H.has("crawl: --limit needs an integer >= 1", r.err)
    r = H.run({"scripts/crawl.lua", "--bogus"})
    assert.equals(2, r.code)
    H.has("unknown option --bogus", r.err)
    r = H.run({"scripts/crawl.lua"})
    assert.equals(2, r.code)
    H.has("no seed URLs", r.err)
    r = H.run({"scripts/crawl.lua", "-f", "/nonexistent/seeds"})
    assert.equals(2, r.code)
    H.has("cannot read /nonexistent/seeds", r.err)
  end)
end)
