-- fetch_many.lua: the seeds' HTTP client. N GETs through sl.limited_as_completed over a lazy
-- source, at most LIMIT in flight; prints what came back, how fast, and the memory it took.
--[[ usage: sluice scripts/fetch_many.lua N [--limit L] [--url U] [--timeout S]

  N          number of GETs (required)
  --limit L  requests in flight at once (default 1000, as in the seeds)
  --url U    what to fetch (default http://127.0.0.1:8080/); "{}" in U is replaced by the
             request's index, 0 to N-1, like the seeds' "http://localhost:8080/{}"
  --timeout S  passed to http.get as opts.timeout (seconds)

Prints, e.g.:

  2000 GETs of http://127.0.0.1:8080/{} at limit 1000
  ok=2000 failed=0 status_200=2000 body_bytes=26000
  elapsed=4.51 s, rps=443 requests/s
  connections: opened=1000 reused=1000
  memory: lua_heap_peak=1.4 MB, peak_rss=11.2 MB (VmHWM)

A request that fails (connection refused, timeout, ...) is counted by its error name
(`failed=3 ECONNREFUSED=3`) and does not stop the others; the exit status is 1 if any
failed. Statuses other than 200 count as ok and are listed as status_<code>=<n>.
The source hands out one URL string per job and a single handler fetches it, so nothing
is built ahead of a free slot: memory depends on LIMIT, not on N. Requests go through one
http.client whose pool may hold LIMIT connections to a host and keep as many idle
(max_per_host and max_idle, 1000 by default), like the seeds' TCPConnector(limit=limit):
every connection is kept alive and reused.
]]
local sl = require "sluice"
local http = require "sluice.http"

local function usage(msg)
  io.stderr:write("fetch_many: ", msg, "\n",
    "usage: sluice scripts/fetch_many.lua N [--limit L] [--url U] [--timeout S]\n")
  os.exit(2)
end

local n, limit, url, timeout = nil, 1000, "http://127.0.0.1:8080/", nil
local i = 1
while arg[i] do
  local a = arg[i]
  if a == "--limit" or a == "--url" or a == "--timeout" then
    local v = arg[i + 1] or usage(a .. " needs a value")
    if a == "--url" then url = v
    elseif a == "--limit" then limit = math.tointeger(tonumber(v)) or usage("bad --limit " .. v)
    else timeout = tonumber(v) or usage("bad --timeout " .. v) end
    i = i + 2
  elseif not n and a:match("^%d+$") then
    n = math.tointeger(tonumber(a))
    i = i + 1
  else
    usage("unexpected argument " .. a)
  end
end
if not n then usage("how many requests?") end
if limit < 1 then usage("--limit must be at least 1") end

local opts = timeout and {timeout = timeout} or nil
local client = http.client{max_per_host = limit, max_idle = limit}

-- The lazy source: the next URL, or nil when N have been handed out.
local prefix, suffix = url:match("^(.-){}(.*)$")
local issued = 0
local function next_url()
  if issued >= n then return nil end
  issued = issued + 1
  if prefix then return prefix .. (issued - 1) .. suffix end
  return url
end

-- The handler runs as one job per URL. It returns the response, or the error's name (a
-- string) so that the consumer can count failures by kind.
local function fetch(u)
  local res, err, code = client:get(u, opts)
  if res then return res end
  return code or tostring(err)
end

-- Peak RSS of the whole process as the kernel saw it (VmHWM, KiB).
local function peak_rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

print(("%d GETs of %s at limit %d"):format(n, url, limit))
local ok_count, body_bytes, heap_peak = 0, 0, collectgarbage("count")
local statuses, failures, done = {}, {}, 0
local t0 = sl.now()
-- Under pcall so that Ctrl-C (a cancellation) still prints how far it got, then goes on.
local finished, stop = pcall(function()
  for ok, v in sl.limited_as_completed(next_url, limit, fetch) do
    done = done + 1
    if ok and type(v) == "table" then
      ok_count = ok_count + 1
      statuses[v.status] = (statuses[v.status] or 0) + 1
      body_bytes = body_bytes + #v.body
    else
      -- v is an error name from fetch, or what a job raised (ok == false)
      local name = ok and v or (tostring(v):match("^(E[%u_]+):") or "raised")
      failures[name] = (failures[name] or 0) + 1
    end
    local kb = collectgarbage("count")
    if kb > heap_peak then heap_peak = kb end
  end
end)
local elapsed = sl.now() - t0
if not finished then
  print(("interrupted (%s) after %d of %d requests"):format(
    sl.is_cancelled(stop) and "cancelled" or tostring(stop), done, n))
end

local function sorted_pairs(t, prefix_)
  local keys, out = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do out[#out + 1] = ("%s%s=%d"):format(prefix_, k, t[k]) end
  return out
end

local failed = done - ok_count
local words = {("ok=%d"):format(ok_count), ("failed=%d"):format(failed)}
for _, w in ipairs(sorted_pairs(failures, "")) do words[#words + 1] = w end
for _, w in ipairs(sorted_pairs(statuses, "status_")) do words[#words + 1] = w end
words[#words + 1] = ("body_bytes=%d"):format(body_bytes)
print(table.concat(words, " "))
print(("elapsed=%.2f s, rps=%.0f requests/s"):format(elapsed, done / math.max(elapsed, 1e-9)))
local st = client:stats()
print(("connections: opened=%d reused=%d"):format(st.connects, st.reused))
client:close()
local rss = peak_rss_kb()
print(("memory: lua_heap_peak=%.1f MB, peak_rss=%s (VmHWM)"):format(heap_peak / 1024,
  rss and ("%.1f MB"):format(rss / 1024) or "n/a"))
if not finished then error(stop, 0) end   -- a cancellation ends the script as cancelled
if failed > 0 then os.exit(1) end
