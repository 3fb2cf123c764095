-- extract_handler.lua: the crawl_extract benchmarks' page handler (crawl_extract.sh), for
-- `crawl.lua --handler` or crawl_extract.lua: 5 fields a page, with selectors, emitted into
-- the page's record. A product page of testsite.lua's catalogue gives name, price, stock,
-- tags and sku; any other page (the listing, testsite's plain pages) title, heading, the
-- number of links, of paragraphs, and its first emphasised word. crawl_extract_scrapy.py
-- asks Scrapy for the same. Uses page:css / page:xpath where the crawler has them, else
-- parses page.body with html.parse and closes the document before returning.
local html = require "sluice.html"

return function(page)
  if page.status ~= 200 then return end
  local doc = page.css and page or html.parse(page.body)
  local item
  if page.url:find("/catalogue/product/", 1, true) then
    item = {name = doc:css("h1.name::text"):get(),
            price = doc:css('span[itemprop="price"]::attr(content)'):get(),
            stock = tonumber(doc:css("p.stock::attr(data-count)"):get()),
            tags = doc:css("ul.tags > li.tag::text"):getall(),
            sku = doc:xpath('//td[@itemprop="sku"]/text()'):get()}
  else
    item = {title = doc:css("title::text"):get(), h1 = doc:xpath("normalize-space(//h1)"):get(),
            links = doc:xpath("count(//a[@href])"):get(), paragraphs = #doc:css("p"),
            em = doc:css("p em::text"):get()}
  end
  page:emit(item)
  if doc ~= page then doc:close() end
end
