-- executor_spec.lua: sl.executor (lua/sluice/executor.lua): back-pressure, try_submit, map
-- order and window, the three error modes, timeout, nested submits, feeding from many tasks.
local sl = require "sluice"

describe("executor", function()
  it("submit applies back-pressure: never more than max_workers running", function()
    local running, peak, done = 0, 0, 0
    do
      local ex <close> = sl.executor{max_workers = 3}
      for _ = 1, 20 do
        ex:submit(function()
          running = running + 1
          peak = math.max(peak, running)
          sl.sleep(0.001)
          running = running - 1
          done = done + 1
        end)
        assert.is_true(running <= 3)
      end
    end                                        -- closing joins
    assert.equals(3, peak)
    assert.equals(20, done)
  end)

  it("try_submit never waits and says EBUSY when full", function()
    local ex <close> = sl.executor{max_workers = 1}
    local t = ex:try_submit(sl.sleep, 0.01)
    assert.is_not_nil(t)
    local r, msg, code = ex:try_submit(function() end)
    assert.is_nil(r)
    assert.equals("EBUSY", code)
    assert.matches("^EBUSY: ", msg)
    t:join()
  end)

  it("map yields in input order with a bounded window", function()
    local ex <close> = sl.executor{max_workers = 4}
    local started, out = 0, {}
    local items = {}
    for i = 1, 30 do items[i] = i end
    for v in ex:map(function(x)
      started = started + 1
      sl.sleep(0.001 * (x % 5))
      return x * 2
    end, items) do
      out[#out + 1] = v
      assert.is_true(started <= #out + 4, "window exceeded")
    end
    local want = {}
    for i = 1, 30 do want[i] = i * 2 end
    assert.same(want, out)
  end)

  it("raise mode: the first failure cancels the others and join re-raises it", function()
    local ex = sl.executor{max_workers = 4}
    local slow = ex:submit(sl.sleep, 30)
    local delivered = ex:submit(function() return "kept" end)
    ex:submit(function() sl.sleep(0.01) error("job failed", 0) end)
    local ok, err = pcall(ex.join, ex)
    assert.is_false(ok)
    assert.equals("job failed", err)
    assert.equals("cancelled", slow:status())
    assert.equals("kept", delivered:join())    -- results already delivered stay delivered
    assert.has_error(function() ex:submit(print) end, "job failed")
  end)

  it("collect mode returns every error with its job", function()
    local ex = sl.executor{max_workers = 2, errors = "collect"}
    local bad = ex:submit(function() error("e1", 0) end)
    ex:submit(function() return 1 end)
    ex:submit(function() error("e2", 0) end)
    local errs = ex:join()
    assert.equals(2, #errs)
    local msgs = {errs[1].error, errs[2].error}
    table.sort(msgs)
    assert.same({"e1", "e2"}, msgs)
    assert.is_true(errs[1].task == bad or errs[2].task == bad)
    assert.matches("stack traceback", errs[1].traceback)
  end)

  it("ignore mode keeps going", function()
    local ex = sl.executor{max_workers = 2, errors = "ignore"}
    ex:submit(function() error("ignored", 0) end)
    local ok = ex:submit(function() return "fine" end)
    assert.is_true(ex:join())
    assert.equals("fine", ok:join())
    assert.equals(1, ex:stats().failed)
  end)

  it("its timeout cancels whatever is still running", function()
    local ex = sl.executor{max_workers = 2, timeout = 0.02}
    local t = ex:submit(sl.sleep, 30)
    local ok, err = pcall(ex.join, ex)
    assert.is_false(ok)
    assert.matches("ETIMEDOUT", err)
    assert.equals("cancelled", t:status())
  end)

  it("a job submitting into its own executor does not deadlock", function()
    local ex <close> = sl.executor{max_workers = 2}
    local nodes = 0
    local function node(depth)
      nodes = nodes + 1
      if depth < 4 then
        for _ = 1, 3 do ex:submit(node, depth + 1) end   -- never waits inside a job
      end
    end
    ex:submit(node, 0)
    ex:join()
    assert.equals(1 + 3 + 9 + 27 + 81, nodes)
  end)

  it("can be passed around and fed from several tasks", function()
    local ex <close> = sl.executor{max_workers = 3}
    local sum = 0
    local feeders = {}
    for f = 1, 4 do
      feeders[f] = sl.spawn(function(e)
        for i = 1, 25 do e:submit(function() sl.sleep(0) sum = sum + i end) end
      end, ex)
    end
    for f = 1, 4 do feeders[f]:join() end
    ex:join()
    assert.equals(4 * 325, sum)
  end)

  it("leaving its block by an error cancels the jobs and keeps that error", function()
    local job
    local ok, err = pcall(function()
      local ex <close> = sl.executor{max_workers = 2}
      job = ex:submit(sl.sleep, 30)
      error("body failed", 0)
    end)
    assert.is_false(ok)
    assert.equals("body failed", err)
    assert.equals("cancelled", job:status())
  end)

  it("rejects bad options", function()
    assert.has_error(function() sl.executor{max_workers = 0} end)
    assert.has_error(function() sl.executor{errors = "loud"} end)
    assert.has_error(function() sl.executor{timeout = -1} end)
    local ex = sl.executor{}
    ex:close()
    assert.has_error(function() ex:submit(print) end, "attempt to use a closed executor")
  end)
end)

describe("executor timeout", function()
  it("applies when the executor is closed, not only at join", function()
    local job
    local ok, err = pcall(function()
      local ex <close> = sl.executor{max_workers = 1, timeout = 0.02}
      job = ex:submit(sl.sleep, 30)
    end)
    assert.is_false(ok)
    assert.matches("ETIMEDOUT", err)
    assert.equals("cancelled", job:status())
  end)

  it("stops its timer once join finds nothing running", function()
    local ex = sl.executor{max_workers = 1, timeout = 30}
    ex:submit(function() return 1 end)
    assert.is_true(ex:join())
    assert.is_nil(ex.watchdog)                -- no timer left to keep the process alive
  end)
end)
