# The scraping benchmarks (issue 10), sourced by run.sh, whose helpers they use (plan and
# run_plan, row, goal, median, apt_install): `extract` and `parse_mem`.
#
#   extract    Debian's python3.11-doc (/usr/share/doc/python3.11/html: 530 Sphinx pages,
#              67 MB of real HTML; every 5th page with BENCH_QUICK), and the 48 queries of
#              extract_queries.txt (30 CSS, 18 XPath: titles, hrefs via ::attr(href),
#              headings' text, nth-child and nth-of-type, attribute operators, :not, :has,
#              :contains, count(), string(), normalize-space(), booleans, unions) run on every
#              page, getall() each time, by:
#                sluice     extract.lua: html.parse, doc:css / doc:xpath
#                parsel     extract_parsel.py: parsel 1.7 (python3-parsel), Selector(text=)
#                bs4        extract_bs4.py: BeautifulSoup 4 on lxml (python3-bs4), soup.select:
#                           the 30 CSS queries only (it has no XPath), parsel's ::text and
#                           ::attr() done in Python on the selected elements
#                cheerio    extract_cheerio.mjs: cheerio 1 (npm, into scripts/bench/
#                           node_modules), the CSS queries only, pseudo-elements as for bs4
#              Each reads the pages into memory first and prints the cpu time of parsing
#              and querying the whole corpus by its own clock ("cpu="); that figure is the
#              one compared (the table's cpu column adds startup and reading). Then, apart
#              and unmeasured, sluice and parsel write every answer (per page, per query, the
#              getall() list) and extract_check.py counts the (page, query) pairs where they
#              differ: 0 is the goal; bs4's and cheerio's answers are compared on their CSS
#              queries too, for information (cheerio parses with parse5, not libxml2).
#   parse_mem  the memory a parsed document takes per byte of HTML: parse_mem.lua and
#              parse_mem.py parse the same pages (the corpus's first 16 MB, in name order)
#              and keep every document; the growth of the process's resident set
#              (/proc/self/statm, after the bodies were read) over the HTML bytes is the
#              cost of the trees: sluice's html.parse documents against lxml's trees
#              (lxml.etree.HTMLParser, as parsel builds them). Then each parses and frees
#              the pages one at a time, three times over: the resident set must not grow
#              past the largest page's tree (a document is freed when it is dropped).

EXTRACT_PKG=python3.11-doc
EXTRACT_DOCS=/usr/share/doc/python3.11/html
EXTRACT_MIN_PAGES=500

# npm_cli: the npm command, also where Node's own package ships npm without a /usr/bin/npm.
npm_cli() {
  if command -v npm >/dev/null; then npm "$@"
  elif [ -x "$NODE" ] && [ -f /usr/lib/node_modules/npm/bin/npm-cli.js ]; then
    "$NODE" /usr/lib/node_modules/npm/bin/npm-cli.js "$@"
  else return 127; fi
}

# setup_extract: the corpus, parsel, bs4 + lxml, and cheerio under scripts/bench/node_modules.
setup_extract() {
  [ -d "$EXTRACT_DOCS" ] || apt_install "$EXTRACT_PKG" || exit 1
  "$PY" -c 'import parsel' 2>/dev/null || apt_install python3-parsel || exit 1
  "$PY" -c 'import bs4, lxml' 2>/dev/null || apt_install python3-bs4 python3-lxml || exit 1
  if [ -x "$NODE" ] && ! npm_cli --version >/dev/null 2>&1; then
    apt_install npm || echo "bench: no npm; the cheerio peer is skipped" >&2
  fi
  if [ -x "$NODE" ] && [ ! -f "$DIR/node_modules/cheerio/package.json" ]; then
    echo "bench: installing cheerio for the extract peer into $DIR/node_modules" >&2
    npm_cli install --prefix "$DIR" --no-save --no-package-lock --no-audit --no-fund \
      --loglevel=error cheerio@1 >&2 || echo "bench: npm install cheerio failed; the cheerio peer is skipped" >&2
  fi
}

cheerio_peer() { [ -x "$NODE" ] && [ -f "$DIR/node_modules/cheerio/package.json" ]; }

# sluice_html_has FIELD... : true when this build's sluice.html exports every FIELD.
sluice_html_has() {
  local f code="local h = require 'sluice.html'"
  for f in "$@"; do code+="; assert(h.$f)"; done
  "$SLUICE" -e "$code" >/dev/null 2>&1
}

# own_cpu KEY : the median of the "cpu=" figures KEY's runs printed (or n/a).
own_cpu() {
  ok "$1" || { echo n/a; return; }
  printf '%s' "${OUTS[$1]}" | grep -o '\bcpu=[0-9.]*' | cut -d= -f2 | median
}

