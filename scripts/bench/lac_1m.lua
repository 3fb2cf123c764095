-- Benchmark: N trivial jobs (each sl.sleep(0), then returns its index) through
-- sl.limited_as_completed at LIMIT; the consumer sums the results.
--[[ usage: sluice lac_1m.lua [N=1000000] [LIMIT=1000] [MODE=handler|fn]

Prints "sum=<sum of 1..N> elapsed=<seconds>"; run.sh checks the sum. MODE "handler" has
the source yield indices and passes one shared job function as the handler; "fn" has the
source yield one closure per job. Peers: lac_1m.py, lac_1m_sem.py, lac_1m_luv.lua.
]]
local sl = require "sluice"

local N = tonumber(arg[1]) or 1000000
local LIMIT = tonumber(arg[2]) or 1000
local MODE = arg[3] or "handler"

local function job(i)
  sl.sleep(0)
  return i
end

local i = 0
local source, handler
if MODE == "fn" then
  source = function()
    i = i + 1
    if i <= N then
      local k = i
      return function() sl.sleep(0); return k end
    end
  end
else
  source = function()
    i = i + 1
    if i <= N then return i end
  end
  handler = job
end

local t0 = sl.now()
local sum = 0
for ok, v in sl.limited_as_completed(source, LIMIT, handler) do
  if not ok then error(v, 0) end
  sum = sum + v
end
print(string.format("sum=%d elapsed=%.3f", sum, sl.now() - t0))
