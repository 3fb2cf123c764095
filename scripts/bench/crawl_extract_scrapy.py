# The crawl_extract benchmark's Scrapy peer (crawl_extract.sh): crawl_scrapy.py's spider
# (the same settings as the sluice crawler: see there) whose parse() also extracts
# extract_handler.lua's 5 fields with Scrapy's selectors (response.css / response.xpath,
# parsel), one JSON line per response with the fields under "items", as crawl.lua writes.
#
# usage: python3 crawl_extract_scrapy.py --limit L --per-host H --out FILE SEED...
import scrapy

import crawl_scrapy


def extract(response):
    if response.status != 200 or not isinstance(response, scrapy.http.TextResponse):
        return None
    if "/catalogue/product/" in response.url:
        stock = response.css("p.stock::attr(data-count)").get()
        return {"name": response.css("h1.name::text").get(),
                "price": response.css('span[itemprop="price"]::attr(content)').get(),
                "stock": int(stock) if stock is not None else None,
                "tags": response.css("ul.tags > li.tag::text").getall(),
                "sku": response.xpath('//td[@itemprop="sku"]/text()').get()}
    return {"title": response.css("title::text").get(),
            "h1": response.xpath("normalize-space(//h1)").get(),
            "links": float(response.xpath("count(//a[@href])").get()),
            "paragraphs": len(response.css("p")),
            "em": response.css("p em::text").get()}


class ExtractSpider(crawl_scrapy.SiteSpider):
    name = "crawl_extract_bench"

    def parse(self, response):
        for out in super().parse(response):
            if isinstance(out, dict):
                item = extract(response)
                if item is not None:
                    out["items"] = [item]
            yield out


if __name__ == "__main__":
    crawl_scrapy.SiteSpider = ExtractSpider
    crawl_scrapy.main()
