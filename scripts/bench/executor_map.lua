-- Benchmark: ex:map over N jobs (each sl.sleep(0), then returns x*2) on an executor with
-- max_workers = WORKERS; the consumer sums in input order. Peer: executor_map.py.
--[[ usage: sluice executor_map.lua [N=1000000] [WORKERS=1000]

Prints "sum=<N*(N+1)> ordered=<1 if results came in input order> elapsed=<seconds>".
The iterable is an iterator function, so no table of N items is ever built.
]]
local sl = require "sluice"

local N = tonumber(arg[1]) or 1000000
local WORKERS = tonumber(arg[2]) or 1000

local function job(x)
  sl.sleep(0)
  return x * 2
end

local i = 0
local function source()
  i = i + 1
  if i <= N then return i end
end

local t0 = sl.now()
local sum, k, ordered = 0, 0, 1
do
  local ex <close> = sl.executor{max_workers = WORKERS}
  for v in ex:map(job, source) do
    k = k + 1
    if v ~= 2 * k then ordered = 0 end
    sum = sum + v
  end
  ex:join()
end
print(string.format("sum=%d ordered=%d elapsed=%.3f", sum, ordered, sl.now() - t0))
