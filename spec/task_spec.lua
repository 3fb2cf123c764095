-- task_spec.lua: tasks (engine/task.c): spawn, join, results and errors, status, cancellation
-- with <close> and released waits, waits inside user coroutines, misuse errors.
local sl = require "sluice"

describe("tasks", function()
  it("spawn returns at once and join returns every result", function()
    local ran = false
    local t = sl.spawn(function(a, b) ran = true; return a + b, "x", nil end, 1, 2)
    assert.is_false(ran)                      -- queued, not run inline
    assert.equals("suspended", t:status())
    local a, b, c = t:join()
    assert.same({3, "x", nil}, {a, b, c})
    assert.equals(3, select("#", t:join()))  -- trailing nil kept; join can be repeated
    assert.equals("done", t:status())
    assert.is_true(t:done())
  end)

  it("runs tasks in FIFO order and sleep(0) gives way once", function()
    local log = {}
    local ts = {}
    for i = 1, 3 do
      ts[i] = sl.spawn(function() log[#log + 1] = i; sl.sleep(0); log[#log + 1] = i + 10 end)
    end
    for i = 1, 3 do ts[i]:join() end
    assert.same({1, 2, 3, 11, 12, 13}, log)
  end)

  it("re-raises a task's error from join and keeps its traceback", function()
    local t = sl.spawn(function() error("boom") end)
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.matches("task_spec.lua:%d+: boom", err)
    assert.equals("failed", t:status())
    assert.matches("stack traceback", t:traceback())
    assert.same({false, err}, {t:result()})
  end)

  it("keeps non-string error values as they are", function()
    local e = {code = 42}
    local t = sl.spawn(function() error(e) end)
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.equals(e, err)
  end)

  it("cancels promptly at the current wait, running <close> variables", function()
    local closed, after = false, false
    local t = sl.spawn(function()
      local guard <close> = setmetatable({}, {__close = function() closed = true end})
      sl.sleep(30)
      after = true
    end)
    sl.sleep(0)                               -- let it reach its sleep
    local t0 = sl.now()
    assert.is_true(t:cancel())
    assert.is_false(t:wait(1) == false)
    assert.is_true(sl.now() - t0 < 0.5)
    assert.equals("cancelled", t:status())
    assert.is_true(closed)
    assert.is_false(after)
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.is_true(sl.is_cancelled(err))
    assert.equals("cancelled", tostring(err))
  end)

  it("lets a <close> handler wait while the task is being cancelled", function()
    local cleaned = false
    local t = sl.spawn(function()
      local guard <close> = setmetatable({}, {__close = function()
        sl.sleep(0.01)
        cleaned = true
      end})
      sl.sleep(30)
    end)
    sl.sleep(0)
    t:cancel()
    t:wait()
    assert.is_true(cleaned)
    assert.equals("cancelled", t:status())
  end)

  it("cancels a task that never started without running it", function()
    local ran = false
    local t = sl.spawn(function() ran = true end)
    t:cancel()
    t:wait()
    assert.is_false(ran)
    assert.equals("cancelled", t:status())
    assert.is_false(t:cancel())               -- already ended
  end)

  it("allows a task to catch its cancellation and go on, like asyncio", function()
    local t = sl.spawn(function()
      local ok, err = pcall(sl.sleep, 30)
      assert(not ok and sl.is_cancelled(err))
      return "survived"
    end)
    sl.sleep(0)
    t:cancel()
    assert.equals("survived", t:join())
  end)

  it("a busy task is cancelled at its next wait", function()
    local reached = 0
    local t = sl.spawn(function()
      for _ = 1, 1000 do reached = reached + 1 end
      sl.sleep(0)
      reached = -1
    end)
    t:cancel()                                -- queued but not started: never runs
    t:wait()
    assert.equals(0, reached)
  end)

  it("lists live tasks and the current one", function()
    local me = sl.current()
    assert.is_not_nil(me)
    local t = sl.spawn(function() sl.sleep(30) end)
    local found = false
    for _, u in ipairs(sl.tasks()) do if u == t then found = true end end
    assert.is_true(found)
    assert.equals("running", me:status())
    t:cancel()
    t:wait()
    for _, u in ipairs(sl.tasks()) do assert.is_not.equal(t, u) end
  end)

  it("t:wait(timeout) returns false when the timeout comes first", function()
    local t = sl.spawn(function() sl.sleep(30) end)
    assert.is_false(t:wait(0.01))
    t:cancel()
    assert.is_true(t:wait())
  end)

  it("refuses to wait outside a task, in a clear message", function()
    local co = coroutine.create(function() return sl.sleep(0) end)
    -- a coroutine resumed from a task is fine (the wait passes through) ...
    assert.is_true((coroutine.resume(co)))
    -- ... but a task cannot join itself
    local ok, err = pcall(function() return sl.current():join() end)
    assert.is_false(ok)
    assert.matches("cannot wait for itself", err)
  end)

  it("passes waits through user coroutines (generators that wait)", function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do
        sl.sleep(0.001)
        coroutine.yield(i)
      end
    end)
    assert.same({1, 2, 3}, {gen(), gen(), gen()})
    local co = coroutine.create(function(x)
      local y = coroutine.yield(x + 1)
      sl.sleep(0.001)
      return y * 2
    end)
    assert.same({true, 2}, {coroutine.resume(co, 1)})
    assert.same({true, 10}, {coroutine.resume(co, 5)})
    assert.equals("dead", coroutine.status(co))
  end)

  it("refuses to resume a coroutine parked in another task's wait", function()
    local co = coroutine.create(function() sl.sleep(30) end)
    local holder = sl.spawn(function() return coroutine.resume(co) end)
    sl.sleep(0)
    sl.sleep(0)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("waiting inside a sluice task", err)
    holder:cancel()
    holder:wait()
  end)

  it("fails a task that yields with a bare coroutine.yield, clearly", function()
    local t = sl.spawn(function() coroutine.yield(1) end)
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.matches("coroutine.yield called directly in a task", err)
  end)

  it("raises argument errors that name the function", function()
    assert.has_error(function() sl.spawn(42) end,
                     "bad argument #1 to 'spawn' (function expected, got number)")
    assert.has_error(function() sl.sleep(-1) end)
    assert.matches("sleep", select(2, pcall(sl.sleep, -1)))
    assert.matches("task expected", select(2, pcall(sl.current().join, {})))
  end)
end)
