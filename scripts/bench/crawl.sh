# The crawler benchmarks (issue 4), sourced by run.sh, whose helpers they use (plan and
# run_plan, row, goal, free_port, nginx_start, bg_stop, apt_install): `crawl` and `crawl_mem`.
#
#   crawl      crawl_site.py's static two-host site (2 x 2,500 pages of 3-5 KB, 14-20 links
#              each, same-host and cross-host, a robots.txt per host disallowing a /private/
#              section that pages link to, a few links to 404s; 2 x 500 with BENCH_QUICK)
#              on a local nginx (crawl_nginx.conf.in: one worker, two server blocks on two
#              free loopback ports), crawled by scripts/crawl.lua and by Scrapy
#              (crawl_scrapy.py, Debian's python3-scrapy, 2.8) with equal settings: 32
#              requests in flight at once (--limit, CONCURRENT_REQUESTS), 16 per host
#              (--per-host, CONCURRENT_REQUESTS_PER_DOMAIN with one download slot per
#              host:port), robots.txt obeyed, no delay, no depth or page limit. With two hosts
#              both limits are reached. Each crawler runs against the same warm nginx;
#              pages/s = pages / wall time (startup included, as everywhere in run.sh);
#              Scrapy's own clock is printed beside it. Scrapy is cpu-bound here: most of
#              its time goes to LinkExtractor (canonicalize_url) and to turning every
#              extracted link into a Request that its dupefilter then drops; a spider that
#              dropped repeats itself (not what CrawlSpider does) was 1.5x faster in a trial.
#   crawl_mem  scripts/testsite.lua --plain, one host of 100k and then 1M pages (10k and
#              100k with BENCH_QUICK), a fresh site for each run, crawled by crawl.lua with
#              --limit 64 --per-host 64: peak RSS, and its growth per added URL, which only
#              the seen set may cause (at most 16 bytes per URL).
#
# Every crawl's records are checked after the run, unmeasured (crawl_check.py): the fetched
# URLs must be exactly the site's reachable and allowed ones, each once, and none that
# robots.txt disallows; a mismatch is an error row, not a result.

CRAWL_LIMIT=32
CRAWL_PER_HOST=16
CRAWL_MEM_LIMIT=64

# setup_crawl: nginx and curl (as for http) and Scrapy.
setup_crawl() {
  [ -x "$NGINX" ] || apt_install nginx-light || exit 1
  command -v curl >/dev/null || apt_install curl || exit 1
  "$PY" -c 'import scrapy' 2>/dev/null || apt_install python3-scrapy || exit 1
}

# crawl_check KEY EXPECTED DISALLOWED : run after each crawl of KEY (its PLAN_POST); checks
# $TMP/KEY.jsonl and marks KEY as failed when the records are wrong. Keeps the crawler's
# summary line (stderr's last line) in CRAWL_SUMMARY[KEY].
declare -A CRAWL_SUMMARY
crawl_check() {
  local key=$1
  CRAWL_SUMMARY[$key]=$(tail -n 1 "$TMP/stderr")
  if ! "$PY" "$DIR/crawl_check.py" "$2" "$3" "$TMP/$key.jsonl" >"$TMP/check.out" 2>&1; then
    echo "bench: $key: the crawl's records are wrong:" >&2
    cat "$TMP/check.out" >&2
    WALL[$key]=ERR; ERRORS=$((ERRORS + 1))
  fi
  rm -f "$TMP/$key.jsonl"
}

# crawl_note KEY PAGES : sets PPS[KEY], pages per second over the median wall time (or n/a),
# and adds it to KEY's note.
declare -A PPS
crawl_note() {
  PPS[$1]=n/a
  ok "$1" || return 0
  PPS[$1]=$(awk -v n="$2" -v w="${WALL[$1]}" 'BEGIN { printf "%.0f", n / w }')
  NOTE[$1]="${NOTE[$1]}, ${PPS[$1]} pages/s"
}

