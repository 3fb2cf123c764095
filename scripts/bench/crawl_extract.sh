# The crawl-with-extraction benchmarks (issue 10), sourced by run.sh after crawl.sh and
# extract.sh, whose helpers they use: `crawl_extract` and `crawl_extract_mem`.
#
#   crawl_extract      testsite.lua's catalogue (--catalogue 5000 --export: 5,000 product
#                      pages of about 4 KB and 250 listing pages, 1,000 and 50 with
#                      BENCH_QUICK), written to files once and served by a local nginx
#                      (crawl_nginx.conf.in, its first host; a home page links the
#                      catalogue), crawled from "/" by sluice and by Scrapy with crawl.sh's
#                      settings (--limit 32 --per-host 16, every link followed) and a handler
#                      that extracts 5 fields a page with selectors (extract_handler.lua:
#                      name, price, stock, tags and sku on a product page; title, heading,
#                      links, paragraphs, first <em> elsewhere) against
#                      crawl_extract_scrapy.py asking Scrapy's selectors the same. sluice
#                      runs scripts/crawl.lua --handler when it has it, else crawl_extract.lua
#                      (sluice.crawl with the handler). After each crawl, unmeasured, the
#                      URLs are checked (crawl_check.py) and the items (crawl_extract_check.py:
#                      one per page, every product's, prices adding up to testsite's own sum).
#   crawl_extract_mem  crawl_mem's runs (a plain one-host testsite.lua of 100k then 1M
#                      pages; 10k and 100k with BENCH_QUICK) with that handler, which parses
#                      every page: peak RSS, and its growth per added URL (at most 16 bytes,
#                      as without extraction: the seen set's share).

CRAWL_EXTRACT_PRODUCTS=5000

# crawl_extract_cmd LIMIT PER_HOST OUT SEED... : sets CE_CMD, the sluice command line with
# extract_handler.lua, and CE_HOW, which crawler it runs.
crawl_extract_cmd() {
  local limit=$1 per_host=$2 out=$3; shift 3
  if "$SLUICE" "$ROOT/scripts/crawl.lua" --help 2>&1 | grep -q -- --handler; then
    CE_CMD=("$SLUICE" "$ROOT/scripts/crawl.lua" --handler "$DIR/extract_handler.lua")
    CE_HOW="scripts/crawl.lua --handler"
  else
    CE_CMD=("$SLUICE" "$DIR/crawl_extract.lua" "$DIR/extract_handler.lua")
    CE_HOW="crawl_extract.lua (no crawl.lua --handler)"
  fi
  CE_CMD+=(--limit "$limit" --per-host "$per_host" --out "$out" "$@")
}

# crawl_extract_post KEY PRODUCTS CENTS : crawl_check's URL check, then the items' check.
crawl_extract_post() {
  local key=$1
  cp "$TMP/$key.jsonl" "$TMP/$key.items" 2>/dev/null
  crawl_check "$key" "$TMP/crawl_extract.expected" "$TMP/crawl_mem.none"
  if ok "$key" && ! "$PY" "$DIR/crawl_extract_check.py" "$TMP/$key.items" "$2" "$3" >"$TMP/check.out" 2>&1; then
    echo "bench: $key: the crawl's items are wrong:" >&2
    cat "$TMP/check.out" >&2
    WALL[$key]=ERR; ERRORS=$((ERRORS + 1))
  fi
  rm -f "$TMP/$key.items"
}

