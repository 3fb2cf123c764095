-- The task side of running spec code: each hook or test body runs in a task of its own under
-- a deadline, and the tasks a test leaves running are found, named and cancelled.

local sl = require "sluice"
local core = require "sluice.core"
local errors = require "sluice.test.errors"

local M = {}

-- How long a cancelled task gets to run its cleanups before the runner gives up on it.
local GRACE = 1

local function now() return sl.now() end

-- Formats seconds without trailing noise: 5 -> "5", 0.25 -> "0.25".
local function secs(s)
  return (("%.3f"):format(s):gsub("%.?0+$", ""))
end

-- Waits (boundedly) for a task to end, e.g. after cancelling it; true if it ended.
local function settle(task)
  if not task or task:done() then return true end
  pcall(sl.timeout, GRACE, function() pcall(function() return task:join() end) end)
  return task:done()
end

--- The set of tasks alive now (keys are task handles, which are stable).
function M.set()
  local set = {}
  for _, t in ipairs(sl.tasks()) do set[t] = true end
  return set
end

--- Cancels the tasks alive now that are not in `baseline` (from M.set) and returns a
--- problem naming them, or nil. `what` names the culprit ("the test").
function M.leftovers(baseline, what)
  local left = {}
  for _, t in ipairs(sl.tasks()) do
    if not baseline[t] and not t:done() then left[#left + 1] = t end
  end
  if #left == 0 then return nil end
  local names = {}
  for i, t in ipairs(left) do
    local name, status = tostring(t), t:status()
    if not name:find(status, 1, true) then name = name .. " (" .. status .. ")" end
    names[i] = name
    t:cancel()
  end
  local stuck = 0
  for _, t in ipairs(left) do
    if not settle(t) then stuck = stuck + 1 end
  end
  local msg = ("%s left %d task%s running: %s; the runner cancelled %s"):format(
    what, #left, #left == 1 and "" or "s", table.concat(names, ", "),
    #left == 1 and "it" or "them")
  if stuck > 0 then
    msg = msg .. (" (%d still not ended %s s after cancel)"):format(stuck, secs(GRACE))
  end
  return {kind = "error", message = msg}
end

--- The libuv handles open now, by kind ({tcp = 2, timer = 1}), less the engine's own.
function M.handles()
  return core._handles()
end

-- How many loop turns a handle being closed gets to finish closing (a socket whose peer
-- was closed sees its end of file one poll later) before the check judges.
local TURNS = 10

-- The kinds with more handles in `now` than in `before`, as {"tcp", "timer", ...}.
local function grown(before, now)
  local kinds = {}
  for kind, n in pairs(now) do
    for _ = (before[kind] or 0) + 1, n do kinds[#kinds + 1] = kind end
  end
  table.sort(kinds)
  return kinds
end

--- Returns a problem naming the handles open now that were not open at `baseline` (from
--- M.handles), or nil; `what` names the culprit ("the test"). Waits a few loop turns
--- first, so that handles being closed (and sockets whose peer just closed) finish. The
--- runner cannot close them for the test (their owners would be left dangling), so what is
--- reported is added to each of `outer` (the enclosing blocks' baselines): reported once.
function M.leaked_handles(baseline, what, outer)
  local kinds = grown(baseline, M.handles())
  for _ = 1, TURNS do
    if #kinds == 0 then return nil end
    sl.sleep(0)
    kinds = grown(baseline, M.handles())
  end
  if #kinds == 0 then return nil end
  for _, b in ipairs(outer or {}) do
    for _, kind in ipairs(kinds) do b[kind] = (b[kind] or 0) + 1 end
  end
  return {kind = "error", message = ("%s left %d libuv handle%s open: %s; close %s where "
    .. "%s opened (a `finally` or a teardown does it even when a test fails)"):format(what,
    #kinds, #kinds == 1 and "" or "s", table.concat(kinds, ", "),
    #kinds == 1 and "it" or "them", #kinds == 1 and "it was" or "they were")}
end

--- Runs fn in a new task with `timeout` seconds; returns a problem record or nil.
-- The task records its error instead of raising it, even a cancellation, so that the only
-- error sl.timeout can raise here is the cancellation of the runner's own task (Ctrl-C),
-- which must stop the run. A deadline is then told from a cancelled task the test joined
-- by the clock, which also catches a test that swallowed its cancellation and went on.
function M.phase(fn, timeout, source)
  local rec = {}
  local handler = errors.handler_for(source)
  local function body()
    rec.task = sl.current()
    local ok, p = xpcall(fn, handler)
    if not ok then rec.problem = p end
    return true
  end
  local start = now()
  local res = sl.timeout(timeout, body)
  local elapsed = now() - start
  local p = rec.problem
  if res == nil or elapsed >= timeout then
    settle(rec.task)
    local cancelled = p and p.kind == "cancelled"
    local t = {kind = "error", timeout = true}
    if res == nil or cancelled then
      t.message = ("timed out after %s s; raise the deadline with --timeout S or "
                   .. "{timeout = S} on it/describe"):format(secs(timeout))
    else
      -- It ended on its own, late: it swallowed the cancellation or never let the loop run.
      t.message = ("ran %s s, past its %s s deadline: it caught the cancellation or "
                   .. "blocked the loop"):format(secs(elapsed), secs(timeout))
    end
    if cancelled and p.traceback then
      t.traceback = p.traceback
      t.traceback_title = "where the test was waiting when it was cancelled:"
    end
    return t
  end
  if p and p.kind == "cancelled" then
    p.kind = "error"
    p.message = "raised the cancellation error (" .. p.message
      .. "), which usually comes from joining a task that was cancelled"
  end
  return p
end

return M
