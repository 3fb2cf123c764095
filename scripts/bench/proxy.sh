# run.sh's proxy benchmark (sourced): kept-alive GETs through a local HTTP proxy to a local
# nginx, sluice (proxy.lua) against aiohttp (proxy_aiohttp.py, its proxy= argument), both
# through the same proxy in the same rounds:
#   - tinyproxy (Debian's), the issue's proxy. It closes every client connection after its
#     response (whatever the response said), so each request is a new connection to it and
#     a new thread in it: the figures are tinyproxy's as much as the clients'.
#   - nginx as a forward proxy (proxy_nginx.conf.in: absolute-form requests passed on to
#     the origin), which keeps both sides alive: what the clients cost per request.
# Goal: sluice >= 5x aiohttp's req/s through tinyproxy (and through nginx).

setup_proxy() {
  command -v tinyproxy >/dev/null || apt_install tinyproxy || exit 1
}

# tinyproxy_start ORIGIN_URL : tinyproxy on a free port in the foreground (its own config
# in $TMP/tinyproxy); waits until a GET of ORIGIN_URL through it answers. Sets
# TINYPROXY_PID and TINYPROXY_URL.
tinyproxy_start() {
  local d="$TMP/tinyproxy" port _
  port=$(free_port)
  mkdir -p "$d"
  printf 'Port %s\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 1000\nLogLevel Critical\n' \
    "$port" >"$d/tinyproxy.conf"
  tinyproxy -d -c "$d/tinyproxy.conf" >"$d/out" 2>&1 &
  TINYPROXY_PID=$!
  BG_PIDS+=("$TINYPROXY_PID")
  TINYPROXY_URL="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 -x "$TINYPROXY_URL" "$1" && return 0
    sleep 0.1
  done
  echo "bench: tinyproxy did not start:" >&2
  cat "$d/out" >&2
  bg_stop "$TINYPROXY_PID"
  return 1
}

bench_proxy() {
  local n=20000 np=10000 nk=100000 limit=50
  [ "$QUICK" = 1 ] && { n=2000; np=1000; nk=10000; }
  echo "== proxy: GETs at limit $limit through tinyproxy ($n, aiohttp $np) and nginx as a forward proxy ($nk, aiohttp $np) to a local nginx" >&2
  if ! "$SLUICE" -e 'require("sluice.http").client{proxy = "http://127.0.0.1:1"}' >/dev/null 2>&1; then
    echo "bench: this sluice has no proxy option; proxy skipped" >&2
    goal "proxy: sluice >= 5x aiohttp's req/s through tinyproxy" 'a' n/a
    return
  fi
  nginx_start || { ERRORS=$((ERRORS + 1)); return; }
  local origin=$NGINX_URL origin_pid=$NGINX_PID
  if ! tinyproxy_start "$origin/"; then
    bg_stop "$origin_pid"; ERRORS=$((ERRORS + 1)); return
  fi
  # the forward nginx: nginx_start again, in a directory of its own
  local tmp_save=$TMP
  TMP="$TMP/fwd"; mkdir -p "$TMP"
  if ! nginx_start "$DIR/proxy_nginx.conf.in" -e "s|@ORIGIN@|${origin#http://}|g"; then
    TMP=$tmp_save; bg_stop "$TINYPROXY_PID"; bg_stop "$origin_pid"
    ERRORS=$((ERRORS + 1)); return
  fi
  TMP=$tmp_save
  local fwd=$NGINX_URL fwd_pid=$NGINX_PID
  local want="ok=$n failed=0 status_200=$n body_bytes=$((13 * n))"
  local wantk="ok=$nk failed=0 status_200=$nk body_bytes=$((13 * nk))"
  local wantp="ok=$np failed=0 status_200=$np body_bytes=$((13 * np))"
  plan proxy.sluice "$RUNS" "$want" "$SLUICE" "$DIR/proxy.lua" "$n" "$limit" "$TINYPROXY_URL" "$origin/"
  plan proxy.py "$PEER_RUNS" "$wantp" "$PY" "$DIR/proxy_aiohttp.py" "$np" "$limit" "$TINYPROXY_URL" "$origin/"
  plan proxy.sluicek "$RUNS" "$wantk" "$SLUICE" "$DIR/proxy.lua" "$nk" "$limit" "$fwd" "$origin/"
  plan proxy.pyk "$PEER_RUNS" "$wantp" "$PY" "$DIR/proxy_aiohttp.py" "$np" "$limit" "$fwd" "$origin/"
  local tp0 tp1
  tp0=$(proc_stats "$TINYPROXY_PID")
  run_plan
  tp1=$(proc_stats "$TINYPROXY_PID")
  bg_stop "$fwd_pid"; bg_stop "$TINYPROXY_PID"; bg_stop "$origin_pid"

  local k wn
  for k in proxy.sluice proxy.py proxy.sluicek proxy.pyk; do
    case $k in proxy.sluice) wn=$n ;; proxy.sluicek) wn=$nk ;; *) wn=$np ;; esac
    ok "$k" && EXTRA[$k]=$(awk -v c="${CPU[$k]}" -v n="$wn" 'BEGIN { printf "%.1f us cpu/req", c * 1e6 / n }')
  done
  row_rps "GET via tinyproxy, c=$limit" proxy.sluice "sluice proxy.lua" "$n"
  row_rps "" proxy.py "python aiohttp proxy=" "$np" proxy.sluice
  row_rps "GET via nginx fwd, c=$limit" proxy.sluicek "sluice proxy.lua (kept alive)" "$nk"
  row_rps "" proxy.pyk "python aiohttp proxy=" "$np" proxy.sluicek
  local tpc
  tpc=$(awk -v a="${tp0#* }" -v b="${tp1#* }" 'BEGIN { printf "%.1f", b - a }')
  echo "proxy: tinyproxy used ${tpc} s of cpu over all the runs through it (one thread per connection)" >&2
  local r=$(rps_ratio proxy.sluice proxy.py) rk=$(rps_ratio proxy.sluicek proxy.pyk)
  goal "proxy: sluice >= 5x aiohttp's req/s through tinyproxy (${r}x: ${RPS[proxy.sluice]:-n/a} vs ${RPS[proxy.py]:-n/a} req/s; tinyproxy ${tpc} s cpu)" \
    'a >= 5' "$r"
  goal "proxy: sluice >= 5x aiohttp's req/s through nginx as a forward proxy, kept alive (${rk}x: ${RPS[proxy.sluicek]:-n/a} vs ${RPS[proxy.pyk]:-n/a} req/s)" \
    'a >= 5' "$rk"
}