# na_row TITLE LABEL REASON : a table line for an implementation that could not run.
na_row() { ROWS+=("$(printf "$ROWFMT" "$1" "$2" "" "n/a" "" "" "" "n/a: $3")"); }

bench_extract() {
  local list="$TMP/extract.pages" q="$DIR/extract_queries.txt" n nq bytes k
  find "$EXTRACT_DOCS" -name '*.html' | LC_ALL=C sort >"$list"
  n=$(wc -l <"$list")
  if [ "$n" -lt "$EXTRACT_MIN_PAGES" ]; then
    echo "bench: extract: $EXTRACT_DOCS has $n pages, fewer than $EXTRACT_MIN_PAGES" >&2
    ERRORS=$((ERRORS + 1)); return
  fi
  [ "$QUICK" = 1 ] && { awk 'NR % 5 == 1' "$list" >"$list.q"; mv "$list.q" "$list"; n=$(wc -l <"$list"); }
  bytes=$(tr '\n' '\0' <"$list" | du -cb --files0-from=- | tail -n 1 | cut -f1)
  nq=$(grep -c -E '^(css|xpath)	' "$q")
  echo "== extract: $nq queries on $n pages of $EXTRACT_PKG ($((bytes / 1024 / 1024)) MB): sluice, parsel, bs4 + lxml, cheerio" >&2
  local has_sluice=1
  sluice_html_has parse || { has_sluice=0; echo "bench: this sluice has no html.parse; its extract rows are n/a" >&2; }
  [ $has_sluice = 1 ] && plan extract.sluice "$RUNS" "pages=$n queries=$nq" "$SLUICE" "$DIR/extract.lua" "$q" "$list"
  plan extract.parsel "$PEER_RUNS" "pages=$n queries=$nq" "$PY" "$DIR/extract_parsel.py" "$q" "$list"
  plan extract.bs4 "$PEER_RUNS" "pages=$n" "$PY" "$DIR/extract_bs4.py" "$q" "$list"
  cheerio_peer && plan extract.cheerio "$PEER_RUNS" "pages=$n" "$NODE" "$DIR/extract_cheerio.mjs" "$q" "$list"
  run_plan

  # The answers, apart and unmeasured: every implementation's against parsel's.
  declare -A DIFF
  local out="$TMP/extract.answers" impl
  if ok extract.parsel && "$PY" "$DIR/extract_parsel.py" "$q" "$list" "$out.parsel" >/dev/null; then
    for impl in sluice bs4 cheerio; do
      ok "extract.$impl" || continue
      local cmd=("$PY" "$DIR/extract_$impl.py") sub=--subset
      [ $impl = sluice ] && { cmd=("$SLUICE" "$DIR/extract.lua"); sub=; }
      [ $impl = cheerio ] && cmd=("$NODE" "$DIR/extract_cheerio.mjs")
      if "${cmd[@]}" "$q" "$list" "$out.$impl" >/dev/null &&
         "$PY" "$DIR/extract_check.py" "$q" "$list" "$out.parsel" "$out.$impl" $sub >"$TMP/extract.check.$impl"; then
        DIFF[$impl]=$(sed -n 's/.*compared=\([0-9]*\) differences=\([0-9]*\).*/\2 of \1/p' "$TMP/extract.check.$impl")
        if [ "${DIFF[$impl]%% *}" != 0 ]; then
          echo "bench: extract: $impl's answers differ from parsel's:" >&2
          head -n 30 "$TMP/extract.check.$impl" >&2
        fi
      else
        echo "bench: extract: the answers of $impl could not be compared" >&2
      fi
    done
    rm -f "$out".*
  fi

  declare -A OWN
  for k in sluice parsel bs4 cheerio; do
    OWN[$k]=$(own_cpu "extract.$k")
    ok "extract.$k" && NOTE[extract.$k]="${NOTE[extract.$k]}, ${OWN[$k]} s own cpu"
  done
  local t="extract $nq queries, $n pages"
  if [ $has_sluice = 1 ]; then row "$t" extract.sluice "sluice html.parse + css/xpath" "$n"
  else na_row "$t" "sluice html.parse + css/xpath" "this sluice has no html.parse"; t=""; fi
  row "" extract.parsel "parsel $("$PY" -c 'import parsel; print(parsel.__version__)')" "$n" extract.sluice
  row "" extract.bs4 "bs4 + lxml, CSS only" "$n" extract.sluice
  if cheerio_peer; then row "" extract.cheerio "cheerio, CSS only" "$n" extract.sluice
  else na_row "" "cheerio, CSS only" "no node or npm"; fi
  ROWS+=("$(printf '%-26s %s' "" "own cpu (parse + queries): sluice ${OWN[sluice]} s, parsel ${OWN[parsel]} s, bs4 ${OWN[bs4]} s (CSS only), cheerio ${OWN[cheerio]} s (CSS only)")")
  ROWS+=("$(printf '%-26s %s' "" "answers differing from parsel's (page x query): sluice ${DIFF[sluice]:-n/a}; bs4 ${DIFF[bs4]:-n/a}, cheerio ${DIFF[cheerio]:-n/a} (CSS only, information)")")

  local r=n/a
  [ "${OWN[sluice]}" != n/a ] && [ "${OWN[parsel]}" != n/a ] &&
    r=$(awk -v a="${OWN[parsel]}" -v b="${OWN[sluice]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  goal "extract: sluice's answers equal parsel's on every page and query (${DIFF[sluice]:-n/a} differ)" \
    'a == 0' "${DIFF[sluice]%% *}"
  goal "extract: sluice >= 3x parsel's speed, cpu for parse + queries (${r}x: ${OWN[sluice]} s vs ${OWN[parsel]} s)" \
    'a >= 3' "$r"
  local best=n/a who=""
  for k in parsel bs4 cheerio; do
    [ "${OWN[$k]}" = n/a ] && continue
    if [ "$best" = n/a ] || awk -v a="${OWN[$k]}" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=${OWN[$k]}; who=$k; fi
  done
  goal "extract: sluice the fastest of the four (${OWN[sluice]} s; the fastest peer: $who $best s, bs4 and cheerio running the CSS queries only)" \
    'a < b' "${OWN[sluice]}" "$best"
}

bench_parse_mem() {
  local list="$TMP/parse_mem.pages" cap=$((16 * 1024 * 1024)) n
  [ "$QUICK" = 1 ] && cap=$((4 * 1024 * 1024))
  find "$EXTRACT_DOCS" -name '*.html' -printf '%s %p\n' | LC_ALL=C sort -k2 |
    awk -v cap="$cap" '{ if (s + $1 > cap) next; s += $1; print $2 }' >"$list"
  n=$(wc -l <"$list")
  echo "== parse_mem: $n pages of $EXTRACT_PKG (at most $((cap / 1024 / 1024)) MB), every document kept: sluice vs lxml" >&2
  local has_sluice=1
  sluice_html_has parse || { has_sluice=0; echo "bench: this sluice has no html.parse; parse_mem's sluice row is n/a" >&2; }
  [ $has_sluice = 1 ] && plan parse_mem.sluice 1 "pages=$n" "$SLUICE" "$DIR/parse_mem.lua" "$list"
  plan parse_mem.lxml 1 "pages=$n" "$PY" "$DIR/parse_mem.py" "$list"
  run_plan

  declare -A PB FREED
  local k
  for k in sluice lxml; do
    PB[$k]=n/a FREED[$k]=n/a
    ok "parse_mem.$k" || continue
    PB[$k]=$(printf '%s' "${OUTS[parse_mem.$k]}" | grep -o 'per_byte=[0-9.]*' | cut -d= -f2)
    FREED[$k]=$(printf '%s' "${OUTS[parse_mem.$k]}" | grep -o 'loop_growth_kib=[-0-9]*' | cut -d= -f2)
    NOTE[parse_mem.$k]="${NOTE[parse_mem.$k]}, ${PB[$k]} B per HTML byte"
  done
  local t="parse_mem $n pages kept"
  if [ $has_sluice = 1 ]; then row "$t" parse_mem.sluice "sluice html.parse" "$n"
  else na_row "$t" "sluice html.parse" "this sluice has no html.parse"; t=""; fi
  row "" parse_mem.lxml "lxml $("$PY" -c 'import lxml; print(lxml.__version__)') etree.HTMLParser" "$n" parse_mem.sluice
  for k in sluice lxml; do
    ok "parse_mem.$k" && ROWS+=("$(printf '%-26s %s' "" "$k: $(printf '%s' "${OUTS[parse_mem.$k]}" | grep -o 'bytes=.*' | tail -n 1)")")
  done
  goal "parse_mem: a sluice document costs no more than lxml's tree per HTML byte (${PB[sluice]} vs ${PB[lxml]} B/B)" \
    'a <= b' "${PB[sluice]}" "${PB[lxml]}"
  goal "parse_mem: parsing and dropping the pages one at a time, 3 times over, grows sluice's RSS by at most the largest page's tree (${FREED[sluice]} KiB beyond it)" \
    'a <= 1024' "${FREED[sluice]}"
}
