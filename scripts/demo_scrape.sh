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
. scripts/demo_common.sh

demo_setup
site_start --hosts 1 --pages 10 --catalogue "$PRODUCTS" || exit 1
url="$(head -n 1 "$TMP/seeds")catalogue/page/1.html"

echo
echo "== Scraping the test site's shop ($PRODUCTS products) with scripts/scrape_catalogue.lua:"
sed -n '/^return/,$p' scripts/scrape_catalogue.lua | sed 's/^/   /'
echo "   ./sluice crawl --handler scripts/scrape_catalogue.lua --out \$TMP/catalogue.sqlite $url"
"$SLUICE" crawl --handler scripts/scrape_catalogue.lua --limit 16 --per-host 8 \
  --out "$TMP/catalogue.sqlite" "$url" 2>"$TMP/crawl.err"
rc=$?
bg_stop_all
sed 's/^/   /' "$TMP/crawl.err"
[ $rc -eq 0 ] || exit $rc
echo "   sqlite3 \$TMP/catalogue.sqlite \"select json_extract(item,'\$.name'), json_extract(item,'\$.price') from items limit 3\""
sqlite3 "$TMP/catalogue.sqlite" \
  "select json_extract(item,'$.name'), json_extract(item,'$.price') from items limit 3" |
  sed 's/^/   /'
