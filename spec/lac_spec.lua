-- lac_spec.lua: sl.limited_as_completed (engine/lac.c): the seeds' program, lazy pulling,
-- the limit counting unconsumed results, failures as rows, sources that wait or raise.
local sl = require "sluice"

-- A source of n items that records how many were pulled.
local function counting_source(n, make)
  local src = {pulled = 0}
  function src.next()
    if src.pulled >= n then return nil end
    src.pulled = src.pulled + 1
    return make(src.pulled)
  end
  return src
end

describe("limited_as_completed", function()
  it("runs the seeds' program: 100 jobs, job i sleeps 1/i unit, limit 10", function()
    local unit = 0.2
    local running, peak = 0, 0
    local src = counting_source(100, function(i)
      return function()
        running = running + 1
        peak = math.max(peak, running)
        sl.sleep(unit / i)
        running = running - 1
        return tostring(i)
      end
    end)
    local results, seen = {}, {}
    for ok, value in sl.limited_as_completed(src.next, 10) do
      assert.is_true(ok)
      results[#results + 1] = tonumber(value)
      seen[tonumber(value)] = true
    end
    assert.equals(100, #results)
    for i = 1, 100 do assert.is_true(seen[i], "missing " .. i) end
    assert.equals(10, peak)                    -- never more than the limit, and it is used
    assert.equals(10, results[1])              -- of the first ten, job 10 is fastest
    assert.equals(1, results[100])             -- job 1 sleeps a whole unit: last
  end)

  it("pulls the source only when a slot frees", function()
    local src = counting_source(50, function(i) return function() sl.sleep(0) return i end end)
    local iter, state, ctl, closer = sl.limited_as_completed(src.next, 5)
    assert.equals(0, src.pulled)               -- nothing before the first call
    local ok, v = iter(state, ctl)
    assert.is_true(ok)
    assert.equals(5, src.pulled)
    assert.equals(1, v)
    closer:close()
  end)

  it("counts results the consumer has not taken against the limit", function()
    local src = counting_source(100, function(i) return function() return i end end)
    local taken = 0
    for _, _ in sl.limited_as_completed(src.next, 4) do
      taken = taken + 1
      sl.sleep(0.001)                          -- a slow consumer
      assert.is_true(src.pulled <= taken + 4, "pulled " .. src.pulled .. " taken " .. taken)
    end
    assert.equals(100, taken)
  end)

  it("gives failed jobs as false, err, job rows and goes on", function()
    local rows = {}
    for ok, v, job in sl.limited_as_completed({1, 2, 3, 4}, 2, function(x)
      if x % 2 == 0 then error("even " .. x, 0) end
      return x * 10
    end) do
      rows[job] = {ok, v}
    end
    assert.same({{true, 10}, {false, "even 2"}, {true, 30}, {false, "even 4"}}, rows)
  end)

  it("accepts arrays of functions, iterators that wait, and coroutines", function()
    local sum = 0
    for ok, v in sl.limited_as_completed({function() return 1 end, function() return 2 end}, 1) do
      assert.is_true(ok)
      sum = sum + v
    end
    assert.equals(3, sum)
    local i = 0
    local waiting = function()                 -- a source that itself waits
      sl.sleep(0.001)
      i = i + 1
      if i <= 5 then return i end
    end
    local n = 0
    for ok in sl.limited_as_completed(waiting, 2, function(x) return x end) do
      assert.is_true(ok)
      n = n + 1
    end
    assert.equals(5, n)
    local gen = coroutine.create(function()
      for k = 1, 3 do sl.sleep(0.001) coroutine.yield(k) end
    end)
    local got = {}
    for _, v in sl.limited_as_completed(gen, 3, function(x) return x end) do got[v] = true end
    assert.same({true, true, true}, got)
  end)

  it("a source that raises cancels the running jobs and re-raises", function()
    local started = {}
    local k = 0
    local src = function()
      k = k + 1
      if k == 3 then error("source broke", 0) end
      return k
    end
    local ok, err = pcall(function()
      for _ in sl.limited_as_completed(src, 10, function(x)
        started[x] = sl.current()
        sl.sleep(30)
      end) do end
    end)
    assert.is_false(ok)
    assert.equals("source broke", err)
    sl.sleep(0)
    for _, t in pairs(started) do
      t:wait(1)
      assert.equals("cancelled", t:status())
    end
  end)

  it("breaking out of the loop cancels the jobs still running", function()
    local outcome, workers = {}, {}
    for _ in sl.limited_as_completed({0, 30, 30}, 3, function(s)
      local id = #workers + 1
      workers[id] = sl.current()             -- the worker task running this job
      local ok, err = pcall(sl.sleep, s)
      outcome[id] = ok and "finished" or (sl.is_cancelled(err) and "cancelled" or tostring(err))
      if not ok then error(err, 0) end
    end) do
      break
    end
    for _, t in ipairs(workers) do assert.is_true(t:wait(1)) end
    assert.same({"finished", "cancelled", "cancelled"}, outcome)
  end)

  it("runs jobs on at most `limit` worker tasks and leaves none behind", function()
    local workers = {}
    local before = #sl.tasks()
    for ok in sl.limited_as_completed(function()
      if #workers < 200 then return #workers + 1 end
    end, 7, function()
      workers[#workers + 1] = sl.current()
      sl.sleep(0)
    end) do
      assert.is_true(ok)
    end
    local distinct = {}
    for _, t in ipairs(workers) do distinct[t] = true end
    local n = 0
    for t in pairs(distinct) do
      n = n + 1
      assert.is_true(t:done())
    end
    assert.is_true(n <= 7, n .. " workers")
    assert.equals(before, #sl.tasks())
  end)

  it("raises argument errors", function()
    assert.matches("limit must be an integer of at least 1",
                   select(2, pcall(sl.limited_as_completed, {}, 0)))
    assert.has_error(function() sl.limited_as_completed(42, 1) end)
    assert.has_error(function() sl.limited_as_completed({}, "x") end)
    local ok, err = pcall(function()
      for _ in sl.limited_as_completed({1}, 1) do end
    end)
    assert.is_false(ok)
    assert.matches("not a function", err)
  end)

  it("keeps memory bounded by the limit, not the number of jobs", function()
    local function run(n)
      local k = 0
      collectgarbage("collect")
      local peak = 0
      for ok, v in sl.limited_as_completed(function()
        k = k + 1
        if k <= n then return k end
      end, 100, function(x) sl.sleep(0) return x end) do
        assert(ok)
        if v % 1000 == 0 then peak = math.max(peak, collectgarbage("count")) end
      end
      return peak
    end
    local small = run(20000)
    local big = run(200000)
    assert.is_true(big < small * 1.5 + 256, ("20k jobs: %.0f KB, 200k jobs: %.0f KB"):format(small, big))
  end)
end)
