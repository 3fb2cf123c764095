#!/usr/bin/env bash
# Peer for the HTTP benchmarks: wrk with one thread against URL, reduced to one line that
# run.sh can check: "rps=<requests/s> requests=<n> errors=<socket errors> non2xx=<n> body_ok=1".
#
# usage: bash http_wrk.sh URL [CONNECTIONS=100] [SECONDS=10] [EXPECTED_BODY="Hello, World!"]
#
# wrk never looks at bodies, so one GET with curl first checks that URL answers 200 with
# EXPECTED_BODY (body_ok=1, else body_ok=0 and exit 1); wrk's own "Socket errors" and
# "Non-2xx or 3xx responses" lines give errors= and non2xx= (0 when wrk prints neither).
set -u
url=$1 conns=${2:-100} secs=${3:-10} expect=${4:-Hello, World!}

body=$(curl -s --max-time 10 -w '\n%{http_code}' "$url") || { echo "body_ok=0 (curl failed)"; exit 1; }
code=${body##*$'\n'}; body=${body%$'\n'*}
if [ "$code" != 200 ] || [ "$body" != "$expect" ]; then
  echo "body_ok=0 (status $code, body '${body:0:80}')"
  exit 1
fi

out=$(wrk -t1 -c"$conns" -d"${secs}s" "$url") || { printf '%s\n' "$out"; exit 1; }
printf '%s\n' "$out" >&2
printf '%s\n' "$out" | awk '
  /^Requests\/sec:/ { rps = $2 }
  / requests in / { n = $1 }
  /Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
  /Non-2xx or 3xx responses:/ { non2xx = $5 }
  END { printf "rps=%.0f requests=%d errors=%d non2xx=%d body_ok=1\n", rps, n, err, non2xx }'
