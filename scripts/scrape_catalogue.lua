-- scrape_catalogue.lua: a crawl handler for `sluice crawl --handler`, scraping the test
-- site's shop (scripts/testsite.lua --catalogue N): one item per product page, following
-- the listing's products and its "next" link only.
--   ./sluice crawl --handler scripts/scrape_catalogue.lua --out catalogue.sqlite \
--     http://127.0.0.1:PORT/catalogue/page/1.html
return function(page)
  page.links = {}                                    -- follow only what is asked below
  if page.url:find("/catalogue/product/", 1, true) then
    page:emit{
      name = page:css("h1.name::text"):get(),
      price = tonumber(page:css("span[itemprop=price]::attr(content)"):get()),
      stock = tonumber(page:css("p.stock::attr(data-count)"):get()),
      tags = page:css("ul.tags li::text"):getall(),
    }
  else                                               -- a listing page
    page:follow(page:css("ol.products h3 a"))        -- each product (its href)
    page:follow(page:css("a.next::attr(href)"))      -- the next page of the listing
  end
end