bench_crawl_extract() {
  local np=$CRAWL_EXTRACT_PRODUCTS site="$TMP/crawl_extract_site" p2 ver pages lists cents
  [ "$QUICK" = 1 ] && np=1000
  if ! sluice_html_has parse; then
    echo "bench: this sluice has no html.parse; crawl_extract skipped" >&2
    na_row "crawl_extract catalogue" "sluice crawl + 5 fields" "this sluice has no html.parse"
    goal "crawl_extract: sluice >= 30x Scrapy's pages/s" 'a' n/a
    return
  fi
  ver=$("$PY" -c 'import scrapy; print(scrapy.__version__)')
  rm -rf "$site"; mkdir -p "$site/b"
  touch "$TMP/crawl_mem.none"
  if ! "$SLUICE" "$ROOT/scripts/testsite.lua" --catalogue "$np" --hosts 1 --export "$site/a" 2>"$TMP/testsite.out"; then
    echo "bench: crawl_extract: testsite.lua --export failed:" >&2; cat "$TMP/testsite.out" >&2
    ERRORS=$((ERRORS + 1)); return
  fi
  printf '<!DOCTYPE html>\n<html><head><title>sluice test shop</title></head><body><h1>The shop</h1>\n<p><a href="/catalogue/page/1.html">Catalogue</a></p></body></html>\n' >"$site/a/index.html"
  cents=$("$SLUICE" -e "local t = dofile('$ROOT/scripts/testsite.lua'); local s = 0
    for id = 1, $np do s = s + math.tointeger(t.product({seed = 1}, 1, id).price:gsub('%.', '') + 0) end
    print(s)")
  lists=$(( (np - 1) / 20 + 1 )); pages=$((np + lists + 1))
  chmod o+x "$TMP"
  p2=$(free_port)
  nginx_start "$DIR/crawl_nginx.conf.in" -e "s|@PORT2@|$p2|g" -e "s|@SITE@|$site|g" ||
    { ERRORS=$((ERRORS + 1)); return; }
  local o=$NGINX_URL
  { echo "$o/"; seq "$lists" | sed "s|^|$o/catalogue/page/|; s|$|.html|"
    seq "$np" | sed "s|^|$o/catalogue/product/|; s|$|.html|"; } >"$TMP/crawl_extract.expected"
  echo "== crawl_extract: testsite.lua's catalogue on nginx ($np products, $pages pages), --limit $CRAWL_LIMIT --per-host $CRAWL_PER_HOST, 5 fields a page: sluice vs Scrapy $ver" >&2
  crawl_extract_cmd "$CRAWL_LIMIT" "$CRAWL_PER_HOST" "$TMP/crawl_extract.sluice.jsonl" "$o/"
  plan crawl_extract.sluice "$RUNS" "" "${CE_CMD[@]}"
  PLAN_POST[crawl_extract.sluice]="crawl_extract_post crawl_extract.sluice $np $cents"
  plan crawl_extract.scrapy "$PEER_RUNS" "items=$pages" "$PY" "$DIR/crawl_extract_scrapy.py" --limit "$CRAWL_LIMIT" \
    --per-host "$CRAWL_PER_HOST" --out "$TMP/crawl_extract.scrapy.jsonl" "$o/"
  PLAN_POST[crawl_extract.scrapy]="crawl_extract_post crawl_extract.scrapy $np $cents"
  run_plan
  bg_stop "$NGINX_PID"

  crawl_note crawl_extract.sluice "$pages"; crawl_note crawl_extract.scrapy "$pages"
  local t="crawl_extract catalogue, $CRAWL_LIMIT/$CRAWL_PER_HOST"
  row "$t" crawl_extract.sluice "sluice + 5 fields a page" "$pages"
  row "" crawl_extract.scrapy "scrapy $ver + 5 fields a page" "$pages" crawl_extract.sluice
  ROWS+=("$(printf '%-26s %s' "" "sluice ran $CE_HOW; items checked: one a page, prices adding up to $cents cents")")
  ok crawl_extract.sluice && ROWS+=("$(printf '%-26s %s' "" "sluice: ${CRAWL_SUMMARY[crawl_extract.sluice]}")")
  local pps_s=${PPS[crawl_extract.sluice]} pps_p=${PPS[crawl_extract.scrapy]} r=n/a m=n/a
  [ "$pps_s" != n/a ] && [ "$pps_p" != n/a ] && r=$(awk -v a="$pps_s" -v b="$pps_p" 'BEGIN { printf "%.1f", a / b }')
  ok crawl_extract.sluice && ok crawl_extract.scrapy &&
    m=$(awk -v a="${RSS[crawl_extract.sluice]}" -v b="${RSS[crawl_extract.scrapy]}" 'BEGIN { printf "%.2f", a / b }')
  goal "crawl_extract: sluice >= 30x Scrapy's pages/s, both extracting 5 fields a page (${r}x: $pps_s vs $pps_p pages/s, $pages pages)" \
    'a >= 30 * b' "$pps_s" "$pps_p"
  goal "crawl_extract: sluice peak RSS <= 1/3 of Scrapy's (${m}x: ${RSS[crawl_extract.sluice]:-n/a} vs ${RSS[crawl_extract.scrapy]:-n/a} KiB)" \
    'a * 3 <= b' "${RSS[crawl_extract.sluice]:-n/a}" "${RSS[crawl_extract.scrapy]:-n/a}"
}

# crawl_extract_mem_cmd OUT: crawl_mem's command line with extract_handler.lua.
crawl_extract_mem_cmd() {
  crawl_extract_cmd "$CRAWL_MEM_LIMIT" "$CRAWL_MEM_LIMIT" "$1" -f "$TMP/crawl_mem.seeds"
  CM_CMD=("${CE_CMD[@]}")
}

bench_crawl_extract_mem() {
  local small big
  crawl_mem_sizes
  echo "== crawl_extract_mem: crawl_mem's plain testsite.lua host of $small then $big pages, a handler parsing every page, --limit $CRAWL_MEM_LIMIT --per-host $CRAWL_MEM_LIMIT" >&2
  if ! sluice_html_has parse; then
    echo "bench: this sluice has no html.parse; crawl_extract_mem skipped" >&2
    na_row "crawl_extract_mem testsite" "sluice crawl + 5 fields" "this sluice has no html.parse"
    goal "crawl_extract_mem: sluice peak RSS grows <= 16 bytes per added URL" 'a' n/a
    return
  fi
  crawl_extract_cmd "$CRAWL_MEM_LIMIT" "$CRAWL_MEM_LIMIT" /dev/null   # for CE_HOW
  crawl_mem_runs crawl_xmem "crawl_extract_mem, c=$CRAWL_MEM_LIMIT" "sluice + 5 fields a page" \
    " with extraction" crawl_extract_mem_cmd "$CE_HOW"
}
