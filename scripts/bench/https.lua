-- https.lua: the HTTP client's TLS costs against a local TLS server (scripts/bench/https.sh
-- starts nginx): 2,000 sequential GETs on one kept-alive connection, then 200 new
-- connections with a full handshake each and 200 that resume the origin's TLS session.
-- With PLAIN_URL, the same server over http:// gives the kept-alive GET's baseline.
-- usage: ./sluice scripts/bench/https.lua CA_FILE URL [PLAIN_URL]
local sl = require "sluice"
local http = require "sluice.http"

local ca, url, plain = arg[1], arg[2], arg[3]

-- Runs fn n times; prints wall and this process's CPU time per call, in µs.
local function measure(name, n, fn)
  local t0, c0 = sl.now(), os.clock()
  for i = 1, n do fn(i) end
  local wall, cpu = sl.now() - t0, os.clock() - c0
  print(("%-34s n=%-5d wall %7.1f µs/op   client cpu %6.1f µs/op"):format(name, n,
        wall / n * 1e6, cpu / n * 1e6))
end

local warm = http.client{ca_file = ca}
assert(warm:get(url))

if plain then
  local pc = http.client()
  assert(pc:get(plain))
  measure("GET over http://, kept alive", 2000, function()
    assert(assert(pc:get(plain)).status == 200)
  end)
end

local ka = http.client{ca_file = ca}
assert(ka:get(url))
measure("GET, one kept-alive connection", 2000, function()
  local res = assert(ka:get(url))
  assert(res.status == 200 and res.timings.tls == 0)
end)
assert(ka:stats().connects == 1, "the connection was not kept alive")

local full, tls_full = 0, 0
measure("new connection, full handshake", 200, function()
  local c = http.client{ca_file = ca, keepalive = 0}
  local res = assert(c:get(url))
  assert(not res.tls_resumed)
  tls_full = tls_full + res.timings.tls
  c:close()
  full = full + 1
end)

local resumer = http.client{ca_file = ca, keepalive = 0}
assert(resumer:get(url))
local tls_res = 0
measure("new connection, session resumed", 200, function()
  local res = assert(resumer:get(url))
  assert(res.tls_resumed, "the session was not resumed")
  tls_res = tls_res + res.timings.tls
end)
print(("handshake (timings.tls): full %.1f µs, resumed %.1f µs"):format(
      tls_full / 200 * 1e6, tls_res / 200 * 1e6))
