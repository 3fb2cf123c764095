-- sync_spec.lua: sl.semaphore, sl.event, sl.queue (engine/sync.c): FIFO fairness, timeouts,
-- and cancelled waiters leaving the wait list.
local sl = require "sluice"

describe("semaphore", function()
  it("admits n holders and serves waiters first come, first served", function()
    local sem = sl.semaphore(2)
    local order, inside, peak = {}, 0, 0
    local ts = {}
    for i = 1, 6 do
      ts[i] = sl.spawn(function()
        local _ <close> = sem:acquire()
        inside = inside + 1
        peak = math.max(peak, inside)
        order[#order + 1] = i
        sl.sleep(0.002)
        inside = inside - 1
      end)
    end
    for i = 1, 6 do ts[i]:join() end
    assert.equals(2, peak)
    assert.same({1, 2, 3, 4, 5, 6}, order)
    assert.equals(2, sem:count())
  end)

  it("a cancelled waiter leaves the list and takes no slot", function()
    local sem = sl.semaphore(1)
    assert.equals(sem, sem:acquire())
    local waiter = sl.spawn(function() sem:acquire() return "got" end)
    local second = sl.spawn(function() sem:acquire() return "second" end)
    sl.sleep(0)
    waiter:cancel()
    waiter:wait()
    sem:release()
    assert.equals("second", second:join())
    assert.equals(0, sem:count())
    sem:release()
    assert.equals(1, sem:count())
  end)

  it("try_acquire never waits; acquire times out with the fail triple", function()
    local sem = sl.semaphore(1)
    assert.is_true(sem:try_acquire())
    assert.is_false(sem:try_acquire())
    local r, msg, code = sem:acquire(0.01)
    assert.is_nil(r)
    assert.equals("ETIMEDOUT", code)
    assert.matches("semaphore", msg)
    sem:release()
    assert.equals(sem, sem:acquire(0.01))
  end)

  it("rejects a negative count", function()
    assert.has_error(function() sl.semaphore(-1) end)
  end)
end)

describe("event", function()
  it("wakes every waiter when set, and stays set until cleared", function()
    local ev = sl.event()
    local woke = 0
    local ts = {}
    for i = 1, 3 do ts[i] = sl.spawn(function() ev:wait() woke = woke + 1 end) end
    sl.sleep(0)
    assert.equals(0, woke)
    ev:set()
    for i = 1, 3 do ts[i]:join() end
    assert.equals(3, woke)
    assert.is_true(ev:is_set())
    assert.is_true(ev:wait())
    ev:clear()
    local r, _, code = ev:wait(0.01)
    assert.is_nil(r)
    assert.equals("ETIMEDOUT", code)
  end)

  it("a cancelled waiter leaves the list", function()
    local ev = sl.event()
    local t = sl.spawn(function() ev:wait() end)
    sl.sleep(0)
    t:cancel()
    t:wait()
    assert.equals("cancelled", t:status())
    ev:set()                                   -- must not touch the cancelled task
    sl.sleep(0)
    assert.equals("cancelled", t:status())
  end)
end)

describe("queue", function()
  it("is FIFO and put waits while full", function()
    local q = sl.queue(2)
    local log = {}
    local producer = sl.spawn(function()
      for i = 1, 5 do q:put(i) log[#log + 1] = "put" .. i end
      q:close()
    end)
    sl.sleep(0)
    assert.same({"put1", "put2"}, log)         -- the third put waits
    assert.is_true(q:full())
    local got = {}
    while true do
      local v, err, code = q:get()
      if v == nil then
        assert.equals("EOF", code)
        assert.matches("closed", err)
        break
      end
      got[#got + 1] = v
    end
    assert.same({1, 2, 3, 4, 5}, got)
    producer:join()
  end)

  it("hands items to waiting getters in order", function()
    local q = sl.queue()
    local got = {}
    local ts = {}
    for i = 1, 3 do ts[i] = sl.spawn(function() got[i] = q:get() end) end
    sl.sleep(0)
    for i = 1, 3 do q:put("v" .. i) end
    for i = 1, 3 do ts[i]:join() end
    assert.same({"v1", "v2", "v3"}, got)
  end)

  it("a cancelled getter loses nothing", function()
    local q = sl.queue()
    local a = sl.spawn(function() return q:get() end)
    local b = sl.spawn(function() return q:get() end)
    sl.sleep(0)
    a:cancel()
    a:wait()
    q:put("item")
    assert.equals("item", b:join())
  end)

  it("try_put, try_get and timeouts return the fail triple", function()
    local q = sl.queue(1)
    assert.is_true(q:try_put(1))
    assert.same({nil, "EAGAIN: queue is full", "EAGAIN"}, {q:try_put(2)})
    assert.equals(1, q:try_get())
    assert.same({nil, "EAGAIN: queue is empty", "EAGAIN"}, {q:try_get()})
    local r, _, code = q:get(0.01)
    assert.is_nil(r)
    assert.equals("ETIMEDOUT", code)
    assert.equals(0, q:size())
    assert.is_true(q:empty())
  end)

  it("rejects nil items and puts into a closed queue", function()
    local q = sl.queue()
    assert.has_error(function() q:put(nil) end)
    q:close()
    assert.has_error(function() q:put(1) end, nil)
    assert.is_true(q:is_closed())
  end)
end)

describe("queue close", function()
  it("makes waiting putters raise instead of adding to a closed queue", function()
    local q = sl.queue(1)
    q:put("first")
    local putter = sl.spawn(function() return q:put("second") end)
    sl.sleep(0)
    q:close()
    local ok, err = pcall(putter.join, putter)
    assert.is_false(ok)
    assert.matches("closed queue", err)
    assert.equals("first", q:get())
    assert.same({nil, "EOF: queue is closed", "EOF"}, {q:get()})
  end)
end)
