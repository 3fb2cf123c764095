# demo_common.sh: sourced by the demo scripts (from the repository's root, with SLUICE set):
# a temporary directory cleaned up on every way out, and background sluice processes
# (servers, the test site) that are stopped on every way out too.

BG_PIDS=()

# bg_stop PID: stops a background sluice server: Ctrl-C first (sluice cancels its tasks and
# exits), then SIGKILL if it has not gone in 5 s.
bg_stop() {
  [ -n "${1:-}" ] || return 0
  kill -INT "$1" 2>/dev/null
  for _ in $(seq 50); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

# bg_stop_all: stops every process bg_start started (those already stopped are skipped).
bg_stop_all() {
  local pid
  for pid in "${BG_PIDS[@]}"; do bg_stop "$pid"; done
  BG_PIDS=()
}

# demo_setup: sets TMP to a new temporary directory, and traps so that on every way out
# (the end, an error exit, Ctrl-C, TERM) the background processes stop and TMP goes.
demo_setup() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo.XXXXXX")
  trap 'bg_stop_all; rm -rf "$TMP"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# bg_start OUT CMD... : runs CMD in the background with stdout and stderr in OUT; its pid in
# BG_PID (and in BG_PIDS, for bg_stop_all).
bg_start() {
  local out=$1; shift
  "$@" >"$out" 2>&1 &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
}

# site_start ARGS... : starts scripts/testsite.lua with ARGS and waits (at most 10 s) until
# it has written its seed URLs to $TMP/seeds; on failure says why and returns 1.
site_start() {
  bg_start "$TMP/site.out" "$SLUICE" scripts/testsite.lua "$@" --seeds-file "$TMP/seeds"
  for _ in $(seq 100); do
    [ -s "$TMP/seeds" ] && return 0
    kill -0 "$BG_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ -s "$TMP/seeds" ] && return 0
  echo "demo: scripts/testsite.lua did not start:" >&2
  cat "$TMP/site.out" >&2
  return 1
}
