# bg_stop.sh: sourced by the demo scripts. `bg_stop PID` stops a background sluice server:
# Ctrl-C first (sluice cancels its tasks and exits), then SIGKILL if it has not gone in 5 s.
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
