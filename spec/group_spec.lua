-- group_spec.lua: sl.gather, sl.wait and sl.as_completed (engine/group.c, lua/sluice/init.lua).
local sl = require "sluice"

local function after(s, v) return function() sl.sleep(s) return v end end
local function fail_after(s, e) return function() sl.sleep(s) error(e, 0) end end

describe("gather", function()
  it("returns results in input order, for tasks and functions", function()
    local t = sl.spawn(after(0.02, "a"))
    local r = sl.gather{t, after(0.01, "b"), function() return "c" end}
    assert.same({"a", "b", "c", n = 3}, r)
  end)

  it("on the first error cancels the rest, waits for them, and re-raises", function()
    local slow = sl.spawn(after(30, "never"))
    local t0 = sl.now()
    local ok, err = pcall(sl.gather, {slow, fail_after(0.01, "bad"), after(30, "x")})
    assert.is_false(ok)
    assert.equals("bad", err)
    assert.equals("cancelled", slow:status())
    assert.is_true(sl.now() - t0 < 1)
  end)

  it("collects errors by index with errors = 'collect'", function()
    local r, errs = sl.gather({after(0, 1), fail_after(0, "e2"), after(0, 3)}, {errors = "collect"})
    assert.same({1, nil, 3, n = 3}, r)
    assert.same({[2] = "e2"}, errs)
  end)

  it("cancelling the gathering task cancels its children", function()
    local child = sl.spawn(after(30, 1))
    local g = sl.spawn(function() return sl.gather{child} end)
    sl.sleep(0.01)
    g:cancel()
    g:wait()
    assert.equals("cancelled", child:status())
  end)

  it("handles an empty list and rejects bad input", function()
    assert.same({n = 0}, sl.gather{})
    assert.has_error(function() sl.gather(42) end)
    assert.has_error(function() sl.gather({42}) end)
    assert.has_error(function() sl.gather({}, {errors = "nope"}) end)
  end)
end)

describe("wait", function()
  it("until = 'all' returns every task done", function()
    local done, pending = sl.wait{after(0.01, 1), after(0, 2)}
    assert.equals(2, #done)
    assert.equals(0, #pending)
    assert.equals(2, done[1]:join())           -- completion order
  end)

  it("until = 'first' returns as soon as one ends", function()
    local slow = sl.spawn(after(30, 1))
    local done, pending = sl.wait({slow, after(0.01, 2)}, {["until"] = "first"})
    assert.equals(1, #done)
    assert.same({slow}, pending)
    slow:cancel()
  end)

  it("until = 'first_error' stops at a failure, not at a success", function()
    local slow = sl.spawn(after(30, 1))
    local done, pending = sl.wait({after(0, "ok"), fail_after(0.01, "x"), slow},
                                  {["until"] = "first_error"})
    assert.equals(2, #done)
    assert.equals("failed", done[2]:status())
    assert.same({slow}, pending)
    slow:cancel()
    done[2]:result()                           -- take the error so it is not reported
  end)

  it("returns what is done when the timeout passes", function()
    local slow = sl.spawn(after(30, 1))
    local t0 = sl.now()
    local done, pending = sl.wait({after(0, 1), slow}, {timeout = 0.02})
    assert.is_true(sl.now() - t0 >= 0.02)
    assert.equals(1, #done)
    assert.same({slow}, pending)
    slow:cancel()
  end)
end)

describe("as_completed", function()
  it("yields tasks in completion order", function()
    local order = {}
    for t in sl.as_completed{after(0.03, 3), after(0.01, 1), after(0.02, 2)} do
      order[#order + 1] = t:join()
    end
    assert.same({1, 2, 3}, order)
  end)

  it("raises ETIMEDOUT when the timeout passes with tasks running", function()
    local slow = sl.spawn(after(30, 1))
    local got = {}
    local ok, err = pcall(function()
      for t in sl.as_completed({after(0, "fast"), slow}, {timeout = 0.02}) do
        got[#got + 1] = t:join()
      end
    end)
    assert.is_false(ok)
    assert.matches("ETIMEDOUT", err)
    assert.same({"fast"}, got)
    slow:cancel()
  end)
end)
