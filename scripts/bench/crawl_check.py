# Checks a crawl's JSON-lines records against crawl_site.py's lists (scripts/bench/crawl.sh
# runs it after every crawl, unmeasured), so that a crawler that skips work cannot pass.
#
# usage: python3 crawl_check.py EXPECTED DISALLOWED RECORDS
#
# A record with a numeric "status" is a fetched page. The fetched URLs must be exactly the
# lines of EXPECTED, each once, and none of DISALLOWED (robots.txt) may have been fetched;
# a record without a status for a disallowed URL (a crawler may log the skip) is allowed.
# Prints "pages=<fetched> status_200=<n> status_404=<n> skipped=<unfetched records>", and
# on a mismatch what differs, exiting 1.
import json
import sys
from collections import Counter


def lines(path):
    with open(path) as fh:
        return [l.rstrip("\n") for l in fh if l.strip()]


def main():
    expected, disallowed = set(lines(sys.argv[1])), set(lines(sys.argv[2]))
    fetched, statuses, skipped, bad = Counter(), Counter(), [], 0
    for l in lines(sys.argv[3]):
        try:
            r = json.loads(l)
        except ValueError:
            bad += 1
            continue
        if isinstance(r.get("status"), int):
            fetched[r["url"]] += 1
            statuses[r["status"]] += 1
        else:
            skipped.append(r)
    problems = []
    if bad:
        problems.append("%d lines are not JSON" % bad)
    missing = sorted(expected - fetched.keys())
    extra = sorted(fetched.keys() - expected - disallowed)
    robots = sorted(fetched.keys() & disallowed)
    twice = sorted(u for u, c in fetched.items() if c > 1)
    for what, urls in (("not fetched", missing), ("fetched but not on the site", extra),
                       ("fetched though robots.txt disallows them", robots), ("fetched twice", twice)):
        if urls:
            problems.append("%d URLs %s, e.g. %s" % (len(urls), what, " ".join(urls[:3])))
    unexplained = [r for r in skipped if r.get("url") not in disallowed]
    if unexplained:
        problems.append("%d records without a status, e.g. %s" % (len(unexplained), json.dumps(unexplained[0])[:300]))
    print("pages=%d status_200=%d status_404=%d skipped=%d" % (
        sum(fetched.values()), statuses[200], statuses[404], len(skipped)))
    if problems:
        print("crawl_check: %s: %s" % (sys.argv[3], "; ".join(problems)), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
