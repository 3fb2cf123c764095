# Runs sluice's benchmarks against their peers (Python asyncio, Lua on luv, Node) in one go
# and prints a table with the ratios from this run, then the goals as PASS/FAIL lines.
#
# usage: bash scripts/bench/run.sh [lac|sleepers|gather|executor|http|seeds|server|crawl|crawl_mem
#                                   |extract|parse_mem|crawl_extract|crawl_extract_mem|proxy ...]
#                                                                       (default: all)
#   http     fetch_many.lua against a local nginx vs wrk, aiohttp and Node fetch (req/s),
#            and its peak RSS at 1M and 3M GETs
#   seeds    the seeds' scenario: 10,000 GETs at limit 1000 against the 0-3 s delay server,
#            sluice vs the seeds' aiohttp client (wall and cpu time)
#   server   wrk against sluice's HTTP server (a Lua handler) vs wrk against nginx
#   crawl    scripts/crawl.lua vs Scrapy crawling a static two-host site on nginx (pages/s,
#            peak RSS); crawl_mem: crawl.lua's peak RSS over 100k and 1M pages (crawl.sh)
#   extract  48 CSS and XPath queries on 530 pages of Debian's Python docs: sluice vs parsel,
#            bs4 + lxml and cheerio (cpu), answers checked against parsel's; parse_mem: a
#            parsed document's bytes per HTML byte, sluice vs lxml (extract.sh)
#   crawl_extract  the crawl with a handler extracting 5 fields a page, on testsite.lua's
#            catalogue served by nginx: sluice vs Scrapy (pages/s, peak RSS);
#            crawl_extract_mem: crawl_mem's 1M pages with a handler that parses each page
#            (crawl_extract.sh)
#   proxy    GETs through a local HTTP proxy (tinyproxy; nginx as a forward proxy) to nginx,
#            sluice vs aiohttp (req/s; proxy.sh)
#
# Environment:
#   BENCH_QUICK=1      shrink every count for a smoke run (ratios are then only indicative)
#   BENCH_RUNS=n       runs of each cheap workload (sluice, luv); the median is quoted (5)
#   BENCH_PEER_RUNS=n  runs of each Python/Node workload (3); the semaphore peer runs once
#   BENCH_STRICT=1     exit 1 when a goal fails (a wrong checksum or a crash always does)
#   BENCH_TIMEOUT=s    kill a run that takes longer than this (600; exit status 124)
#   SLUICE=path        the binary to measure (default: ./sluice at the repository root)
#   SLUICE_BASE=path   an earlier sluice binary measured in the same rounds by lac, http,
#                      server and crawl (its own rows, and a goal: new >= 95% of the base's figure,
#                      the noise of this machine), to show a change made nothing slower
#   BENCH_WRK_SECONDS=s  length of each wrk run (10; 3 with BENCH_QUICK=1)
#   BENCH_DELAY_SERVER=sluice  seeds: serve both clients with scripts/delay_server.lua
#                      instead of the seeds' aiohttp server (its delays are not seeded)
#
# Each workload prints "sum=<checksum> ..." which is checked against the closed form, so a
# program that skips work cannot pass. Wall time is taken around the process (startup
# included); cpu time (user + system) and peak RSS (the kernel's maxrss) come from
# /usr/bin/time. Implementations run in interleaved rounds and medians are quoted; the goals
# use wall time, the cpu ratio is printed beside it because the machine is noisy.
# The HTTP benchmarks quote requests per second as each client counts them over its own run
# ("rps=" in its output, median of the runs), and check its status counts and body bytes.
# The servers they need (nginx, the delay server, sluice's server) are started here on free
# loopback ports and stopped on every way out.
set -u

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$DIR/../.." && pwd)
SLUICE=${SLUICE:-$ROOT/sluice}
BASE=${SLUICE_BASE:-}
PY=/usr/bin/python3
LUA=lua5.4
NODE=/usr/bin/node
QUICK=${BENCH_QUICK:-0}
RUNS=${BENCH_RUNS:-5}
PEER_RUNS=${BENCH_PEER_RUNS:-3}
SEM_RUNS=1
LIMIT_S=${BENCH_TIMEOUT:-600}
if [ "$QUICK" = 1 ]; then RUNS=${BENCH_RUNS:-1}; PEER_RUNS=${BENCH_PEER_RUNS:-1}; fi

# Peers run as shipped: no asyncio debug mode, no user site tweaks.
unset PYTHONASYNCIODEBUG PYTHONDEVMODE PYTHONMALLOC LUA_INIT LUA_INIT_5_4 NODE_OPTIONS

NGINX=${NGINX:-/usr/sbin/nginx}
WRK_SECS=${BENCH_WRK_SECONDS:-10}
[ "$QUICK" = 1 ] && WRK_SECS=${BENCH_WRK_SECONDS:-3}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
BG_PIDS=()   # background servers still running; cleanup stops them
cleanup() {
  local p
  for p in "${BG_PIDS[@]}"; do bg_stop "$p"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ERRORS=0     # crashes and wrong checksums
GOAL_FAILS=0

# ---------------------------------------------------------------------------------------
# Setup: install what is missing (Debian packages), check the binary.

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bench: installing $*" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; }
  else
    echo "bench: missing $* (install it with apt-get)" >&2
    return 1
  fi
}

