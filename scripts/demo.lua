-- demo.lua: the seeds' experiment. 100 jobs, job i sleeps 1/i of a unit, at most 10 at
-- once through limited_as_completed; then a million jobs at limit 1000 in constant memory.
local sl = require "sluice"

local unit = tonumber(arg and arg[1]) or 0.5
local running, peak = 0, 0

local function mycoro(number)
  running = running + 1
  peak = math.max(peak, running)
  print(("Starting %d"):format(number))
  sl.sleep(unit / number)
  print(("Finishing %d"):format(number))
  running = running - 1
  return tostring(number)
end

-- The source is lazy: job i is created only when a slot frees.
local i = 0
local function jobs()
  i = i + 1
  if i <= 100 then
    local n = i
    return function() return mycoro(n) end
  end
end

local t0 = sl.now()
local results = 0
for ok, value in sl.limited_as_completed(jobs, 10) do
  assert(ok, value)
  print("Result " .. value)
  results = results + 1
end
print(("\n%d results in %.2f s, never more than %d running at once (limit 10)")
      :format(results, sl.now() - t0, peak))

-- The scale the seeds were after: the number of jobs does not change the memory.
local function trivial(k) sl.sleep(0) return k end
for _, n in ipairs{100000, 1000000} do
  local k, sum = 0, 0
  collectgarbage("collect")
  t0 = sl.now()
  local lua_kb = 0
  for ok, v in sl.limited_as_completed(function() k = k + 1; if k <= n then return k end end,
                                       1000, trivial) do
    sum = sum + v
    if v % 50000 == 0 then lua_kb = math.max(lua_kb, collectgarbage("count")) end
  end
  assert(sum == n * (n + 1) // 2, "wrong sum")
  print(("%8d jobs at limit 1000: %.2f s, %.0f jobs/s, Lua heap peak %.1f MB")
        :format(n, sl.now() - t0, n / (sl.now() - t0), lua_kb / 1024))
end
