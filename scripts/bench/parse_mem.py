# The parse_mem benchmark's lxml side (extract.sh): what lxml's tree of a page costs in
# memory per byte of HTML (lxml.etree.HTMLParser, as parsel builds its trees), measured as
# parse_mem.lua measures sluice's documents (see there): every tree kept, then one at a time.
#
# usage: python3 parse_mem.py PAGES
# Prints "pages=N bytes=B kept_kib=K per_byte=X loop_growth_kib=G lxml=<version>".
import gc
import sys

import lxml
from lxml import etree


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def main():
    bodies = []
    for path in open(sys.argv[1], encoding="utf-8").read().split("\n"):
        if path:
            with open(path, "rb") as f:
                bodies.append(f.read())
    nbytes = sum(len(b) for b in bodies)
    parser = etree.HTMLParser(recover=True, encoding="utf-8")
    gc.collect()
    before = rss_kib()
    trees = [etree.fromstring(b, parser=parser) for b in bodies]
    kept = rss_kib() - before
    del trees
    gc.collect()
    peaks = []
    for _ in range(3):
        peak = 0
        for b in bodies:
            root = etree.fromstring(b, parser=parser)
            assert len(root.xpath("//a")) >= 0
            del root
            peak = max(peak, rss_kib())
        peaks.append(peak)
    print("pages=%d bytes=%d kept_kib=%d per_byte=%.2f loop_growth_kib=%d lxml=%s" % (
        len(bodies), nbytes, kept, kept * 1024 / nbytes, max(peaks[1], peaks[2]) - peaks[0], lxml.__version__))


if __name__ == "__main__":
    main()
