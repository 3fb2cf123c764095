#!/usr/bin/env bash
# demo_http.sh: the seeds' HTTP experiment on loopback. Starts scripts/delay_server.lua (each
# answer after a random 0-3 s) on a free port, runs scripts/fetch_many.lua against it, stops it.
#
# usage: bash scripts/demo_http.sh [REQUESTS=2000] [LIMIT=1000]      (`make demo` runs it)
#
# With 1,000 requests in flight and 1.5 s of delay per request on average, 2,000 requests
# take 4-6 s. The server is stopped on every way out (Ctrl-C included) by demo_common.sh.
# When this build has no HTTP client or server yet, it says so and exits 0.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE=${SLUICE:-$ROOT/sluice}
REQUESTS=${1:-2000}
LIMIT=${2:-1000}
cd "$ROOT" || exit 1
. scripts/demo_common.sh

if ! "$SLUICE" -e 'local h = require "sluice.http"; assert(h.client and h.serve)' >/dev/null 2>&1 ||
   [ ! -f scripts/delay_server.lua ]; then
  echo "demo: this build has no HTTP client and server yet; the HTTP demo is skipped."
  exit 0
fi

demo_setup
# Port 0: the kernel picks a free port and the server prints it.
bg_start "$TMP/server.out" "$SLUICE" scripts/delay_server.lua 0 3
url=
for _ in $(seq 100); do
  url=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$TMP/server.out" | head -n 1)
  [ -n "$url" ] && break
  if ! kill -0 "$BG_PID" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "demo: scripts/delay_server.lua did not start:" >&2
  cat "$TMP/server.out" >&2
  exit 1
fi
url=${url%/}

echo
echo "== The seeds' HTTP client: $REQUESTS GETs, at most $LIMIT at once, against"
echo "   scripts/delay_server.lua at $url (each answer after a random 0-3 s)"
"$SLUICE" scripts/fetch_many.lua "$REQUESTS" --limit "$LIMIT" --url "$url/{}"
rc=$?
bg_stop_all
exit $rc
