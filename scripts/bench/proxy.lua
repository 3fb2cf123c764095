-- Benchmark: N GETs through an HTTP proxy, at most LIMIT in flight, one http.client (its
-- pool of connections to the proxy); peer: proxy_aiohttp.py.
--[[ usage: sluice scripts/bench/proxy.lua N LIMIT PROXY URL

Prints "ok=<n> failed=<n> status_200=<n> body_bytes=<n> elapsed=<s> rps=<requests/s>
connects=<n> reused=<n>".
]]
local sl = require "sluice"
local http = require "sluice.http"

local n, limit, proxy, url = tonumber(arg[1]), tonumber(arg[2]), arg[3], arg[4]
assert(n and limit and proxy and url, "usage: proxy.lua N LIMIT PROXY URL")
local client = http.client{proxy = proxy, max_per_host = limit}
local ok, failed, s200, bytes, errs = 0, 0, 0, 0, {}
local i = 0
local function source()
  if i >= n then return nil end
  i = i + 1
  return url
end
local t0 = sl.now()
-- The handler returns the response, or the error's name.
local function fetch(u)
  local res, err, code = client:get(u)
  if res then return res end
  return code or tostring(err)
end
for good, res in sl.limited_as_completed(source, limit, fetch) do
  if good and type(res) == "table" then
    ok = ok + 1
    if res.status == 200 then s200 = s200 + 1 end
    bytes = bytes + #res.body
  else
    failed = failed + 1
    res = tostring(res)
    errs[res] = (errs[res] or 0) + 1
  end
end
local elapsed = sl.now() - t0
local st = client:stats()
local words = {("ok=%d failed=%d status_200=%d body_bytes=%d"):format(ok, failed, s200, bytes)}
for k, v in pairs(errs) do words[#words + 1] = ("error_%s=%d"):format(k, v) end
words[#words + 1] = ("elapsed=%.3f rps=%.0f connects=%d reused=%d retries=%d"):format(
  elapsed, n / elapsed, st.connects, st.reused, st.retries)
print(table.concat(words, " "))
