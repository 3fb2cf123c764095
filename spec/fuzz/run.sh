#!/usr/bin/env bash
# run.sh: runs libFuzzer harnesses built by `make fuzz`, each for SECONDS, and fails if one
# of them finds a crash, a sanitizer report or a broken invariant, naming the reproducer.
# usage: bash spec/fuzz/run.sh SECONDS NAME...   (from the repository's root)
#
# Each harness reads its committed seeds (spec/fuzz/NAME/) and a scratch corpus
# ($FUZZ_DIR/corpus/NAME/, listed first, so what it finds goes there and the seeds stay as
# they are). Crashes go to $FUZZ_DIR/crashes/NAME/, the whole output to $FUZZ_DIR/logs/;
# FUZZ_DIR is build/fuzz unless the Makefile says otherwise.
set -u
secs=${1:?usage: run.sh SECONDS NAME...}
shift
root=${FUZZ_DIR:-build/fuzz}
failed=0

# The largest input each harness is given: HTML and HTTP need room for a body.
max_len() {
  case $1 in
    html_links|http_response|http_request) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

for name in "$@"; do
  bin=$root/bin/$name
  corpus=$root/corpus/$name
  crashes=$root/crashes/$name/
  log=$root/logs/$name.log
  mkdir -p "$corpus" "$crashes" "$root/logs"
  dict=()
  if [ -f "spec/fuzz/$name.dict" ]; then dict=(-dict="spec/fuzz/$name.dict"); fi
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$name")" \
      -print_final_stats=1 -artifact_prefix="$crashes" "${dict[@]}" "$corpus" "spec/fuzz/$name" \
      >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" | tail -1)
  if [ "$rc" = 0 ]; then
    echo "fuzz: $name: ok, ${execs:-?} runs in ${secs} s (${rate:-?}/s), $cov"
    continue
  fi
  failed=1
  unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  echo "fuzz: $name: FAILED (exit $rc) after ${execs:-?} runs; log in $log"
  grep -E '^==fuzz==|^SUMMARY:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' \
    "$log" | head -20 | sed 's/^/  /'
  if [ -n "$unit" ]; then
    echo "  reproduce with: $bin $unit"
  fi
done
exit $failed
