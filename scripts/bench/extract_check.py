# The extract benchmark's checker (extract.sh): compares the answers of an implementation
# (extract.lua's output format) with parsel's, page by page and query by query.
#
# usage: python3 extract_check.py QUERIES PAGES PARSEL_OUT OTHER_OUT [--subset]
# A difference is one (page, query) whose getall() lists are not equal. Without --subset
# every (page, query) of parsel's file must be in the other one (a missing one is a
# difference); with --subset only those the other file has are compared (bs4 and cheerio
# run the CSS queries only). Prints "compared=N differences=D", then the first differences
# (page, query, the first values that differ) and the number of differences per query.
import sys
from collections import Counter


def load(path):
    answers = {}
    for line in open(path, encoding="utf-8", errors="surrogateescape"):
        fields = line.rstrip("\n").split("\t")
        answers[(int(fields[0]), int(fields[1]))] = fields[2:]
    return answers


def main():
    qpath, lpath, ppath, opath = sys.argv[1:5]
    subset = "--subset" in sys.argv[5:]
    queries = [l.rstrip("\n") for l in open(qpath, encoding="utf-8") if l.startswith(("css\t", "xpath\t"))]
    pages = [p for p in open(lpath, encoding="utf-8").read().split("\n") if p]
    want, got = load(ppath), load(opath)
    diffs, per_query, shown = 0, Counter(), 0
    keys = sorted(k for k in want if not subset or k in got)
    for key in keys:
        a, b = want[key], got.get(key)
        if a == b:
            continue
        diffs += 1
        per_query[key[1]] += 1
        if shown < 10:
            shown += 1
            if b is None:
                detail = "missing"
            else:
                i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                detail = "%d vs %d values; first difference at %d: %r vs %r" % (
                    len(a), len(b), i, a[i][:120] if i < len(a) else None, b[i][:120] if i < len(b) else None)
            print("  %s | %s | parsel vs other: %s" % (pages[key[0] - 1], queries[key[1] - 1], detail))
    for qi, n in sorted(per_query.items()):
        print("  query %d (%s): %d pages differ" % (qi, queries[qi - 1], n))
    print("compared=%d differences=%d" % (len(keys), diffs))


if __name__ == "__main__":
    main()
