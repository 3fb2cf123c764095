-- crawl_select_spec.lua: selectors in crawl handlers (page:css, page:xpath: one parse per
-- page, only when asked, freed when the handler returns; page:follow with selections and
-- lists) and the `sluice crawl` command with --handler, against scripts/testsite.lua's
-- catalogue and small servers started here on 127.0.0.1.
local http = require "sluice.http"
local html = require "sluice.html"
local crawl = require "sluice.crawl"
local sqlite = require "sluice.sqlite"
local cjson = require "cjson"
local H = require "spec.helpers"

local testsite = H.testsite()
local devnull = assert(io.open("/dev/null", "w"))

-- Runs a crawl in this process; returns the records by URL (items decoded) and the summary.
local function run(opts)
  local by_url = {}
  opts.out = function(line)
    local r = cjson.decode(line)
    assert.is_nil(by_url[r.url], "two records for " .. r.url)
    by_url[r.url] = r
  end
  opts.status, opts.log, opts.backoff = false, devnull, 0.01
  return by_url, crawl.run(opts)
end

-- The product an item is about, by its page's URL, checked field by field.
local function check_product(site, url, item)
  local id = tonumber(url:match("/catalogue/product/(%d+)%.html$"))
  local p = testsite.product(site, 1, id)
  assert.equals(p.name, item.name)
  assert.equals(tonumber(p.price), item.price)
  assert.equals(p.stock, item.stock)
  assert.same(p.tags, item.tags)
end

-- Counts html.parse's calls while fn runs (sluice.crawl.fetch looks it up at each call).
local function counting_parses(fn)
  local parse, n = html.parse, 0
  html.parse = function(...) n = n + 1; return parse(...) end
  local ok, err = pcall(fn)
  html.parse = parse
  assert(ok, err)
  return n
end

