# The crawl benchmark's Scrapy peer (scripts/bench/crawl.sh): crawls every page of the seeds'
# origins with the settings scripts/crawl.lua is given, one JSON line per response.
#
# usage: python3 crawl_scrapy.py --limit L --per-host H --out FILE SEED...
#
# Equal settings: CONCURRENT_REQUESTS = L, CONCURRENT_REQUESTS_PER_DOMAIN = H, robots.txt
# obeyed, no delay, no autothrottle, retries on (Scrapy's default), every status handed to the
# spider so a 404 is a record too. Scrapy keys its per-domain slots by hostname, and the two
# hosts of the benchmark are both 127.0.0.1, so every request carries download_slot =
# "host:port": each origin gets its own H, as in crawl.lua, whose politeness key is the
# origin. Links are followed only to the seeds' origins. Prints "scrapy=<version>
# items=<records> elapsed=<s, Scrapy's own clock from engine start to close>" on stdout.
import argparse
import re
import sys
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor


class SiteSpider(scrapy.Spider):
    name = "crawl_bench"

    def __init__(self, seeds, **kw):
        super().__init__(**kw)
        self.seeds = seeds
        origins = sorted({"%s://%s" % urlsplit(s)[:2] for s in seeds})
        self.links = LinkExtractor(allow=["^%s/" % re.escape(o) for o in origins])

    def request(self, url):
        # dont_filter stays False for the seeds too, so that a link back to a seed is a
        # duplicate (Scrapy's start_urls would fetch it twice).
        return scrapy.Request(url, callback=self.parse, meta={"download_slot": urlsplit(url).netloc})

    def start_requests(self):
        for s in self.seeds:
            yield self.request(s)

    def parse(self, response):
        links = self.links.extract_links(response) if isinstance(response, scrapy.http.TextResponse) else []
        yield {"url": response.url, "status": response.status, "depth": response.meta.get("depth", 0),
               "bytes": len(response.body), "links": len(links)}
        for link in links:
            yield self.request(link.url)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, required=True)
    ap.add_argument("--per-host", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("seeds", nargs="+")
    a = ap.parse_args()
    if not scrapy.__version__.startswith("2.8."):
        print("crawl_scrapy.py: warning: Scrapy %s, the benchmark names 2.8" % scrapy.__version__, file=sys.stderr)
    settings = {
        "CONCURRENT_REQUESTS": a.limit,
        "CONCURRENT_REQUESTS_PER_DOMAIN": a.per_host,
        "CONCURRENT_REQUESTS_PER_IP": 0,
        "ROBOTSTXT_OBEY": True,
        "DOWNLOAD_DELAY": 0,
        "RANDOMIZE_DOWNLOAD_DELAY": False,
        "AUTOTHROTTLE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        "HTTPERROR_ALLOW_ALL": True,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",   # the value new projects get; silences a warning
        "FEEDS": {a.out: {"format": "jsonlines", "overwrite": True}},
    }
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(SiteSpider)
    process.crawl(crawler, seeds=a.seeds)
    process.start()
    st = crawler.stats.get_stats()
    elapsed = (st["finish_time"] - st["start_time"]).total_seconds()
    print("scrapy=%s items=%d elapsed=%.3f requests=%d retries=%d" % (
        scrapy.__version__, st.get("item_scraped_count", 0), elapsed,
        st.get("downloader/request_count", 0), st.get("retry/count", 0)))


if __name__ == "__main__":
    main()