bench_crawl() {
  local per=2500 site="$TMP/crawl_site" p2 p1 gen pages s1 s2 ver k
  [ "$QUICK" = 1 ] && per=500
  ver=$("$PY" -c 'import scrapy; print(scrapy.__version__)')
  rm -rf "$site"; mkdir -p "$site"
  chmod o+x "$TMP"   # nginx's worker runs as nobody when started by root; mktemp made it 0700
  p2=$(free_port)
  nginx_start "$DIR/crawl_nginx.conf.in" -e "s|@PORT2@|$p2|g" -e "s|@SITE@|$site|g" ||
    { ERRORS=$((ERRORS + 1)); return; }
  p1=${NGINX_URL##*:}
  if ! gen=$("$PY" "$DIR/crawl_site.py" "$site" "$p1" "$p2" "$per"); then
    echo "bench: crawl: crawl_site.py failed" >&2
    ERRORS=$((ERRORS + 1)); bg_stop "$NGINX_PID"; return
  fi
  pages=$(sed -n 's/.*pages=\([0-9]*\).*/\1/p' <<<"$gen")
  s1="http://127.0.0.1:$p1/" s2="http://127.0.0.1:$p2/"
  echo "== crawl: 2 hosts x $per pages on nginx ($gen), --limit $CRAWL_LIMIT --per-host $CRAWL_PER_HOST, sluice vs Scrapy $ver" >&2
  local check="crawl_check KEY $site/expected.txt $site/disallowed.txt"
  if [ -f "$ROOT/scripts/crawl.lua" ]; then
    plan crawl.sluice "$RUNS" "" "$SLUICE" "$ROOT/scripts/crawl.lua" --limit "$CRAWL_LIMIT" \
      --per-host "$CRAWL_PER_HOST" --out "$TMP/crawl.sluice.jsonl" "$s1" "$s2"
    PLAN_POST[crawl.sluice]=${check/KEY/crawl.sluice}
    if [ -n "$BASE" ]; then
      plan crawl.base "$RUNS" "" "$BASE" "$ROOT/scripts/crawl.lua" --limit "$CRAWL_LIMIT" \
        --per-host "$CRAWL_PER_HOST" --out "$TMP/crawl.base.jsonl" "$s1" "$s2"
      PLAN_POST[crawl.base]=${check/KEY/crawl.base}
    fi
  else
    echo "bench: scripts/crawl.lua not found; only Scrapy is measured" >&2
  fi
  plan crawl.scrapy "$PEER_RUNS" "items=$pages" "$PY" "$DIR/crawl_scrapy.py" --limit "$CRAWL_LIMIT" \
    --per-host "$CRAWL_PER_HOST" --out "$TMP/crawl.scrapy.jsonl" "$s1" "$s2"
  PLAN_POST[crawl.scrapy]=${check/KEY/crawl.scrapy}
  run_plan
  bg_stop "$NGINX_PID"

  local pps_s pps_p own=n/a
  crawl_note crawl.sluice "$pages"; crawl_note crawl.scrapy "$pages"
  [ -n "$BASE" ] && crawl_note crawl.base "$pages"
  pps_s=${PPS[crawl.sluice]} pps_p=${PPS[crawl.scrapy]}
  if ok crawl.scrapy; then   # Scrapy's own clock, engine start to close (median)
    own=$(printf '%s' "${OUTS[crawl.scrapy]}" | grep -o 'elapsed=[0-9.]*' | cut -d= -f2 | median)
    own=$(awk -v n="$pages" -v e="$own" 'BEGIN { printf "%.2f s, %.0f pages/s", e, n / e }')
  fi
  local t="crawl nginx, 2 hosts, $CRAWL_LIMIT/$CRAWL_PER_HOST"
  row "$t" crawl.sluice "sluice scripts/crawl.lua" "$pages"
  [ -n "$BASE" ] && row "" crawl.base "base sluice scripts/crawl.lua" "$pages" crawl.sluice
  row "" crawl.scrapy "scrapy $ver (CrawlerProcess)" "$pages" crawl.sluice
  ROWS+=("$(printf '%-26s %s' "" "scrapy by its own clock (startup excluded): $own")")
  ok crawl.sluice && ROWS+=("$(printf '%-26s %s' "" "sluice: ${CRAWL_SUMMARY[crawl.sluice]}")")

  local r=n/a m=n/a
  [ "$pps_s" != n/a ] && [ "$pps_p" != n/a ] && r=$(awk -v a="$pps_s" -v b="$pps_p" 'BEGIN { printf "%.1f", a / b }')
  ok crawl.sluice && ok crawl.scrapy && m=$(awk -v a="${RSS[crawl.sluice]}" -v b="${RSS[crawl.scrapy]}" 'BEGIN { printf "%.2f", a / b }')
  goal "crawl: sluice >= 10x Scrapy's pages/s (${r}x: $pps_s vs $pps_p pages/s, $pages pages)" \
    'a >= 10 * b' "$pps_s" "$pps_p"
  goal "crawl: sluice peak RSS <= 1/3 of Scrapy's (${m}x: ${RSS[crawl.sluice]:-n/a} vs ${RSS[crawl.scrapy]:-n/a} KiB)" \
    'a * 3 <= b' "${RSS[crawl.sluice]:-n/a}" "${RSS[crawl.scrapy]:-n/a}"
  local rb=n/a
  [ "$pps_s" != n/a ] && [ "${PPS[crawl.base]:-n/a}" != n/a ] &&
    rb=$(awk -v a="$pps_s" -v b="${PPS[crawl.base]}" 'BEGIN { printf "%.2f", a / b }')
  base_goal crawl "$rb" "$pps_s vs ${PPS[crawl.base]:-n/a} pages/s"
}

# crawl_site_start PAGES / crawl_site_stop: a fresh plain one-host testsite.lua of PAGES pages
# for each crawl_mem run (its PLAN_PRE / PLAN_POST); the seed goes to $TMP/crawl_mem.seeds and
# the URLs a crawl must fetch to $TMP/crawl_mem.expected ("/" and /p/1.html to /p/N-1.html).
CRAWL_SITE_PID=
crawl_site_start() {
  local f="$TMP/crawl_mem.seeds" _
  rm -f "$f" "$TMP/crawl_mem."*.jsonl
  "$SLUICE" "$ROOT/scripts/testsite.lua" --plain --hosts 1 --pages "$1" --seeds-file "$f" \
    >"$TMP/testsite.out" 2>&1 &
  CRAWL_SITE_PID=$!
  BG_PIDS+=("$CRAWL_SITE_PID")
  for _ in $(seq 300); do
    [ -s "$f" ] && break
    kill -0 "$CRAWL_SITE_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -s "$f" ]; then
    echo "bench: testsite.lua did not start:" >&2; tail -n 20 "$TMP/testsite.out" >&2
    crawl_site_stop; return 1
  fi
  awk -v n="$1" '{ o = $1; sub(/\/$/, "", o); print o "/"; for (i = 1; i < n; i++) print o "/p/" i ".html" }' \
    "$f" >"$TMP/crawl_mem.expected"
}
crawl_site_stop() {
  [ -n "$CRAWL_SITE_PID" ] && bg_stop "$CRAWL_SITE_PID"
  CRAWL_SITE_PID=
}

# crawl_mem_sizes: sets small and big (the caller's locals), the two sites' sizes.
crawl_mem_sizes() {
  small=100000 big=1000000
  [ "$QUICK" = 1 ] && { small=10000; big=100000; }
}

# crawl_mem_runs NAME TITLE LABEL WHAT CMD_FN [NOTE] : the two crawl_mem runs, NAME.small
# and NAME.big, each on a fresh site of $small and $big pages (crawl_site_start); CMD_FN OUT
# sets CM_CMD, the command line writing its records to OUT. Then the two rows (TITLE, LABEL),
# the peak RSS growth per added URL (NOTE after it), and its goal (at most 16 bytes); WHAT
# qualifies both ("" or " with extraction").
crawl_mem_runs() {
  local name=$1 title=$2 label=$3 what=$4 cmd_fn=$5 note=${6:+ ($6)} k n
  touch "$TMP/crawl_mem.none"
  for k in small big; do
    n=${!k}
    "$cmd_fn" "$TMP/$name.$k.jsonl"
    plan "$name.$k" 1 "" "${CM_CMD[@]}"
    PLAN_PRE[$name.$k]="crawl_site_start $n"
    PLAN_POST[$name.$k]="crawl_site_stop; crawl_check $name.$k $TMP/crawl_mem.expected $TMP/crawl_mem.none"
  done
  run_plan

  crawl_note "$name.small" "$small"; crawl_note "$name.big" "$big"
  row "$title" "$name.small" "$label" "$small"
  row "" "$name.big" "$label" "$big" "$name.small" "$((big / small))x the pages: "
  local per=n/a kib=n/a a=${RSS[$name.big]:-n/a} b=${RSS[$name.small]:-n/a}
  if ok "$name.small" && ok "$name.big"; then
    kib=$((a - b))
    per=$(awk -v a="$a" -v b="$b" -v n=$((big - small)) 'BEGIN { printf "%.1f", (a - b) * 1024 / n }')
  fi
  ROWS+=("$(printf '%-26s %s' "" "peak RSS growth $small -> $big pages$what: $kib KiB, $per bytes per added URL$note")")
  for k in small big; do
    ok "$name.$k" && ROWS+=("$(printf '%-26s %s' "" "sluice: ${CRAWL_SUMMARY[$name.$k]}")")
  done
  goal "${title%%[ ,]*}: sluice peak RSS grows <= 16 bytes per added URL from $small to $big pages$what ($per B/URL: $a vs $b KiB)" \
    'a <= 16' "$per"
}

# crawl_mem_cmd OUT: crawl_mem's command line, scripts/crawl.lua alone.
crawl_mem_cmd() {
  CM_CMD=("$SLUICE" "$ROOT/scripts/crawl.lua" --limit "$CRAWL_MEM_LIMIT" --per-host "$CRAWL_MEM_LIMIT"
          --out "$1" -f "$TMP/crawl_mem.seeds")
}

bench_crawl_mem() {
  local small big
  crawl_mem_sizes
  echo "== crawl_mem: crawl.lua over a plain testsite.lua host of $small then $big pages, --limit $CRAWL_MEM_LIMIT --per-host $CRAWL_MEM_LIMIT" >&2
  if [ ! -f "$ROOT/scripts/crawl.lua" ] || [ ! -f "$ROOT/scripts/testsite.lua" ]; then
    echo "bench: scripts/crawl.lua or scripts/testsite.lua not found; crawl_mem skipped" >&2
    goal "crawl_mem: sluice peak RSS grows <= 16 bytes per added URL" 'a' n/a
    return
  fi
  crawl_mem_runs crawl_mem "crawl_mem testsite, c=$CRAWL_MEM_LIMIT" "sluice scripts/crawl.lua" "" crawl_mem_cmd
}
