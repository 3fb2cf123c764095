#!/usr/bin/env bash
# demo_crawl.sh: the offline crawl demo. Starts scripts/testsite.lua (a synthetic site of
# several hosts on loopback ports, with a robots.txt, slow pages, flaky pages, redirects,
# a binary file and broken links), crawls it with scripts/crawl.lua, shows a few records
# and ends with the crawler's summary. The site is stopped on every way out.
#
# usage: bash scripts/demo_crawl.sh [PAGES_PER_HOST=2000] [HOSTS=3]   (`make demo` runs it)
#
# The records go to build/demo-crawl.jsonl and the crawl's journal to build/demo-crawl.state
# (removed first, so each demo starts afresh).
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE=${SLUICE:-$ROOT/sluice}
PAGES=${1:-2000}
HOSTS=${2:-3}
cd "$ROOT" || exit 1
. scripts/bg_stop.sh

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo.XXXXXX")
OUT=build/demo-crawl.jsonl
STATE=build/demo-crawl.state
SITE_PID=

stop_site() { bg_stop "$SITE_PID"; SITE_PID=; }
trap 'stop_site; rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$SLUICE" scripts/testsite.lua --hosts "$HOSTS" --pages "$PAGES" \
  --seeds-file "$TMP/seeds" >/dev/null 2>"$TMP/site.err" &
SITE_PID=$!
for _ in $(seq 100); do
  [ -f "$TMP/seeds" ] && break
  kill -0 "$SITE_PID" 2>/dev/null || break
  sleep 0.1
done
if [ ! -f "$TMP/seeds" ]; then
  echo "demo: scripts/testsite.lua did not start:" >&2
  cat "$TMP/site.err" >&2
  exit 1
fi

mkdir -p build
rm -rf "$OUT" "$STATE"
echo
echo "== A crawl of scripts/testsite.lua ($HOSTS hosts, $PAGES pages each) on loopback:"
sed 's/^/   seed: /' "$TMP/seeds"
echo "   ./sluice scripts/crawl.lua --limit 32 --per-host 4 --state $STATE --out $OUT -f SEEDS"
"$SLUICE" scripts/crawl.lua --limit 32 --per-host 4 --state "$STATE" --out "$OUT" \
  -f "$TMP/seeds" 2>"$TMP/crawl.err"
rc=$?
stop_site
echo "   $(wc -l <"$OUT") records in $OUT; a few of them:"
grep -m 1 '"status":200' "$OUT" | sed 's/^/   /'
grep -m 1 '"status":301' "$OUT" | sed 's/^/   /'
grep -m 1 '"status":404' "$OUT" | sed 's/^/   /'
grep -m 1 '"status":null' "$OUT" | sed 's/^/   /'
echo
cat "$TMP/crawl.err"
exit $rc