describe("crawl handlers with selectors", function()
  it("scrape the catalogue with scripts/scrape_catalogue.lua (page:css, page:follow of selections)", function()
    local site = H.site{hosts = 1, pages = 5, catalogue = 45, plain = true}
    local by_url, summary = run{seeds = {site.hosts[1] .. "/catalogue/page/1.html"},
                                handler = dofile("scripts/scrape_catalogue.lua")}
    -- the 3 listing pages and the 45 products, nothing else (the handler clears page.links)
    assert.equals(48, summary.pages)
    local items = 0
    for url, r in pairs(by_url) do
      assert.equals(200, r.status)
      if url:find("/product/", 1, true) then
        assert.equals(1, #r.items)
        check_product(site, url, r.items[1])
        items = items + 1
      else
        assert.truthy(url:find("/catalogue/page/[123]%.html$"), url)
        assert.is_nil(r.items)
      end
    end
    assert.equals(45, items)
  end)

  it("page:xpath gives values and nodes, and returned items are kept", function()
    local site = H.site{hosts = 1, pages = 5, catalogue = 25, plain = true}
    local by_url = run{seeds = {site.hosts[1] .. "/catalogue/page/1.html"}, handler = function(page)
      page.links = {}
      if page.url:find("/product/", 1, true) then
        return {name = page:xpath("//h1[@class='name']/text()"):get(),
                price = tonumber(page:xpath("string(//span[@itemprop='price']/@content)"):get()),
                stock = tonumber(page:xpath("//p[contains(@class,'stock')]"):attr("data-count")),
                tags = page:xpath("//li[@class='tag']/text()"):getall()}
      end
      local n = page:xpath("count(//ol[@class='products']/li)"):get()
      assert.equals(page.url:find("/1%.html$") and 20 or 5, n)
      assert.equals(n, page:follow(page:xpath("//ol[@class='products']//h3/a/@href")))
      return page:follow(page:css("a.next"))   -- a count: emits nothing
    end}
    local n = 0
    for url, r in pairs(by_url) do
      assert.equals(cjson.null, r.error)
      if url:find("/product/", 1, true) then
        check_product(site, url, r.items[1])
        n = n + 1
      else
        assert.is_nil(r.items)
      end
    end
    assert.equals(25, n)
    assert.equals(27, H.nkeys(by_url))
  end)

  it("parse a page once, only when asked, and free it when the handler returns", function()
    local site = H.site{hosts = 1, pages = 5, catalogue = 25, plain = true}
    local seeds = {site.hosts[1] .. "/catalogue/page/1.html"}
    local kept_page, kept_sel
    local parses = counting_parses(function()
      local by_url = run{seeds = seeds, handler = function(page)
        page.links = {}
        page:css("h1"); page:xpath("//a"); page:css("title::text"):get()
        kept_page, kept_sel = page, page:css("a")
        page:follow(page:css("a.next::attr(href)"))
      end}
      assert.equals(2, H.nkeys(by_url))
    end)
    assert.equals(2, parses)   -- two pages, three queries each
    local ok, err = pcall(kept_page.css, kept_page, "h1")
    assert.is_false(ok)
    H.has("attempt to query a page whose handler has returned", err)
    ok, err = pcall(kept_sel.get, kept_sel)
    assert.is_false(ok)
    H.has("closed HTML document", err)
    assert.is_true(#kept_sel > 0)   -- (the count stays readable)

    -- A handler that never asks parses nothing, and its links are today's.
    local by_url
    parses = counting_parses(function()
      by_url = run{seeds = seeds, depth = 1, handler = function(page) page:emit(page.title) end}
    end)
    assert.equals(0, parses)
    assert.equals(23, H.nkeys(by_url))   -- the listing, its 20 products, next, home (depth 1)

    -- A handler that fails after a query: recorded, and the document is freed all the same.
    parses = counting_parses(function()
      by_url = run{seeds = seeds, handler = function(page)
        page.links = {}
        kept_sel = page:css("h1")
        error("after a query")
      end}
    end)
    assert.equals(1, parses)
    H.has("handler: ", by_url[seeds[1]].error)
    H.has("after a query", by_url[seeds[1]].error)
    assert.is_false((pcall(kept_sel.get, kept_sel)))
  end)

  it("page:follow resolves against <base href>; page:css decodes the Content-Type charset", function()
    local pages = {
      ["/"] = '<html><head><base href="/sub/"></head><body><p>caf\xe9</p>'
              .. '<a class="n" href="x.html">x</a> <a class="n" href="mailto:me@example.com">m</a>'
              .. '</body></html>',
    }
    local site = http.serve{port = 0, handler = function(req)
      local body = pages[req.path] or "<p>" .. req.path .. "</p>"
      return 200, {["Content-Type"] = "text/html; charset=ISO-8859-1"}, body
    end}
    finally(function() site:close() end)
    local origin = "http://127.0.0.1:" .. site.port
    local got = {}
    local by_url = run{seeds = {origin .. "/"}, depth = 1, handler = function(page)
      if page.depth > 0 then
        page:emit(page:css("p::text"):get())
        return
      end
      page.links = {}
      got.plain = page:follow("z.html")                -- before any parse: <base> still counts
      got.text = page:css("p::text"):get()
      got.sel = page:follow(page:css("a.n"))           -- hrefs of elements; mailto: dropped
      got.list = page:follow({"y.html", "mailto:x@example.com", "../w.html"})
      got.none = page:follow(page:css("a.nothing"))
      return page:follow(page:css("a.n::attr(href)"))  -- a number: no item
    end}
    assert.equals(origin .. "/sub/z.html", got.plain)
    assert.equals("caf\xc3\xa9", got.text)
    assert.equals(1, got.sel)
    assert.equals(2, got.list)
    assert.equals(0, got.none)
    assert.is_nil(by_url[origin .. "/"].items)
    assert.equals(5, H.nkeys(by_url))
    for _, p in ipairs{"/sub/x.html", "/sub/y.html", "/sub/z.html", "/w.html"} do
      assert.same({p}, by_url[origin .. p].items)
    end
  end)
end, {timeout = 30})

---------------------------------------------------------------------------------------------
-- The command

describe("sluice crawl", function()
  it("runs a --handler file into SQLite, as scripts/crawl.lua does", function()
    local site = H.site{hosts = 1, pages = 5, catalogue = 45, plain = true}
    local seed = site.hosts[1] .. "/catalogue/page/1.html"
    for _, cmd in ipairs{{"crawl"}, {"scripts/crawl.lua"}} do
      local db_path = os.tmpname() .. ".sqlite"
      finally(function() os.remove(db_path); os.remove(db_path .. "-wal"); os.remove(db_path .. "-shm") end)
      local args = {cmd[1], "--handler", "scripts/scrape_catalogue.lua", "--limit", "8",
                    "--per-host", "4", "--out", db_path, seed}
      -- in the background: this process serves the site
      local p = H.spawn(args)
      assert.equals(0, H.wait(p, 15), H.read_file(p.err))
      H.has("crawl: done: 48 pages", H.read_file(p.err))
      local db = assert(sqlite.open(db_path, {readonly = true}))
      local n = 0
      for r in db:rows("SELECT url, item, json_extract(item, '$.price') AS price FROM items") do
        local item = cjson.decode(r.item)
        check_product(site, r.url, item)
        assert.equals(item.price, r.price)
        n = n + 1
      end
      local pages
      for r in db:rows("SELECT count(*) AS n FROM pages") do pages = r.n end
      db:close()
      assert.equals(45, n)
      assert.equals(48, pages)
    end
  end)

  it("lists its options, --handler included, and refuses bad handler files with status 2", function()
    for _, cmd in ipairs{"crawl", "scripts/crawl.lua"} do
      local r = H.run({cmd, "--help"})
      assert.equals(0, r.code)
      H.has("--handler FILE", r.out)
      H.has("--format F", r.out)
    end
    local r = H.run({"crawl"})
    assert.equals(2, r.code)
    H.has("crawl: no seed URLs", r.err)
    H.has("usage: sluice crawl ", r.err)
    r = H.run({"crawl", "--limit", "0", "http://127.0.0.1:1/"})
    assert.equals(2, r.code)
    H.has("crawl: --limit needs an integer >= 1", r.err)
    r = H.run({"crawl", "--handler", "/nonexistent/h.lua", "http://127.0.0.1:1/"})
    assert.equals(2, r.code)
    H.has("crawl: --handler: cannot read /nonexistent/h.lua", r.err)
    local cases = {
      {"return (", "crawl: --handler: cannot load "},
      {"error('no luck')", "failed: "},
      {"return {}", "returned table, not a function"},
      {"local x = 1", "returned nil, not a function"},
    }
    for _, c in ipairs(cases) do
      local f = H.tmpfile(c[1])
      r = H.run({"crawl", "--handler", f, "http://127.0.0.1:1/"})
      os.remove(f)
      assert.equals(2, r.code, c[1])
      H.has(c[2], r.err)
    end
    local f = H.tmpfile("error('no luck')")
    r = H.run({"crawl", "--handler=" .. f, "http://127.0.0.1:1/"})
    os.remove(f)
    assert.equals(2, r.code)
    H.has("no luck", r.err)
  end)
end, {timeout = 60})
