-- Benchmark: N tasks asleep at once (each sl.sleep(1), then returns 1); run.sh compares the
-- peak RSS with N=0 (the empty engine) to get bytes per sleeping task, and checks wall time.
--[[ usage: sluice sleepers.lua [N=100000] [SECONDS=1]

Prints "sum=<N> elapsed=<seconds>". Peers: sleepers.py (asyncio), sleepers.js (Node).
]]
local sl = require "sluice"

local N = tonumber(arg[1]) or 100000
local SECONDS = tonumber(arg[2]) or 1

local function sleeper()
  sl.sleep(SECONDS)
  return 1
end

local t0 = sl.now()
local tasks = {}
for i = 1, N do
  tasks[i] = sl.spawn(sleeper)
end
local sum = 0
for i = 1, N do
  sum = sum + tasks[i]:join()
end
print(string.format("sum=%d elapsed=%.3f", sum, sl.now() - t0))
