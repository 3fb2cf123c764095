# The extract benchmark's parsel side (extract.sh): the same pages and queries as
# extract.lua, with parsel 1.7 (Debian's python3-parsel, on lxml and cssselect), the
# selectors Scrapy's response.css / response.xpath are.
#
# usage: python3 extract_parsel.py QUERIES PAGES [OUT]     (as extract.lua; same output)
# Each page is decoded from UTF-8 and given as Selector(text=...), as Scrapy gives
# response.text; the clock (time.process_time) covers decoding, parsing and querying.
import sys
import time

import parsel

ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def main():
    qpath, lpath = sys.argv[1], sys.argv[2]
    outpath = sys.argv[3] if len(sys.argv) > 3 else None
    queries = []
    for line in open(qpath, encoding="utf-8"):
        kind, _, q = line.rstrip("\n").partition("\t")
        if kind in ("css", "xpath") and q:
            queries.append((kind == "css", q))
    bodies = []
    for path in open(lpath, encoding="utf-8").read().split("\n"):
        if path:
            with open(path, "rb") as f:
                bodies.append(f.read())
    out = open(outpath, "w", encoding="utf-8", newline="\n") if outpath else None
    results = 0
    t0 = time.process_time()
    for p, body in enumerate(bodies, 1):
        sel = parsel.Selector(text=body.decode("utf-8", "replace"))
        for qi, (css, q) in enumerate(queries, 1):
            values = (sel.css(q) if css else sel.xpath(q)).getall()
            results += len(values)
            if out:
                out.write("\t".join([str(p), str(qi)] + [v.translate(ESC) for v in values]) + "\n")
    cpu = time.process_time() - t0
    if out:
        out.close()
    print("pages=%d queries=%d results=%d cpu=%.3f parsel=%s" % (
        len(bodies), len(queries), results, cpu, parsel.__version__))


if __name__ == "__main__":
    main()
