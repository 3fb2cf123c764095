-- testsite_catalogue_spec.lua: scripts/testsite.lua's catalogue (--catalogue N), the shop
-- that scraping demos and benchmarks read: its pages carry each product's fields as
-- M.product gives them, its listing is paginated, site:expected() covers it, and --export
-- writes the same documents as files. Without the option the site is as it was.
local html = require "sluice.html"
local H = require "spec.helpers"
local testsite = H.testsite()

local get = H.get

local function has(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

local function unescape(s)
  return (s:gsub("&quot;", '"'):gsub("&lt;", "<"):gsub("&amp;", "&"))
end

describe("testsite catalogue", function()
  it("is off by default: no link to it, and its paths are 404s", function()
    local site = H.site{hosts = 1, pages = 10}
    assert.is_nil(get(site.seeds[1]).body:find("/catalogue/", 1, true))
    assert.equals(404, get(site.hosts[1] .. "/catalogue/page/1.html").status)
    for url in pairs(site:expected()) do assert.is_nil(url:find("/catalogue/", 1, true), url) end
  end)

  it("writes each product's fields into its page, in markup and in JSON-LD", function()
    local site = H.site{hosts = 2, pages = 10, catalogue = 45, plain = true}
    local seen_out, seen_amp = false, false
    for h = 1, 2 do
      for id = 1, 45 do
        local p = testsite.product(site, h, id)
        local res = get(site.hosts[h] .. "/catalogue/product/" .. id .. ".html")
        assert.equals(200, res.status)
        local b = res.body
        assert.equals(p.name, unescape(b:match('<h1 class="name" itemprop="name">(.-)</h1>')))
        assert.equals(p.price, b:match('<span itemprop="price" content="([%d.]+)">'))
        assert.equals("€" .. p.price, b:match('<span itemprop="price"[^>]*>(.-)</span>'))
        assert.equals(tostring(p.stock), b:match('<p class="stock [%l-]+" data%-count="(%d+)"'))
        local tags = {}
        for t in b:match('<ul class="tags">(.-)</ul>'):gmatch('<li class="tag">(.-)</li>') do
          tags[#tags + 1] = t
        end
        assert.same(p.tags, tags)
        assert.is_true(#tags >= 1)
        assert.equals(p.sku, b:match('<td itemprop="sku">(.-)</td>'))
        assert.equals(p.name, b:match('"@type": "Product", "name": "(.-)"'))
        assert.equals(p.stock > 0 and "InStock" or "OutOfStock", b:match('"availability": "https://schema.org/(%a+)"'))
        seen_out = seen_out or p.stock == 0
        seen_amp = seen_amp or p.name:find("&", 1, true) ~= nil
      end
    end
    assert.is_true(seen_out and seen_amp)   -- some out of stock, some names to escape
    assert.equals(404, get(site.hosts[1] .. "/catalogue/product/46.html").status)
    assert.equals(404, get(site.hosts[1] .. "/catalogue/product/0.html").status)
  end)

  it("lists the products in pages of 20 chained by rel=next, from the home page", function()
    local site = H.site{hosts = 1, pages = 5, catalogue = 45, plain = true}
    local links = html.links(get(site.seeds[1]).body, site.seeds[1])
    assert.is_true(has(links, site.hosts[1] .. "/catalogue/page/1.html"))
    local url, ids, pages = site.hosts[1] .. "/catalogue/page/1.html", {}, 0
    while url do
      local b = get(url).body
      pages = pages + 1
      local n = 0
      for id in b:gmatch('<li class="product" data%-id="(%d+)">') do
        n = n + 1
        ids[#ids + 1] = tonumber(id)
      end
      assert.equals(pages < 3 and 20 or 5, n)
      assert.matches('<li class="current">Page ' .. pages .. ' of 3</li>', b)
      local next_href = b:match('<a rel="next" class="next" href="([^"]*)">')
      assert.equals(b:match('<link rel="next" href="([^"]*)">'), next_href)
      url = next_href and url:gsub("[^/]*$", next_href)
    end
    assert.equals(3, pages)
    for i = 1, 45 do assert.equals(i, ids[i]) end
    assert.equals(404, get(site.hosts[1] .. "/catalogue/page/4.html").status)
  end)

  it("links as site:links() says, and site:expected() holds every catalogue page", function()
    local site = H.site{hosts = 2, pages = 30, catalogue = 50}
    local expected = site:expected()
    local n = 0
    for url, st in pairs(expected) do
      if url:find("/catalogue/", 1, true) then
        n = n + 1
        assert.equals(200, st)
        local res = get(url)
        assert.equals(200, res.status)
        local _, links = site:links(url)
        local want = {}
        for _, l in ipairs(links) do
          if not has(want, l.url) then want[#want + 1] = l.url end
        end
        assert.same(want, (html.links(res.body, url)))
      end
    end
    assert.equals(2 * (50 + 3), n)
    -- The rest of the site is as it was: 19 feature URLs a host, 4 more on the first.
    assert.equals(2 * (30 + 19) + 4 + n, H.nkeys(expected))
  end, {timeout = 20})

  it("--export writes the first host's catalogue as the server serves it", function()
    local dir = os.tmpname()
    os.remove(dir)
    finally(function() os.execute("rm -rf " .. H.quote(dir)) end)
    local r = H.run{"scripts/testsite.lua", "--catalogue", "25", "--seed", "3", "--export", dir}
    assert.equals(0, r.code, r.err)
    assert.matches("wrote 2 listing pages and 25 products", r.err)
    local site = H.site{hosts = 1, pages = 10, catalogue = 25, seed = 3}
    for _, path in ipairs{"/catalogue/page/1.html", "/catalogue/page/2.html",
                          "/catalogue/product/1.html", "/catalogue/product/25.html"} do
      assert.equals(get(site.hosts[1] .. path).body, H.read_file(dir .. path), path)
    end
    assert.equals("", H.read_file(dir .. "/catalogue/product/26.html"))
    r = H.run{"scripts/testsite.lua", "--export", dir}
    assert.equals(2, r.code)
    assert.matches("%-%-export needs %-%-catalogue N", r.err)
  end)
end)
