# What the extract benchmark's Python peers (extract_parsel.py, extract_bs4.py) share with
# extract.lua: its arguments, its reading of QUERIES and PAGES, its clock and its output.
#
# usage of a peer: python3 PEER.py QUERIES PAGES [OUT]     (as extract.lua; same output)
import sys
import time

ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def run(prepare, answers, tail=""):
    """Runs the benchmark as extract.lua does. prepare(queries) gets the queries, a list of
    (number, kind, text) with kind "css" or "xpath" numbered as extract.lua numbers them, and
    returns what the peer runs; answers(body, prepared) yields (number, values) for one page
    (bytes). Pages are read before the clock (time.process_time) starts. Prints
    "pages=N queries=Q results=R cpu=S", Q being len(prepared), then tail."""
    if len(sys.argv) < 3:
        sys.exit("usage: %s QUERIES PAGES [OUT]" % sys.argv[0])
    qpath, lpath = sys.argv[1], sys.argv[2]
    outpath = sys.argv[3] if len(sys.argv) > 3 else None
    queries = []
    for line in open(qpath, encoding="utf-8"):
        kind, _, q = line.rstrip("\n").partition("\t")
        if kind in ("css", "xpath") and q:
            queries.append((len(queries) + 1, kind, q))
    prepared = prepare(queries)
    bodies = []
    for path in open(lpath, encoding="utf-8").read().split("\n"):
        if path:
            with open(path, "rb") as f:
                bodies.append(f.read())
    out = open(outpath, "w", encoding="utf-8", newline="\n") if outpath else None
    results = 0
    t0 = time.process_time()
    for p, body in enumerate(bodies, 1):
        for qi, values in answers(body, prepared):
            results += len(values)
            if out:
                out.write("\t".join([str(p), str(qi)] + [v.translate(ESC) for v in values]) + "\n")
    cpu = time.process_time() - t0
    if out:
        out.close()
    print("pages=%d queries=%d results=%d cpu=%.3f%s" % (
        len(bodies), len(prepared), results, cpu, tail))
