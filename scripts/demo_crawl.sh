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
. scripts/demo_common.sh

OUT=build/demo-crawl.jsonl
STATE=build/demo-crawl.state
demo_setup
site_start --hosts "$HOSTS" --pages "$PAGES" || exit 1

mkdir -p build
rm -rf "$OUT" "$STATE"
echo
echo "== A crawl of scripts/testsite.lua ($HOSTS hosts, $PAGES pages each) on loopback:"
sed 's/^/   seed: /' "$TMP/seeds"
echo "   ./sluice scripts/crawl.lua --limit 32 --per-host 4 --state $STATE --out $OUT -f SEEDS"
"$SLUICE" scripts/crawl.lua --limit 32 --per-host 4 --state "$STATE" --out "$OUT" \
  -f "$TMP/seeds" 2>"$TMP/crawl.err"
rc=$?
bg_stop_all
echo "   $(wc -l <"$OUT") records in $OUT; a few of them:"
grep -m 1 '"status":200' "$OUT" | sed 's/^/   /'
grep -m 1 '"status":301' "$OUT" | sed 's/^/   /'
grep -m 1 '"status":404' "$OUT" | sed 's/^/   /'
grep -m 1 '"status":null' "$OUT" | sed 's/^/   /'
echo
cat "$TMP/crawl.err"
exit $rc
