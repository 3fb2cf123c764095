-- timer_spec.lua: the loop clock, sleep ordering on the timer heap, and sl.timeout.
local sl = require "sluice"

describe("time", function()
  it("now is monotonic and sleep waits at least its time", function()
    local t0 = sl.now()
    sl.sleep(0.02)
    local dt = sl.now() - t0
    assert.is_true(dt >= 0.02, "slept " .. dt)
    assert.is_true(dt < 1)
  end)

  it("wakes sleepers in deadline order, equal deadlines in arming order", function()
    local log = {}
    local ts = {}
    for _, d in ipairs{0.03, 0.01, 0.02, 0.01} do
      ts[#ts + 1] = sl.spawn(function(id) sl.sleep(d) log[#log + 1] = id end, #ts + 1)
    end
    for _, t in ipairs(ts) do t:join() end
    assert.same({2, 4, 3, 1}, log)
  end)

  it("keeps 20,000 sleeping tasks on one heap and wakes them all", function()
    local woke = 0
    local ts = {}
    for i = 1, 20000 do
      ts[i] = sl.spawn(function() sl.sleep(0.001 * (i % 50)) woke = woke + 1 end)
    end
    for i = 1, 20000 do ts[i]:join() end
    assert.equals(20000, woke)
  end)

  it("a cancelled sleeper leaves the heap (others still wake on time)", function()
    local a = sl.spawn(function() sl.sleep(30) end)
    local b = sl.spawn(function() sl.sleep(0.01) return "b" end)
    sl.sleep(0)
    a:cancel()
    assert.equals("b", b:join())
    a:wait()
    assert.equals("cancelled", a:status())
  end)
end)

describe("sl.timeout", function()
  it("returns the function's results in time", function()
    assert.same({1, 2}, {sl.timeout(1, function(x) sl.sleep(0.001) return x, 2 end, 1)})
  end)

  it("returns the fail triple on expiry and cancels the function", function()
    local closed = false
    local t0 = sl.now()
    local r, msg, code = sl.timeout(0.02, function()
      local g <close> = setmetatable({}, {__close = function() closed = true end})
      sl.sleep(30)
    end)
    assert.is_nil(r)
    assert.equals("ETIMEDOUT", code)
    assert.matches("^ETIMEDOUT: ", msg)
    assert.is_true(closed)
    assert.is_true(sl.now() - t0 < 1)
  end)

  it("re-raises the function's error", function()
    assert.has_error(function() sl.timeout(1, function() error("inner", 0) end) end, "inner")
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() sl.timeout(-1, print) end)
    assert.has_error(function() sl.timeout(1, 42) end)
  end)

  it("nests: the inner deadline fires first", function()
    local r, _, code = sl.timeout(1, function()
      return sl.timeout(0.01, function() sl.sleep(30) end)
    end)
    assert.is_nil(r)
    assert.equals("ETIMEDOUT", code)
  end)
end)
