-- Benchmark: sl.gather over N tasks spawned up front (each sl.sleep(0), then returns its
-- index); the results are summed. Peer: gather.py (asyncio.gather of N tasks).
--[[ usage: sluice gather.lua [N=100000]

Prints "sum=<sum of 1..N> elapsed=<seconds>"; run.sh checks the sum and that the results
came back in input order (gather's contract), which "ordered=1" reports.
]]
local sl = require "sluice"

local N = tonumber(arg[1]) or 100000

local function job(i)
  sl.sleep(0)
  return i
end

local t0 = sl.now()
local tasks = {}
for i = 1, N do
  tasks[i] = sl.spawn(job, i)
end
local results = sl.gather(tasks)
local sum, ordered = 0, 1
for i = 1, N do
  local v = results[i]
  if v ~= i then ordered = 0 end
  sum = sum + (v or 0)
end
print(string.format("sum=%d ordered=%d elapsed=%.3f", sum, ordered, sl.now() - t0))