setup() {
  [ -x /usr/bin/time ] || apt_install time || exit 1
  command -v "$LUA" >/dev/null || apt_install lua5.4 || exit 1
  "$LUA" -e 'require "luv"' 2>/dev/null || apt_install lua-luv || exit 1
  [ -x "$PY" ] || apt_install python3 || exit 1
  if [ ! -x "$NODE" ]; then
    apt_install nodejs || echo "bench: no node; the Node peer is skipped" >&2
  fi
  if [ ! -x "$SLUICE" ]; then
    echo "bench: $SLUICE not found; run 'make' first (or set SLUICE=)" >&2
    exit 1
  fi
}

# ---------------------------------------------------------------------------------------
# Measuring.

# measure OUT CMD... : runs CMD once with stdout in OUT; echoes "<wall s> <peak RSS KiB>
# <cpu s>" (cpu = user + system). Returns the command's exit status.
measure() {
  local out=$1; shift
  local t0 t1 rc
  t0=$EPOCHREALTIME
  timeout "$LIMIT_S" /usr/bin/time -f '%M %U %S' -o "$TMP/time" "$@" >"$out" 2>"$TMP/stderr"
  rc=$?
  t1=$EPOCHREALTIME
  tail -n 1 "$TMP/time" | awk -v a="$t0" -v b="$t1" '{ printf "%.3f %s %.2f\n", b - a, $1, $2 + $3 }'
  return $rc
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A WALL RSS CPU NOTE SW SR SC PLAN_RUNS PLAN_EXPECT PLAN_CMD
declare -A RPS SX OUTS EXTRA PLAN_PRE PLAN_POST
PLAN_KEYS=()

# plan KEY RUNS EXPECT CMD... : queues CMD to run RUNS times under KEY. Every run must exit 0
# and print every word of EXPECT (e.g. "sum=500500 ordered=1"). Setting PLAN_PRE[KEY] /
# PLAN_POST[KEY] to a shell command runs it before / after each run, unmeasured (a fresh
# server for each run); a run whose PRE command fails counts as failed.
plan() {
  local key=$1 runs=$2 expect=$3; shift 3
  PLAN_KEYS+=("$key")
  PLAN_RUNS[$key]=$runs
  PLAN_EXPECT[$key]=$expect
  PLAN_CMD[$key]=$(printf '%q ' "$@")
}

# run_once KEY I EXPECT CMD... : one measured run; a failure marks KEY as "ERR".
run_once() {
  local key=$1 i=$2 expect=$3; shift 3
  local res rc w x
  if [ -n "${PLAN_PRE[$key]:-}" ] && ! eval "${PLAN_PRE[$key]}"; then
    echo "bench: $key: could not prepare the run (${PLAN_PRE[$key]})" >&2
    WALL[$key]=ERR; ERRORS=$((ERRORS + 1)); return 1
  fi
  res=$(measure "$TMP/out" "$@")
  rc=$?
  [ -n "${PLAN_POST[$key]:-}" ] && eval "${PLAN_POST[$key]}"
  if [ $rc -ne 0 ]; then
    echo "bench: $key: '$*' failed (exit status $rc):" >&2
    tail -n 20 "$TMP/stderr" >&2
    WALL[$key]=ERR; ERRORS=$((ERRORS + 1)); return 1
  fi
  for w in $expect; do
    if ! grep -qw -- "$w" "$TMP/out"; then
      echo "bench: $key: '$*' printed the wrong checksum (wanted $expect):" >&2
      head -c 2000 "$TMP/out" >&2; tail -n 20 "$TMP/stderr" >&2
      WALL[$key]=ERR; ERRORS=$((ERRORS + 1)); return 1
    fi
  done
  read -r w rss cpu <<<"$res"
  SW[$key]+="$w"$'\n'; SR[$key]+="$rss"$'\n'; SC[$key]+="$cpu"$'\n'
  OUTS[$key]+="$(tail -n 5 "$TMP/out")"$'\n'
  x=$(grep -o 'rps=[0-9.]*' "$TMP/out" | head -n 1)
  [ -n "$x" ] && SX[$key]+="${x#rps=}"$'\n' && x=", ${x#rps=} req/s"
  printf '  %-16s run %d/%d: %7s s wall, %6s s cpu, %8s KiB%s\n' "$key" "$i" "${PLAN_RUNS[$key]}" "$w" "$cpu" "$rss" "$x" >&2
}

# run_plan: runs the queued commands in rounds (one run of each per round), so a change in
# the machine's load during the benchmark hits every implementation alike; then stores the
# medians of wall time, cpu time and peak RSS of each key.
run_plan() {
  local max=0 r key
  for key in "${PLAN_KEYS[@]}"; do
    [ "${PLAN_RUNS[$key]}" -gt "$max" ] && max=${PLAN_RUNS[$key]}
  done
  for ((r = 1; r <= max; r++)); do
    for key in "${PLAN_KEYS[@]}"; do
      [ "$r" -le "${PLAN_RUNS[$key]}" ] || continue
      [ "${WALL[$key]:-}" = ERR ] && continue
      eval "run_once \"\$key\" $r \"\${PLAN_EXPECT[\$key]}\" ${PLAN_CMD[$key]}"
    done
  done
  for key in "${PLAN_KEYS[@]}"; do
    [ "${WALL[$key]:-}" = ERR ] && { RSS[$key]=ERR; CPU[$key]=ERR; continue; }
    WALL[$key]=$(printf '%s' "${SW[$key]}" | median)
    RSS[$key]=$(printf '%s' "${SR[$key]}" | median)
    CPU[$key]=$(printf '%s' "${SC[$key]}" | median)
    [ -n "${SX[$key]:-}" ] && RPS[$key]=$(printf '%s' "${SX[$key]}" | median)
    NOTE[$key]="median of ${PLAN_RUNS[$key]}"
    [ "${PLAN_RUNS[$key]}" = 1 ] && NOTE[$key]="1 run"
  done
  PLAN_KEYS=()
}

ok() { [ -n "${WALL[$1]:-}" ] && [ "${WALL[$1]}" != ERR ]; }

# ---------------------------------------------------------------------------------------
# Reporting.

ROWS=()
GOALS=()
ROWFMT='%-26s %-31s %9s %8s %7s %8s  %-25s %s' 

# row TITLE KEY LABEL N [BASE [PREFIX]] : one table line; BASE is the key the ratio is
# against (a sluice figure), PREFIX names the ratio when it is not "peer / sluice".
row() {
  local title=$1 key=$2 label=$3 n=$4 base=${5:-} prefix=${6:-}
  local wall=${WALL[$key]:-n/a} rss=${RSS[$key]:-n/a} cpu=${CPU[$key]:-n/a} ratio="" mb="n/a"
  if ok "$key"; then
    mb=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
    if [ -n "$base" ] && ok "$base"; then
      ratio=$(awk -v a="$wall" -v b="${WALL[$base]}" -v c="$cpu" -v d="${CPU[$base]}" \
        -v r="$rss" -v s="${RSS[$base]}" \
        'BEGIN { printf "%.2fx wall, %sx cpu, %.2fx RSS", a / b, (d > 0 ? sprintf("%.2f", c / d) : "-"), r / s }')
      ratio="$prefix$ratio"
    fi
  else
    wall=${WALL[$key]:-n/a}; cpu=""
  fi
  ROWS+=("$(printf "$ROWFMT" "$title" "$label" "$n" "$wall" "$cpu" "$mb" "${NOTE[$key]:-}" "$ratio")")
}

# goal TEXT CONDITION(awk) VALUES... : CONDITION sees the values as a, b, c.
goal() {
  local text=$1 cond=$2; shift 2
  local k verdict
  for k in "$@"; do
    if [ "$k" = ERR ] || [ "$k" = n/a ] || [ -z "$k" ]; then
      GOALS+=("FAIL  $text  (no figure: a run failed or was skipped)"); GOAL_FAILS=$((GOAL_FAILS + 1)); return
    fi
  done
  if awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" "BEGIN { exit !($cond) }"; then
    verdict=PASS
  else
    verdict=FAIL; GOAL_FAILS=$((GOAL_FAILS + 1))
  fi
  GOALS+=("$verdict  $text")
}

fmt() { awk -v x="$1" "BEGIN { printf \"$2\", x }"; }

# base_goal NAME RATIO DETAIL : with SLUICE_BASE, the goal that this binary is no slower than
# the base one measured in the same rounds (RATIO: this one's figure over the base's, higher
# is better); 0.95 leaves room for this shared machine's noise.
base_goal() {
  [ -n "$BASE" ] || return 0
  goal "$1: this sluice >= 95% of the base binary's speed (${2}x: $3)" 'a >= 0.95' "$2"
}

# ---------------------------------------------------------------------------------------
# The benchmarks.

bench_lac() {
  local n=1000000 n10=10000000 limit=1000
  [ "$QUICK" = 1 ] && { n=20000; n10=200000; }
  local sum=$((n * (n + 1) / 2)) sum10=$((n10 * (n10 + 1) / 2))
  echo "== lac: $n jobs through limited_as_completed, limit $limit" >&2
  plan lac.sluice "$RUNS" "sum=$sum" "$SLUICE" "$DIR/lac_1m.lua" "$n" "$limit"
  plan lac.sluice.fn "$RUNS" "sum=$sum" "$SLUICE" "$DIR/lac_1m.lua" "$n" "$limit" fn
  plan lac.luv "$RUNS" "sum=$sum" "$LUA" "$DIR/lac_1m_luv.lua" "$n" "$limit"
  plan lac.luv.fn "$RUNS" "sum=$sum" "$LUA" "$DIR/lac_1m_luv.lua" "$n" "$limit" fn
  plan lac.py "$PEER_RUNS" "sum=$sum" "$PY" "$DIR/lac_1m.py" "$n" "$limit"
  plan lac.pysem "$SEM_RUNS" "sum=$sum" "$PY" "$DIR/lac_1m_sem.py" "$n" "$limit"
  plan lac.sluice10 1 "sum=$sum10" "$SLUICE" "$DIR/lac_1m.lua" "$n10" "$limit"
  if [ -n "$BASE" ]; then
    plan lac.base "$RUNS" "sum=$sum" "$BASE" "$DIR/lac_1m.lua" "$n" "$limit"
    plan lac.base.fn "$RUNS" "sum=$sum" "$BASE" "$DIR/lac_1m.lua" "$n" "$limit" fn
  fi
  run_plan

  local t="lac $n/$limit"
  row "$t" lac.sluice "sluice (handler)" "$n"
  row "" lac.sluice.fn "sluice (closure per job)" "$n" lac.sluice
  row "" lac.luv "lua5.4 + luv (handler)" "$n" lac.sluice
  row "" lac.luv.fn "lua5.4 + luv (closure per job)" "$n" lac.sluice.fn
  row "" lac.py "python limited_as_completed" "$n" lac.sluice
  row "" lac.pysem "python semaphore + gather" "$n" lac.sluice
  row "" lac.sluice10 "sluice (handler)" "$n10" lac.sluice "$((n10 / n))x the jobs: "
  if [ -n "$BASE" ]; then
    row "" lac.base "base sluice (handler)" "$n" lac.sluice
    row "" lac.base.fn "base sluice (closure per job)" "$n" lac.sluice.fn
    if ok lac.sluice && ok lac.base; then
      base_goal lac "$(awk -v a="${WALL[lac.base]}" -v b="${WALL[lac.sluice]}" 'BEGIN { printf "%.2f", a / b }')" \
        "${WALL[lac.sluice]} s vs ${WALL[lac.base]} s, handler"
    fi
  fi

  local s=${WALL[lac.sluice]:-n/a} sr=${RSS[lac.sluice]:-n/a}
  local r_py="n/a" r_luv="n/a" c_py="n/a" c_luv="n/a"
  if ok lac.sluice && ok lac.py; then
    r_py=$(awk -v a="${WALL[lac.py]}" -v b="$s" 'BEGIN { printf "%.2f", a / b }')
    c_py=$(awk -v a="${CPU[lac.py]}" -v b="${CPU[lac.sluice]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  fi
  if ok lac.sluice && ok lac.luv; then
    r_luv=$(awk -v a="${WALL[lac.luv]}" -v b="$s" 'BEGIN { printf "%.2f", a / b }')
    c_luv=$(awk -v a="${CPU[lac.luv]}" -v b="${CPU[lac.sluice]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  fi
  goal "lac: sluice >= 15x faster than Python limited_as_completed (${r_py}x wall: ${WALL[lac.py]:-n/a} s vs $s s; ${c_py}x cpu)" \
    'a / b >= 15' "${WALL[lac.py]:-n/a}" "$s"
  goal "lac: sluice >= 2x faster than Lua on luv (${r_luv}x wall: ${WALL[lac.luv]:-n/a} s vs $s s; ${c_luv}x cpu)" \
    'a / b >= 2' "${WALL[lac.luv]:-n/a}" "$s"
  goal "lac: sluice peak RSS <= 16 MB at $n jobs ($(ok lac.sluice && fmt "$sr" '%d') KiB)" \
    'a <= 16 * 1024' "$sr"
  goal "lac: sluice peak RSS at $n10 jobs within 10% of $n ($(ok lac.sluice10 && fmt "${RSS[lac.sluice10]}" '%d') vs $(ok lac.sluice && fmt "$sr" '%d') KiB)" \
    'a <= 1.10 * b' "${RSS[lac.sluice10]:-n/a}" "$sr"
}

bench_sleepers() {
  local n=100000 secs=1
  [ "$QUICK" = 1 ] && n=10000
  echo "== sleepers: $n tasks asleep for ${secs}s at once" >&2
  plan sleep.sluice0 "$RUNS" "sum=0" "$SLUICE" "$DIR/sleepers.lua" 0 "$secs"
  plan sleep.sluice "$RUNS" "sum=$n" "$SLUICE" "$DIR/sleepers.lua" "$n" "$secs"
  plan sleep.py0 "$PEER_RUNS" "sum=0" "$PY" "$DIR/sleepers.py" 0 "$secs"
  plan sleep.py "$PEER_RUNS" "sum=$n" "$PY" "$DIR/sleepers.py" "$n" "$secs"
  if [ -x "$NODE" ]; then
    plan sleep.node0 "$PEER_RUNS" "sum=0" "$NODE" "$DIR/sleepers.js" 0 "$secs"
    plan sleep.node "$PEER_RUNS" "sum=$n" "$NODE" "$DIR/sleepers.js" "$n" "$secs"
  fi
  run_plan

  # Bytes per sleeping task: (peak RSS with N tasks - peak RSS with none) / N.
  local who per
  declare -A PER
  for who in sluice py node; do
    if ok "sleep.$who" && ok "sleep.${who}0"; then
      PER[$who]=$(awk -v a="${RSS[sleep.$who]}" -v b="${RSS[sleep.${who}0]}" -v n="$n" \
        'BEGIN { printf "%.0f", (a - b) * 1024 / n }')
      NOTE[sleep.$who]="${NOTE[sleep.$who]}, ${PER[$who]} B/task"
    else
      PER[$who]=n/a
    fi
  done
  row "sleepers $n x ${secs}s" sleep.sluice0 "sluice, no tasks (baseline)" 0
  row "" sleep.sluice "sluice" "$n"
  row "" sleep.py0 "python asyncio, no tasks" 0
  row "" sleep.py "python asyncio + gather" "$n" sleep.sluice
  row "" sleep.node0 "node, no tasks" 0
  row "" sleep.node "node setTimeout promises" "$n" sleep.sluice
  ROWS+=("$(printf '%-26s %s' "" "bytes per sleeping task: sluice ${PER[sluice]}, python ${PER[py]}, node ${PER[node]}")")

  goal "sleepers: sluice RSS per sleeping task <= 1 KB (${PER[sluice]} B; python ${PER[py]} B, node ${PER[node]} B)" \
    'a <= 1024' "${PER[sluice]}"
  goal "sleepers: sluice wall time <= 1.2 s for $n tasks sleeping ${secs}s (${WALL[sleep.sluice]:-n/a} s; python ${WALL[sleep.py]:-n/a} s, node ${WALL[sleep.node]:-n/a} s)" \
    'a <= 1.2' "${WALL[sleep.sluice]:-n/a}"
}

bench_gather() {
  local n=100000
  [ "$QUICK" = 1 ] && n=10000
  local sum=$((n * (n + 1) / 2))
  echo "== gather: $n spawned tasks" >&2
  plan gather.sluice "$RUNS" "sum=$sum ordered=1" "$SLUICE" "$DIR/gather.lua" "$n"
  plan gather.py "$PEER_RUNS" "sum=$sum ordered=1" "$PY" "$DIR/gather.py" "$n"
  run_plan
  row "gather $n" gather.sluice "sluice spawn + sl.gather" "$n"
  row "" gather.py "python asyncio.gather" "$n" gather.sluice
}

bench_executor() {
  local n=1000000 workers=1000
  [ "$QUICK" = 1 ] && n=20000
  local sum=$((n * (n + 1)))
  echo "== executor: map over $n jobs, max_workers $workers" >&2
  plan exec.sluice "$RUNS" "sum=$sum ordered=1" "$SLUICE" "$DIR/executor_map.lua" "$n" "$workers"
  plan exec.py "$PEER_RUNS" "sum=$sum" "$PY" "$DIR/executor_map.py" "$n" "$workers"
  run_plan
  row "executor map $n/$workers" exec.sluice "sluice ex:map" "$n"
  row "" exec.py "python queue worker pool map" "$n" exec.sluice
}

# ---------------------------------------------------------------------------------------
# The HTTP benchmarks: their peers, their servers, their table rows.

# setup_http: installs the peers when missing (nginx-light, wrk, curl, python3-aiohttp,
# nodejs + npm) and p-limit for the Node peer under scripts/bench/node_modules (gitignored).
setup_http() {
  [ -x "$NGINX" ] || apt_install nginx-light || exit 1
  command -v wrk >/dev/null || apt_install wrk || exit 1
  command -v curl >/dev/null || apt_install curl || exit 1
  "$PY" -c 'import aiohttp' 2>/dev/null || apt_install python3-aiohttp || exit 1
  if [ -x "$NODE" ] && ! command -v npm >/dev/null; then
    apt_install npm || echo "bench: no npm; the Node peer is skipped" >&2
  fi
  if [ -x "$NODE" ] && [ ! -f "$DIR/node_modules/p-limit/package.json" ] && command -v npm >/dev/null; then
    echo "bench: installing p-limit for the Node peer into $DIR/node_modules" >&2
    npm install --prefix "$DIR" --no-save --no-package-lock --no-audit --no-fund \
      --loglevel=error p-limit@6 >&2 || echo "bench: npm install p-limit failed; the Node peer is skipped" >&2
  fi
}

node_peer() { [ -x "$NODE" ] && [ -f "$DIR/node_modules/p-limit/package.json" ]; }

# sluice_has FIELD... : true when this build's sluice.http exports every FIELD.
sluice_has() {
  local f code="local h = require 'sluice.http'"
  for f in "$@"; do code+="; assert(h.$f)"; done
  "$SLUICE" -e "$code" >/dev/null 2>&1
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL : waits up to 10 s until URL answers at all.
wait_http() {
  local _
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  return 1
}

# bg_start NAME CMD... : starts a server in the background (output in $TMP/NAME.out) that
# prints "listening on http://HOST:PORT" when ready; waits up to 10 s for that line. Sets
# BG_PID and BG_URL (without the trailing slash).
bg_start() {
  local name=$1 _; shift
  "$@" >"$TMP/$name.out" 2>&1 &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
  BG_URL=
  for _ in $(seq 200); do
    BG_URL=$(sed -n 's|.*listening on \(http://[^ /]*\).*|\1|p' "$TMP/$name.out" | head -n 1)
    [ -n "$BG_URL" ] && return 0
    kill -0 "$BG_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench: $name did not start ($*):" >&2
  tail -n 20 "$TMP/$name.out" >&2
  bg_stop "$BG_PID"
  return 1
}

# bg_stop PID : SIGTERM, then SIGKILL after 5 s; forgets PID.
bg_stop() {
  local pid=$1 _ p keep=()
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  for p in "${BG_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  BG_PIDS=("${keep[@]}")
}

# nginx_start [CONF [SED-ARG...]] : nginx on a free port (@PORT@) from CONF (default
# http_nginx.conf.in: one worker, "Hello, World!" from memory) in a temporary directory
# (@DIR@); SED-ARGs fill in the rest. Sets NGINX_PID and NGINX_URL.
nginx_start() {
  local d="$TMP/nginx" port conf=${1:-$DIR/http_nginx.conf.in}
  [ $# -gt 0 ] && shift
  port=$(free_port)
  rm -rf "$d"; mkdir -p "$d"
  sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$d|g" "$@" "$conf" >"$d/nginx.conf"
  "$NGINX" -c "$d/nginx.conf" -p "$d" -e "$d/error.log" >"$d/out" 2>&1 &
  NGINX_PID=$!
  BG_PIDS+=("$NGINX_PID")
  NGINX_URL="http://127.0.0.1:$port"
  if ! wait_http "$NGINX_URL/"; then
    echo "bench: nginx did not start:" >&2
    cat "$d/out" "$d/error.log" >&2
    bg_stop "$NGINX_PID"
    return 1
  fi
}

# proc_stats PID : echoes "<peak RSS KiB> <cpu s>" of a running process (VmHWM; utime +
# stime, children excluded).
proc_stats() {
  local hwm ticks
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
  ticks=$(awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null)
  awk -v h="${hwm:-0}" -v t="${ticks:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%d %.2f\n", h, t / hz }'
}

# sum_word KEY WORD : the sum over KEY's runs of the numbers printed as WORD=<n>.
sum_word() {
  printf '%s' "${OUTS[$1]:-}" | grep -o "\b$2=[0-9]*" | awk -F= '{ s += $2 } END { print s + 0 }'
}

rps_ratio() {   # rps_ratio A B : A's req/s over B's, two decimals, or n/a
  if [ -n "${RPS[$1]:-}" ] && [ -n "${RPS[$2]:-}" ] && ok "$1" && ok "$2"; then
    awk -v a="${RPS[$1]}" -v b="${RPS[$2]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'
  else
    echo n/a
  fi
}

# row_rps TITLE KEY LABEL N [SLUICE_KEY] : a table line whose last column is the run's
# req/s, then against SLUICE_KEY sluice's req/s over this one ("sluice 1.50x"), then
# EXTRA[KEY] (cpu per request).
row_rps() {
  local title=$1 key=$2 label=$3 n=$4 base=${5:-}
  local wall=${WALL[$key]:-n/a} cpu=${CPU[$key]:-} mb=n/a last
  if ok "$key"; then
    mb=$(awk -v k="${RSS[$key]}" 'BEGIN { printf "%.1f", k / 1024 }')
    last=$(awk -v r="${RPS[$key]:-0}" 'BEGIN { printf "%.0f req/s", r }')
    [ -n "$base" ] && last+=" (sluice $(rps_ratio "$base" "$key")x)"
    [ -n "${EXTRA[$key]:-}" ] && last+="; ${EXTRA[$key]}"
  else
    cpu=""; last=""
  fi
  ROWS+=("$(printf "$ROWFMT" "$title" "$label" "$n" "$wall" "$cpu" "$mb" "${NOTE[$key]:-}" "$last")")
}

bench_http() {
  local n=200000 np=50000 limit=100 n1=1000000 n3=3000000 big_limit=1000
  [ "$QUICK" = 1 ] && { n=20000; np=5000; }
  echo "== http: $n GETs at limit $limit against a local nginx (peers: wrk ${WRK_SECS}s, aiohttp and Node $np GETs)" >&2
  if ! sluice_has client; then
    echo "bench: this sluice has no http.get yet; http skipped" >&2
    goal "http: sluice >= 60% of wrk's req/s against nginx" 'a' n/a
    return
  fi
  nginx_start || { ERRORS=$((ERRORS + 1)); return; }
  local url=$NGINX_URL fm="$ROOT/scripts/fetch_many.lua"
  local want="ok=$n failed=0 status_200=$n body_bytes=$((13 * n))"
  local wantp="ok=$np failed=0 status_200=$np body_bytes=$((13 * np))"
  plan http.sluice "$RUNS" "$want" "$SLUICE" "$fm" "$n" --limit "$limit" --url "$url/"
  [ -n "$BASE" ] && plan http.base "$RUNS" "$want" "$BASE" "$fm" "$n" --limit "$limit" --url "$url/"
  plan http.wrk "$PEER_RUNS" "errors=0 non2xx=0 body_ok=1" bash "$DIR/http_wrk.sh" "$url/" "$limit" "$WRK_SECS"
  plan http.py "$PEER_RUNS" "$wantp" "$PY" "$DIR/http_aiohttp.py" "$np" "$limit" "$url/"
  node_peer && plan http.node "$PEER_RUNS" "$wantp" "$NODE" "$DIR/http_node.mjs" "$np" "$limit" "$url/"
  if [ "$QUICK" != 1 ]; then
    plan http.sluice1m 1 "ok=$n1 failed=0 status_200=$n1 body_bytes=$((13 * n1))" \
      "$SLUICE" "$fm" "$n1" --limit "$big_limit" --url "$url/"
    plan http.sluice3m 1 "ok=$n3 failed=0 status_200=$n3 body_bytes=$((13 * n3))" \
      "$SLUICE" "$fm" "$n3" --limit "$big_limit" --url "$url/"
  fi
  run_plan
  bg_stop "$NGINX_PID"

  local k wn
  for k in http.sluice http.base http.py http.node http.sluice1m http.sluice3m; do
    case $k in http.sluice|http.base) wn=$n ;; http.sluice1m) wn=$n1 ;; http.sluice3m) wn=$n3 ;; *) wn=$np ;; esac
    ok "$k" && EXTRA[$k]=$(awk -v c="${CPU[$k]}" -v n="$wn" 'BEGIN { printf "%.1f us cpu/req", c * 1e6 / n }')
  done
  wn=$(ok http.wrk && awk -v r="${RPS[http.wrk]:-0}" -v s="$WRK_SECS" 'BEGIN { printf "%.0f", r * s }')
  local t="http GET, nginx, c=$limit"
  row_rps "$t" http.sluice "sluice fetch_many" "$n"
  [ -n "$BASE" ] && row_rps "" http.base "base sluice fetch_many" "$n" http.sluice
  row_rps "" http.wrk "wrk -t1 -c$limit -d${WRK_SECS}s" "${wn:-n/a}" http.sluice
  row_rps "" http.py "python aiohttp + lac" "$np" http.sluice
  row_rps "" http.node "node fetch + p-limit" "$np" http.sluice
  if [ "$QUICK" != 1 ]; then
    row_rps "http GET, nginx, c=$big_limit" http.sluice1m "sluice fetch_many" "$n1"
    row_rps "" http.sluice3m "sluice fetch_many" "$n3"
  fi

  local r_wrk r_py s=${RPS[http.sluice]:-n/a}
  r_wrk=$(rps_ratio http.sluice http.wrk); r_py=$(rps_ratio http.sluice http.py)
  goal "http: sluice >= 60% of wrk's req/s against nginx (${r_wrk}x: $s vs ${RPS[http.wrk]:-n/a} req/s)" \
    'a >= 0.60' "$r_wrk"
  goal "http: sluice >= 10x aiohttp's req/s (${r_py}x: $s vs ${RPS[http.py]:-n/a} req/s; node ${RPS[http.node]:-n/a} req/s, sluice $(rps_ratio http.sluice http.node)x)" \
    'a >= 10' "$r_py"
  base_goal http "$(rps_ratio http.sluice http.base)" "${RPS[http.sluice]:-n/a} vs ${RPS[http.base]:-n/a} req/s"
  if [ "$QUICK" != 1 ]; then
    local r1=${RSS[http.sluice1m]:-n/a} r3=${RSS[http.sluice3m]:-n/a}
    goal "http: sluice peak RSS <= 40 MB at $n1 GETs, limit $big_limit ($r1 KiB)" \
      'a <= 40 * 1024' "$r1"
    goal "http: sluice peak RSS at $n3 GETs within 10% of $n1 ($r3 vs $r1 KiB)" \
      'a <= 1.10 * b' "$r3" "$r1"
  fi
}

