# The extract benchmark's parsel side (extract.sh): the same pages and queries as
# extract.lua, with parsel 1.7 (Debian's python3-parsel, on lxml and cssselect), the
# selectors Scrapy's response.css / response.xpath are.
#
# usage: python3 extract_parsel.py QUERIES PAGES [OUT]     (as extract.lua; same output)
# Each page is decoded from UTF-8 and given as Selector(text=...), as Scrapy gives
# response.text; the clock (time.process_time) covers decoding, parsing and querying.
import parsel

from extract_common import run


def answers(body, queries):
    sel = parsel.Selector(text=body.decode("utf-8", "replace"))
    for qi, kind, q in queries:
        yield qi, (sel.css(q) if kind == "css" else sel.xpath(q)).getall()


if __name__ == "__main__":
    run(lambda queries: queries, answers, " parsel=%s" % parsel.__version__)
