# Writes the crawl benchmark's static two-host site (scripts/bench/crawl.sh serves it with
# nginx) and the list of URLs a crawler that obeys robots.txt must fetch from it.
#
# usage: python3 crawl_site.py DIR PORT_A PORT_B [PAGES_PER_HOST [SEED]]
#
# Host a is http://127.0.0.1:PORT_A/ (files in DIR/a), host b likewise (DIR/b). Each host
# has PAGES_PER_HOST pages of a few KB; page i links to pages 2i+1 and 2i+2, so every page
# is reachable from "/", and to about 12 more pages of its own host and 2 of the other,
# written as relative, root-relative, absolute and scheme-relative links, some with a
# fragment, plus the odd mailto: link, a link into /private/ (robots.txt disallows it; those
# pages exist and link further) and a link to a missing page under /gone/ (a 404, which is a
# page too). The same SEED gives the same site, whatever the ports.
#
# It writes DIR/expected.txt (every URL to fetch, one a line: all pages of both hosts plus
# the /gone/ URLs they link to, found by a breadth-first walk from the two roots that does
# not enter /private/) and DIR/disallowed.txt (the /private/ URLs that are linked to), and
# prints "pages=<expected> disallowed=<linked private URLs> bytes=<HTML bytes written>".
import os
import random
import sys

PRIVATE = 60      # pages under /private/ on each host
GONE = 40         # /gone/ URLs pages may link to on each host (no file: nginx answers 404)
WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
         "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
         "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur").split()


def page_path(i):
    """The URL path of public page i: "/" for the root, then /docs/<i // 100>/<i>.html."""
    return "/" if i == 0 else "/docs/%d/%d.html" % (i // 100, i)


def file_for(path):
    return path.lstrip("/") + ("index.html" if path.endswith("/") else "")


def relative(src, dst):
    """dst written relative to the directory of src (both absolute paths)."""
    return os.path.relpath(dst, os.path.dirname(src) or "/") if dst != "/" else "/"


class Site:
    def __init__(self, ports, n, seed):
        self.ports, self.n = ports, n
        self.rng = random.Random(seed)
        self.links = {}   # (host, path) -> list of (host, path) it links to (distinct)

    def origin(self, h):
        return "http://127.0.0.1:%d" % self.ports[h]

    def href(self, h, src, dh, dst):
        """How page (h, src) writes a link to (dh, dst); varied like real pages."""
        r = self.rng.random()
        if dh != h:
            return ("//127.0.0.1:%d" % self.ports[dh] if r < 0.3 else self.origin(dh)) + dst
        if r < 0.4 and dst != "/":
            return relative(src, dst)
        if r < 0.8:
            return dst
        return self.origin(h) + dst

    def text(self, words):
        return " ".join(self.rng.choice(WORDS) for _ in range(words))

    def page(self, h, path, targets, title):
        """Writes one page of about 3-5 KB that links to TARGETS; records its links."""
        rng = self.rng
        self.links[(h, path)] = list(dict.fromkeys(targets))
        anchors = []
        for dh, dst in targets:
            a = self.href(h, path, dh, dst)
            if rng.random() < 0.1:
                a += "#s%d" % rng.randrange(5)
            anchors.append('<a href="%s">%s</a>' % (a, self.text(2)))
        if rng.random() < 0.05:
            anchors.append('<a href="mailto:webmaster@example.org">mail</a>')
        rng.shuffle(anchors)
        parts = ["<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>"
                 "\n<body>\n<h1>%s</h1>\n" % (title, title)]
        per = max(1, len(anchors) // 4)
        for k in range(0, len(anchors), per):
            parts.append("<p>%s %s</p>\n" % (self.text(rng.randrange(60, 110)),
                                             " ".join(anchors[k:k + per])))
        parts.append("</body></html>\n")
        return "".join(parts)

    def build(self):
        """Returns {(host, path): html} for both hosts."""
        rng, n, out = self.rng, self.n, {}
        for h in (0, 1):
            for i in range(n):
                t = [(h, page_path(c)) for c in (2 * i + 1, 2 * i + 2) if c < n]
                t += [(h, page_path(rng.randrange(n))) for _ in range(rng.randrange(8, 16))]
                t += [(1 - h, page_path(rng.randrange(n))) for _ in range(2)]
                if rng.random() < 0.15:
                    t.append((h, "/private/%d.html" % rng.randrange(PRIVATE)))
                if rng.random() < 0.03:
                    t.append((h, "/gone/%d.html" % rng.randrange(GONE)))
                path = page_path(i)
                out[(h, path)] = self.page(h, path, t, "page %d of host %s" % (i, "ab"[h]))
            for j in range(PRIVATE):
                path = "/private/%d.html" % j
                t = [(h, "/private/%d.html" % rng.randrange(PRIVATE)), (h, page_path(rng.randrange(n)))]
                out[(h, path)] = self.page(h, path, t, "private %d" % j)
        return out

    def reachable(self):
        """Breadth-first walk from both roots; /private/ is never entered. Returns (the URLs
        to fetch, the private URLs linked from fetched pages)."""
        seen = {(0, "/"), (1, "/")}
        queue, private = [(0, "/"), (1, "/")], set()
        for node in queue:
            for nxt in self.links.get(node, ()):
                if nxt[1].startswith("/private/"):
                    private.add(nxt)
                elif nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        url = lambda hp: self.origin(hp[0]) + hp[1]
        return sorted(map(url, seen)), sorted(map(url, private))


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: crawl_site.py DIR PORT_A PORT_B [PAGES_PER_HOST [SEED]]")
    d = sys.argv[1]
    ports = (int(sys.argv[2]), int(sys.argv[3]))
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 2500
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    site = Site(ports, n, seed)
    total = 0
    for (h, path), html in site.build().items():
        f = os.path.join(d, "ab"[h], file_for(path))
        os.makedirs(os.path.dirname(f), exist_ok=True)
        with open(f, "w") as fh:
            fh.write(html)
        total += len(html)
    for h in "ab":
        with open(os.path.join(d, h, "robots.txt"), "w") as fh:
            fh.write("User-agent: *\nDisallow: /private/\n")
    expected, private = site.reachable()
    with open(os.path.join(d, "expected.txt"), "w") as fh:
        fh.write("".join(u + "\n" for u in expected))
    with open(os.path.join(d, "disallowed.txt"), "w") as fh:
        fh.write("".join(u + "\n" for u in private))
    print("pages=%d disallowed=%d bytes=%d" % (len(expected), len(private), total))


if __name__ == "__main__":
    main()