# The seeds' scenario: every client run gets a fresh delay server (the seeds' aiohttp one,
# http_delay_server.py, for both clients) on the same port with the same seed, so that both
# clients are handed the same delays. It runs on the other core; the server is not what is
# compared. BENCH_DELAY_SERVER=sluice uses scripts/delay_server.lua for both instead.
DELAY_PID=
delay_start() {
  if [ "${BENCH_DELAY_SERVER:-aiohttp}" = sluice ]; then
    bg_start delay "$SLUICE" "$ROOT/scripts/delay_server.lua" "$DELAY_PORT" 3 || return 1
  else
    bg_start delay "$PY" "$DIR/http_delay_server.py" "$DELAY_PORT" 3 "$DELAY_SEED" || return 1
  fi
  DELAY_PID=$BG_PID
}
delay_stop() {
  [ -n "$DELAY_PID" ] && bg_stop "$DELAY_PID"
  DELAY_PID=
}

bench_seeds() {
  local n=10000 limit=1000
  [ "$QUICK" = 1 ] && n=2000
  local server="the seeds' aiohttp delay server (http_delay_server.py, seeded)"
  [ "${BENCH_DELAY_SERVER:-aiohttp}" = sluice ] && server="scripts/delay_server.lua"
  echo "== seeds: $n GETs at limit $limit against $server, random 0-3 s, a fresh one for each run" >&2
  if ! sluice_has client; then
    echo "bench: this sluice has no http.get yet; seeds skipped" >&2
    goal "seeds: sluice wall time <= Python's" 'a' n/a
    return
  fi
  DELAY_PORT=$(free_port)
  DELAY_SEED=${BENCH_SEED:-1}
  local url="http://127.0.0.1:$DELAY_PORT/{}"
  local want="ok=$n failed=0 status_200=$n body_bytes=$((13 * n))"
  plan seeds.sluice "$PEER_RUNS" "$want" "$SLUICE" "$ROOT/scripts/fetch_many.lua" "$n" --limit "$limit" --url "$url"
  plan seeds.py "$PEER_RUNS" "$want" "$PY" "$DIR/http_aiohttp.py" "$n" "$limit" "$url"
  PLAN_PRE[seeds.sluice]=delay_start; PLAN_POST[seeds.sluice]=delay_stop
  PLAN_PRE[seeds.py]=delay_start; PLAN_POST[seeds.py]=delay_stop
  run_plan

  row "seeds $n/$limit, 0-3 s" seeds.sluice "sluice fetch_many" "$n"
  row "" seeds.py "python aiohttp + lac" "$n" seeds.sluice
  ROWS+=("$(printf '%-26s %s' "" "both against $server, a fresh one per run")")
  local sw=${WALL[seeds.sluice]:-n/a} pw=${WALL[seeds.py]:-n/a} sc=${CPU[seeds.sluice]:-n/a} pc=${CPU[seeds.py]:-n/a}
  local cr=n/a
  ok seeds.sluice && ok seeds.py && cr=$(awk -v a="$pc" -v b="$sc" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 999) }')
  goal "seeds: sluice wall time <= Python aiohttp's ($sw s vs $pw s)" 'a <= b' "$sw" "$pw"
  goal "seeds: sluice cpu time <= 1/5 of Python's ($sc s vs $pc s: ${cr}x less)" 'a * 5 <= b' "$sc" "$pc"
}

