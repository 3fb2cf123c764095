# Runs sluice's benchmarks against their peers (Python asyncio, Lua on luv, Node) in one go
# and prints a table with the ratios from this run, then the goals as PASS/FAIL lines.
#
# usage: bash scripts/bench/run.sh [lac|sleepers|gather|executor ...]   (default: all)
#
# Environment:
#   BENCH_QUICK=1      shrink every count for a smoke run (ratios are then only indicative)
#   BENCH_RUNS=n       runs of each cheap workload (sluice, luv); the median is quoted (5)
#   BENCH_PEER_RUNS=n  runs of each Python/Node workload (3); the semaphore peer runs once
#   BENCH_STRICT=1     exit 1 when a goal fails (a wrong checksum or a crash always does)
#   BENCH_TIMEOUT=s    kill a run that takes longer than this (600; exit status 124)
#   SLUICE=path        the binary to measure (default: ./sluice at the repository root)
#
# Each workload prints "sum=<checksum> ..." which is checked against the closed form, so a
# program that skips work cannot pass. Wall time is taken around the process (startup
# included); cpu time (user + system) and peak RSS (the kernel's maxrss) come from
# /usr/bin/time. Implementations run in interleaved rounds and medians are quoted; the goals
# use wall time, the cpu ratio is printed beside it because the machine is noisy.
set -u

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$DIR/../.." && pwd)
SLUICE=${SLUICE:-$ROOT/sluice}
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

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

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
PLAN_KEYS=()

# plan KEY RUNS EXPECT CMD... : queues CMD to run RUNS times under KEY. Every run must exit 0
# and print every word of EXPECT (e.g. "sum=500500 ordered=1").
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
  local res rc w
  res=$(measure "$TMP/out" "$@")
  rc=$?
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
  printf '  %-16s run %d/%d: %7s s wall, %6s s cpu, %8s KiB\n' "$key" "$i" "${PLAN_RUNS[$key]}" "$w" "$cpu" "$rss" >&2
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
  run_plan

  local t="lac $n/$limit"
  row "$t" lac.sluice "sluice (handler)" "$n"
  row "" lac.sluice.fn "sluice (closure per job)" "$n" lac.sluice
  row "" lac.luv "lua5.4 + luv (handler)" "$n" lac.sluice
  row "" lac.luv.fn "lua5.4 + luv (closure per job)" "$n" lac.sluice.fn
  row "" lac.py "python limited_as_completed" "$n" lac.sluice
  row "" lac.pysem "python semaphore + gather" "$n" lac.sluice
  row "" lac.sluice10 "sluice (handler)" "$n10" lac.sluice "$((n10 / n))x the jobs: "

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

main() {
  local which=("$@") w
  [ ${#which[@]} -eq 0 ] && which=(lac sleepers gather executor)
  for w in "${which[@]}"; do
    case $w in
      lac|sleepers|gather|executor|all) ;;
      executor_map) ;;
      *) echo "usage: $0 [lac|sleepers|gather|executor ...]" >&2; exit 2 ;;
    esac
  done
  setup
  echo "bench: $SLUICE; $("$PY" --version 2>&1); $("$LUA" -v 2>&1 | head -n 1); node $("$NODE" --version 2>/dev/null || echo none); $(nproc) cores; quick=$QUICK runs=$RUNS peer_runs=$PEER_RUNS" >&2
  for w in "${which[@]}"; do
    case $w in
      lac) bench_lac ;;
      sleepers) bench_sleepers ;;
      gather) bench_gather ;;
      executor|executor_map) bench_executor ;;
      all) bench_lac; bench_sleepers; bench_gather; bench_executor ;;
    esac
  done

  echo
  printf "$ROWFMT\n" benchmark implementation N "wall s" "cpu s" "RSS MB" runs "peer / sluice"
  printf '%s\n' "${ROWS[@]}"
  echo "(peer / sluice: the peer's median wall time, cpu time (user + system) and peak RSS over sluice's; above 1 means sluice is faster or smaller)"
  echo
  [ "$QUICK" = 1 ] && echo "(BENCH_QUICK=1: small counts, the goals below are only indicative)"
  [ ${#GOALS[@]} -gt 0 ] && printf '%s\n' "${GOALS[@]}"
  echo "goals: $(( ${#GOALS[@]} - GOAL_FAILS )) passed, $GOAL_FAILS failed; runs with errors: $ERRORS"
  [ "$ERRORS" -gt 0 ] && exit 1
  [ "${BENCH_STRICT:-0}" = 1 ] && [ "$GOAL_FAILS" -gt 0 ] && exit 1
  exit 0
}

main "$@"
