-- crawl_out_spec.lua: a crawl's items out (sluice.crawl.out): items a handler returns, CSV
-- (RFC 4180 quoting, the header and its _extra column), SQLite (pages and items, json_extract
-- through the sqlite3 command), failures to write, and --state's exactly-once records after
-- kill -9 for CSV and SQLite, against scripts/testsite.lua and small servers started here.
local sl = require "sluice"
local http = require "sluice.http"
local crawl = require "sluice.crawl"
local sqlite = require "sluice.sqlite"
local cjson = require "cjson"
local H = require "spec.helpers"

local testsite = H.testsite()
local devnull = assert(io.open("/dev/null", "w"))

local function tmp(ext)
  local p = os.tmpname()
  os.remove(p)
  return p .. ext
end

local function rm(...)
  for _, p in ipairs{...} do os.execute("rm -rf " .. H.quote(p) .. "*") end
end

-- A whole CSV file (RFC 4180) as a list of records, each a list of fields: read here on its
-- own, not by out.lua's reader, so that the writer is checked against an independent reading.
local function parse_csv(s)
  local rows, row, pos = {}, {}, 1
  while pos <= #s do
    local v
    if s:sub(pos, pos) == '"' then
      local i, parts = pos + 1, {}
      while true do
        local q = assert(s:find('"', i, true), "an unclosed quote")
        parts[#parts + 1] = s:sub(i, q - 1)
        if s:sub(q + 1, q + 1) == '"' then parts[#parts + 1] = '"'; i = q + 2
        else pos = q + 1; break end
      end
      v = table.concat(parts)
    else
      local e = s:find("[,\r]", pos) or #s + 1
      v = s:sub(pos, e - 1)
      pos = e
    end
    row[#row + 1] = v
    if s:sub(pos, pos) == "," then pos = pos + 1
    else
      assert.equals("\r\n", s:sub(pos, pos + 1), "a record must end in CRLF")
      rows[#rows + 1] = row
      row, pos = {}, pos + 2
    end
  end
  return rows
end

-- A site of three pages, each with a different handler answer, served from here.
local PAGES = {
  ["/"] = '<a href="/one">1</a> <a href="/list">l</a> <a href="/none">n</a> <a href="/str">s</a>',
  ["/one"] = "one", ["/list"] = "list", ["/none"] = "none", ["/str"] = "str",
}
local function small_site()
  return http.serve{port = 0, handler = function(req)
    if not PAGES[req.path] then return 404, nil, "no" end
    return 200, {["Content-Type"] = "text/html"}, PAGES[req.path]
  end}
end

local function handler(page)
  local p = page.url:match("^https?://[^/]+(.*)$")
  if p == "/" then
    page:emit({name = "home", n = 0})
    return {name = "home again", n = 1}
  elseif p == "/one" then
    return {name = 'a "quoted", name', price = 9.5, tags = {"x", "y"}, ok = true}
  elseif p == "/list" then
    return {{name = "first\nline", n = 1}, {name = "second", color = "red"}, {n = 3}}
  elseif p == "/none" then
    return {}
  else
    return page.url   -- not a table: ignored
  end
end

-- Runs a crawl of `site` in this process; returns the summary.
local function run(site, opts)
  opts.seeds = {"http://127.0.0.1:" .. site.port .. "/"}
  opts.status, opts.log, opts.backoff = false, opts.log or devnull, 0.01
  opts.handler = opts.handler or handler
  return crawl.run(opts)
end

local function rows(path, sql)
  local db = assert(sqlite.open(path, {readonly = true}))
  local t = {}
  for r in db:rows(sql) do t[#t + 1] = r end
  db:close()
  return t
end

describe("crawl items out", function()
  local site
  before_each(function() site = small_site() end)
  after_each(function() site:close() end)

  it("emits what a handler returns: one item, a list, nothing for {} or a non-table", function()
    local recs = {}
    run(site, {out = function(line) local r = cjson.decode(line); recs[r.url:match("%d(/.*)$")] = r end})
    assert.same({{name = "home", n = 0}, {name = "home again", n = 1}}, recs["/"].items)
    assert.same({{name = 'a "quoted", name', price = 9.5, tags = {"x", "y"}, ok = true}},
                recs["/one"].items)
    assert.same({{name = "first\nline", n = 1}, {name = "second", color = "red"}, {n = 3}},
                recs["/list"].items)
    assert.is_nil(recs["/none"].items)
    assert.is_nil(recs["/str"].items)
  end)

  it("writes CSV: one row per item, columns from the first, later keys in _extra", function()
    local out = tmp(".csv")
    local summary = run(site, {out = out, limit = 1, per_host = 1})
    assert.equals(5, summary.pages)
    local text = H.read_file(out)
    local t = parse_csv(text)
    -- "/" is fetched first (limit 1): its first item gives the columns, sorted
    assert.same({"n", "name", "_extra"}, t[1])
    assert.same({"0", "home", ""}, t[2])
    assert.same({"1", "home again", ""}, t[3])
    assert.equals(1 + 2 + 1 + 3, #t)   -- the header, then the 6 items; no row for the rest
    local by_name = {}
    for i = 2, #t do by_name[t[i][2]] = t[i] end
    local q = by_name['a "quoted", name']
    assert.equals("", q[1])
    assert.same({ok = true, price = 9.5, tags = {"x", "y"}}, cjson.decode(q[3]))
    H.has('"{""ok"":true,""price"":9.5,""tags"":[""x"",""y""]}"', text)   -- keys sorted
    H.has('"a ""quoted"", name"', text)
    assert.same({"1", "first\nline", ""}, by_name["first\nline"])
    assert.same({"", "second", '{"color":"red"}'}, by_name.second)
    rm(out)
  end)

  it("writes CSV for --format csv whatever the extension, and to standard output", function()
    local out = tmp(".txt")
    run(site, {out = out, format = "csv", limit = 1, per_host = 1})
    assert.equals("n,name,_extra\r\n0,home,\r\n", H.read_file(out):sub(1, 24))
    rm(out)
    -- (in the background: this process serves the site)
    local p = H.spawn({"scripts/crawl.lua", "--format", "csv", "--max-pages", "2",
                      "http://127.0.0.1:" .. site.port .. "/"})
    assert.equals(0, H.wait(p, 10), H.read_file(p.err))
    assert.equals("", H.read_file(p.out))   -- the command has no handler: no items, no rows
    H.has("crawl: done: 2 pages", H.read_file(p.err))
    local r
    r = H.run({"scripts/crawl.lua", "--format", "xml", "http://127.0.0.1:1/"})
    assert.equals(2, r.code)
    H.has("crawl: --format needs jsonl, csv or sqlite", r.err)
  end)

  it("writes SQLite: pages with the JSON record's fields, items as JSON text", function()
    local out, jl = tmp(".sqlite"), {}
    run(site, {out = function(line) local r = cjson.decode(line); jl[r.url] = r end})
    run(site, {out = out})
    local pages = rows(out, "SELECT * FROM pages ORDER BY seq")
    assert.equals(5, #pages)
    for i, p in ipairs(pages) do
      assert.equals(i, p.seq)
      local r = jl[p.url]
      for _, k in ipairs{"status", "depth", "bytes", "links"} do assert.equals(r[k], p[k]) end
      assert.equals(r.parent ~= cjson.null and r.parent or nil, p.parent)
      assert.is_nil(p.error)
      assert.equals(r.items and #r.items or 0, p.items)
    end
    local items = rows(out, "SELECT seq, url, item FROM items ORDER BY rowid")
    assert.equals(6, #items)
    for _, it_ in ipairs(items) do
      assert.equals(pages[it_.seq].url, it_.url)
    end
    -- the sqlite3 command reads it, and json_extract finds the fields
    local cli = H.sh("sqlite3 " .. H.quote(out) .. [[ "SELECT json_extract(item, '$.price') ]]
                     .. [[FROM items WHERE json_extract(item, '$.price') IS NOT NULL"]])
    assert.equals("9.5\n", cli)
    cli = H.sh("sqlite3 " .. H.quote(out) .. [[ "SELECT json_extract(item, '$.tags[1]') ]]
               .. [[FROM items WHERE url LIKE '%/one'"]])
    assert.equals("y\n", cli)
    -- without a state directory, a second crawl starts the tables afresh
    run(site, {out = out})
    assert.equals(5, #rows(out, "SELECT url FROM pages"))
    assert.equals(6, #rows(out, "SELECT url FROM items"))
    rm(out)
  end)

  it("fails clearly when the output cannot be written", function()
    for _, out in ipairs{"/nonexistent/dir/x.jsonl", "/nonexistent/dir/x.csv",
                         "/nonexistent/dir/x.sqlite"} do
      local ok, err = pcall(run, site, {out = out})
      assert.is_false(ok)
      H.has("crawl: cannot open the output: ", err)
    end
    -- a full disk: the crawl stops with the reason
    local ok, err = pcall(run, site, {out = "/dev/full", format = "csv"})
    assert.is_false(ok)
    H.has("crawl: cannot write a record: ", err)
    H.has("No space left on device", err)
    assert.has_error(function() run(site, {out = function() end, format = "sqlite"}) end,
      "crawl: bad option 'out' (a path or a sluice.sqlite database expected for format sqlite)")
    assert.has_error(function() run(site, {out = function() end, format = "csv"}) end,
      "crawl: bad option 'out' (a path, a file expected for format csv)")
    assert.has_error(function() crawl.new{seeds = {"http://x/"}, format = "xml"} end,
      'crawl: bad option \'format\' ("jsonl", "csv" or "sqlite" expected, got xml)')
  end)

  it("stops with SQLITE_FULL when the database fills up, keeping what it confirmed", function()
    local path, dir = tmp(".sqlite"), tmp(".state")
    local db = assert(sqlite.open(path))
    -- room for the tables and a few pages of items only
    assert(db:exec("PRAGMA max_page_count = 12"))
    local big = ("z"):rep(3000)
    local ok, err = pcall(run, site, {out = db, state = dir, limit = 1, per_host = 1,
      handler = function() return {{big = big}, {big = big}} end})
    assert.is_false(ok)
    H.has("crawl: cannot write a record: SQLITE_FULL: database or disk is full", err)
    -- what the journal confirmed is in the database, once each
    local confirmed = H.count("\n=\t", H.read_file(dir .. "/journal"))
    assert.equals(confirmed, #rows(path, "SELECT url FROM pages"))
    db:close()
    rm(path, dir)
  end)
end)

---------------------------------------------------------------------------------------------
-- Exactly once across kill -9, with a child crawling the test site.

-- The child: crawls the seeds (args: out, state dir, seeds...) slowly, one item per page.
local CHILD = [[
local crawl = require "sluice.crawl"
local out, state = arg[1], arg[2]
local seeds = {table.unpack(arg, 3)}
crawl.run{seeds = seeds, out = out, state = state, limit = 2, per_host = 1, backoff = 0.01,
          status = false, handler = function(page)
            if page.status == 200 then return {url = page.url, size = #page.body} end
          end}
]]

local function count_pages(path)
  local ok, r = pcall(rows, path, "SELECT count(*) AS n FROM pages")
  return ok and r[1].n or 0
end

describe("crawl items out with --state", function()
  local site, script
  setup(function() script = H.tmpfile(CHILD) end)
  teardown(function() os.remove(script) end)
  before_each(function() site = testsite.start{hosts = 3, pages = 150, seed = 7} end)
  after_each(function() site:close() end)

  -- Starts the child, kills it with -9 once `enough()` holds, runs it again to its end.
  local function kill_and_resume(out, enough)
    local dir = tmp(".state")
    local args = {script, out, dir}
    for _, s in ipairs(site.seeds) do args[#args + 1] = s end
    local p = H.spawn(args)
    assert.is_true(H.poll(function() return enough() or H.exited(p) end, 20))
    assert.is_nil(H.exited(p), "the crawl ended before it could be killed")
    os.execute("kill -9 " .. p.pid)
    H.wait(p, 10)
    local q = H.spawn(args)
    assert.equals(0, H.wait(q, 40), H.read_file(q.err))
    H.has("resuming", H.read_file(q.err))
    return dir
  end

  it("SQLite: every page and its item exactly once", function()
    local out = tmp(".sqlite")
    local dir = kill_and_resume(out, function() return count_pages(out) >= 40 end)
    local expected, want = site:expected(), 0
    local seen = {}
    for _, r in ipairs(rows(out, "SELECT url, status FROM pages")) do
      assert.is_nil(seen[r.url], "two records for " .. r.url)
      assert.is_truthy(expected[r.url], "not expected: " .. r.url)
      seen[r.url] = r.status or "error"
    end
    for u, st in pairs(expected) do
      want = want + 1
      assert.equals(st, seen[u], u)
    end
    assert.equals(want, #rows(out, "SELECT url FROM pages"))
    local items, n200 = {}, 0
    for _, r in ipairs(rows(out, "SELECT url, item FROM items")) do
      assert.is_nil(items[r.url], "two items for " .. r.url)
      assert.equals(r.url, cjson.decode(r.item).url)
      items[r.url] = true
    end
    for u, st in pairs(seen) do
      if st == 200 then n200 = n200 + 1; assert.is_true(items[u], "no item for " .. u) end
    end
    assert.equals(n200, #rows(out, "SELECT url FROM items"))
    -- every record the journal confirmed is in the database: seq 1 .. n, no gap
    assert.same({{n = want, m = want}}, rows(out, "SELECT count(*) AS n, max(seq) AS m FROM pages"))
    assert.equals(want, H.count("\n=\t", H.read_file(dir .. "/journal")))
    rm(out, dir)
  end, {timeout = 80})

  it("CSV: every item exactly once", function()
    local out = tmp(".csv")
    local dir = kill_and_resume(out, function() return H.count("\r\n", H.read_file(out)) >= 40 end)
    local t = parse_csv(H.read_file(out))
    assert.same({"size", "url", "_extra"}, t[1])
    local seen, n = {}, 0
    for i = 2, #t do
      local u = t[i][2]
      assert.is_nil(seen[u], "two rows for " .. u)
      seen[u] = true
      n = n + 1
    end
    -- one item for each page that ended in a 200, and nothing else
    local want = 0
    for u, st in pairs(site:expected()) do
      if st == 200 then
        want = want + 1
        assert.is_true(seen[u], "no row for " .. u)
      end
    end
    assert.equals(want, n)
    rm(out, dir)
  end, {timeout = 80})

  it("SQLite: rows committed but never journaled are deleted on resume and written again",
     function()
    local out, dir = tmp(".sqlite"), tmp(".state")
    local opts = {seeds = site.seeds, out = out, state = dir, status = false, log = devnull,
                  backoff = 0.01, handler = function(page) return {u = page.url} end}
    local first = crawl.run(opts)
    -- As if killed between a commit and its journal lines: the journal loses its last 5.
    local j = H.read_file(dir .. "/journal")
    local lines = H.lines(j)
    local cut, dropped = #lines, {}
    while #dropped < 5 do
      if lines[cut]:sub(1, 1) == "=" then dropped[#dropped + 1] = lines[cut]:match("^=\t([^\t]+)") end
      table.remove(lines, cut)
      cut = cut - 1
    end
    H.write_file(dir .. "/journal", table.concat(lines, "\n") .. "\n")
    local logpath = os.tmpname()
    opts.log = assert(io.open(logpath, "w"))
    local again = crawl.run(opts)
    opts.log:close()
    H.has("crawl: resume: 5 records the journal never confirmed were deleted from " .. out,
          H.read_file(logpath))
    assert.equals(5, again.pages)
    local byurl = {}
    for _, r in ipairs(rows(out, "SELECT url FROM pages")) do
      assert.is_nil(byurl[r.url], "two records for " .. r.url)
      byurl[r.url] = true
    end
    for _, u in ipairs(dropped) do assert.is_true(byurl[u]) end
    assert.equals(first.pages, #rows(out, "SELECT url FROM pages"))
    -- an item for each page the handler saw (all but the one where nothing listens)
    local answered = #rows(out, "SELECT url FROM pages WHERE status IS NOT NULL")
    assert.equals(first.pages - 1, answered)
    assert.equals(answered, #rows(out, "SELECT DISTINCT url FROM items"))
    assert.equals(answered, #rows(out, "SELECT url FROM items"))
    rm(out, dir, logpath)
  end, {timeout = 60})
end, {timeout = 90})