bench_server() {
  local conns=100
  echo "== server: wrk -t1 -c$conns -d${WRK_SECS}s against sluice's server and against nginx" >&2
  if ! sluice_has serve; then
    echo "bench: this sluice has no http.serve yet; server skipped" >&2
    goal "server: sluice >= 50% of nginx's req/s" 'a' n/a
    return
  fi
  nginx_start || { ERRORS=$((ERRORS + 1)); return; }
  if ! bg_start hello "$SLUICE" "$DIR/http_hello_server.lua" 0; then
    ERRORS=$((ERRORS + 1)); bg_stop "$NGINX_PID"; return
  fi
  local spid=$BG_PID surl=$BG_URL bpid="" burl=""
  if [ -n "$BASE" ] && bg_start hello_base "$BASE" "$DIR/http_hello_server.lua" 0; then
    bpid=$BG_PID burl=$BG_URL
  fi
  plan server.sluice "$PEER_RUNS" "errors=0 non2xx=0 body_ok=1" bash "$DIR/http_wrk.sh" "$surl/" "$conns" "$WRK_SECS"
  [ -n "$bpid" ] && plan server.base "$PEER_RUNS" "errors=0 non2xx=0 body_ok=1" bash "$DIR/http_wrk.sh" "$burl/" "$conns" "$WRK_SECS"
  plan server.nginx "$PEER_RUNS" "errors=0 non2xx=0 body_ok=1" bash "$DIR/http_wrk.sh" "$NGINX_URL/" "$conns" "$WRK_SECS"
  run_plan
  # The servers' own peak RSS and cpu time per request answered (wrk's counts, all runs).
  local k pid st
  for k in server.sluice server.base server.nginx; do
    pid=$spid
    [ $k = server.base ] && { [ -n "$bpid" ] || continue; pid=$bpid; }
    [ $k = server.nginx ] && pid=$(pgrep -P "$NGINX_PID" | head -n 1)   # the worker
    st=$(proc_stats "$pid")
    ok "$k" && EXTRA[$k]=$(awk -v h="${st% *}" -v c="${st#* }" -v n="$(sum_word "$k" requests)" \
      'BEGIN { printf "server: %.1f us cpu/req, peak RSS %.1f MB", (n > 0 ? c * 1e6 / n : 0), h / 1024 }')
  done
  bg_stop "$spid"
  [ -n "$bpid" ] && bg_stop "$bpid"
  bg_stop "$NGINX_PID"

  row_rps "server, wrk -c$conns" server.sluice "sluice http.serve (Lua)" "${WRK_SECS}s"
  [ -n "$BASE" ] && row_rps "" server.base "base sluice http.serve" "${WRK_SECS}s" server.sluice
  row_rps "" server.nginx "nginx, 1 worker" "${WRK_SECS}s" server.sluice
  local r; r=$(rps_ratio server.sluice server.nginx)
  goal "server: sluice >= 50% of nginx's req/s (${r}x: ${RPS[server.sluice]:-n/a} vs ${RPS[server.nginx]:-n/a} req/s)" \
    'a >= 0.50' "$r"
  base_goal server "$(rps_ratio server.sluice server.base)" "${RPS[server.sluice]:-n/a} vs ${RPS[server.base]:-n/a} req/s"
}

