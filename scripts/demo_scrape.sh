#!/usr/bin/env bash
# demo_scrape.sh: the offline scraping demo. Starts scripts/testsite.lua with its shop
# (--catalogue), scrapes it with `sluice crawl --handler scripts/scrape_catalogue.lua` into
# SQLite and prints three rows with sqlite3. The site is stopped on every way out.
#
# usage: bash scripts/demo_scrape.sh [PRODUCTS=200]   (`make demo` runs it last)
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE=${SLUICE:-$ROOT/sluice}
PRODUCTS=${1:-200}
cd "$ROOT" || exit 1
. scripts/bg_stop.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-scrape.XXXXXX")
SITE_PID=

stop_site() { bg_stop "$SITE_PID"; SITE_PID=; }
trap 'stop_site; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$SLUICE" scripts/testsite.lua --hosts 1 --pages 10 --catalogue "$PRODUCTS" \
  --seeds-file "$tmp/seeds" >/dev/null 2>"$tmp/site.err" &
SITE_PID=$!
for _ in $(seq 100); do
  [ -s "$tmp/seeds" ] && break
  kill -0 "$SITE_PID" 2>/dev/null || break
  sleep 0.1
done
if [ ! -s "$tmp/seeds" ]; then
  echo "demo: scripts/testsite.lua did not start:" >&2
  cat "$tmp/site.err" >&2
  exit 1
fi
url="$(head -n 1 "$tmp/seeds")catalogue/page/1.html"

echo
echo "== Scraping the test site's shop ($PRODUCTS products) with scripts/scrape_catalogue.lua:"
sed -n '/^return/,$p' scripts/scrape_catalogue.lua | sed 's/^/   /'
echo "   ./sluice crawl --handler scripts/scrape_catalogue.lua --out \$tmp/catalogue.sqlite $url"
"$SLUICE" crawl --handler scripts/scrape_catalogue.lua --limit 16 --per-host 8 \
  --out "$tmp/catalogue.sqlite" "$url" 2>"$tmp/crawl.err"
rc=$?
stop_site
sed 's/^/   /' "$tmp/crawl.err"
[ $rc -eq 0 ] || exit $rc
echo "   sqlite3 \$tmp/catalogue.sqlite \"select json_extract(item,'\$.name'), json_extract(item,'\$.price') from items limit 3\""
sqlite3 "$tmp/catalogue.sqlite" \
  "select json_extract(item,'$.name'), json_extract(item,'$.price') from items limit 3" |
  sed 's/^/   /'