source "$DIR/crawl.sh"   # bench_crawl, bench_crawl_mem, setup_crawl
source "$DIR/extract.sh"   # bench_extract, bench_parse_mem, setup_extract
source "$DIR/crawl_extract.sh"   # bench_crawl_extract, bench_crawl_extract_mem
source "$DIR/proxy.sh"   # bench_proxy, setup_proxy

# ---------------------------------------------------------------------------------------

main() {
  local which=("$@") w
  [ ${#which[@]} -eq 0 ] && which=(all)
  local need_http=0 need_crawl=0 need_extract=0 need_proxy=0
  for w in "${which[@]}"; do
    case $w in
      lac|sleepers|gather|executor) ;;
      executor_map) ;;
      http|seeds|server) need_http=1 ;;
      proxy) need_http=1; need_proxy=1 ;;
      crawl|crawl_mem) need_crawl=1 ;;
      extract|parse_mem) need_extract=1 ;;
      crawl_extract|crawl_extract_mem) need_crawl=1; need_extract=1 ;;
      all) need_http=1; need_crawl=1; need_extract=1; need_proxy=1 ;;
      *) echo "usage: $0 [lac|sleepers|gather|executor|http|seeds|server|crawl|crawl_mem|extract|parse_mem|crawl_extract|crawl_extract_mem|proxy ...]" >&2; exit 2 ;;
    esac
  done
  setup
  [ $need_http = 1 ] && setup_http
  [ $need_crawl = 1 ] && setup_crawl
  [ $need_extract = 1 ] && setup_extract
  [ $need_proxy = 1 ] && setup_proxy
  echo "bench: $SLUICE; $("$PY" --version 2>&1); $("$LUA" -v 2>&1 | head -n 1); node $("$NODE" --version 2>/dev/null || echo none); $(nproc) cores; quick=$QUICK runs=$RUNS peer_runs=$PEER_RUNS" >&2
  for w in "${which[@]}"; do
    case $w in
      lac) bench_lac ;;
      sleepers) bench_sleepers ;;
      gather) bench_gather ;;
      executor|executor_map) bench_executor ;;
      http) bench_http ;;
      seeds) bench_seeds ;;
      server) bench_server ;;
      crawl) bench_crawl ;;
      crawl_mem) bench_crawl_mem ;;
      extract) bench_extract ;;
      parse_mem) bench_parse_mem ;;
      crawl_extract) bench_crawl_extract ;;
      crawl_extract_mem) bench_crawl_extract_mem ;;
      proxy) bench_proxy ;;
      all) bench_lac; bench_sleepers; bench_gather; bench_executor; bench_http; bench_seeds; bench_server
        bench_crawl; bench_crawl_mem; bench_extract; bench_parse_mem; bench_crawl_extract
        bench_crawl_extract_mem; bench_proxy ;;
    esac
  done

  echo
  printf "$ROWFMT\n" benchmark implementation N "wall s" "cpu s" "RSS MB" runs "peer / sluice"
  printf '%s\n' "${ROWS[@]}"
  echo "(peer / sluice: the peer's median wall time, cpu time (user + system) and peak RSS over sluice's; above 1 means sluice is faster or smaller)"
  echo "(req/s: each HTTP client's own count over its run, median; \"sluice Nx\": sluice's req/s over that peer's, above 1 means sluice is faster)"
  echo
  [ "$QUICK" = 1 ] && echo "(BENCH_QUICK=1: small counts, the goals below are only indicative)"
  [ ${#GOALS[@]} -gt 0 ] && printf '%s\n' "${GOALS[@]}"
  echo "goals: $(( ${#GOALS[@]} - GOAL_FAILS )) passed, $GOAL_FAILS failed; runs with errors: $ERRORS"
  [ "$ERRORS" -gt 0 ] && exit 1
  [ "${BENCH_STRICT:-0}" = 1 ] && [ "$GOAL_FAILS" -gt 0 ] && exit 1
  exit 0
}

main "$@"
