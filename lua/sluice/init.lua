-- sluice: the module scripts require. The C core (sluice.core) provides tasks, time, the
-- completion group, limited_as_completed and synchronisation; this file adds the rest.
local core = require "sluice.core"

local sl = {}
for k, v in pairs(core) do
  if type(k) == "string" and k:sub(1, 1) ~= "_" and k ~= "group" then sl[k] = v end
end

local spawn, now = core.spawn, core.now
local pack, unpack, select, type, error, pcall = table.pack, table.unpack, select, type, error, pcall

-- Coroutines that wait: coroutine.resume and coroutine.wrap are replaced at start-up (in C,
-- engine/coro.c) so that a sluice wait inside a user's own coroutine (a generator reading a
-- file, say) is passed up to the task, and the wake-up values back down.

-- Time --------------------------------------------------------------------------------------

--- Runs fn(...) as a child task under a deadline.
-- Returns fn's results; on expiry cancels fn, waits for its cleanups, and returns
-- nil, "ETIMEDOUT: ...", "ETIMEDOUT". fn's own error is re-raised.
function sl.timeout(seconds, fn, ...)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    error("bad argument #1 to 'timeout' (non-negative number of seconds expected, got "
          .. (type(seconds) == "number" and "a negative or NaN number" or type(seconds)) .. ")", 2)
  end
  if type(fn) ~= "function" then
    error("bad argument #2 to 'timeout' (function expected, got " .. type(fn) .. ")", 2)
  end
  local t = spawn(fn, ...)
  local ok, ended = pcall(t.wait, t, seconds)
  if not ok then            -- the caller itself was cancelled: take the child with it
    t:cancel()
    t:wait()
    error(ended, 0)
  end
  if not ended then
    t:cancel()
    t:wait()
    if t:status() == "cancelled" then
      return nil, ("ETIMEDOUT: timed out after %g seconds"):format(seconds), "ETIMEDOUT"
    end
  end
  return t:join()
end

-- asyncio's toolbox -------------------------------------------------------------------------

local function check_list(list, fname)
  if type(list) ~= "table" then
    error(("bad argument #1 to '%s' (table of tasks or functions expected, got %s)")
          :format(fname, type(list)), 3)
  end
end

local function check_opts(opts, fname)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to '%s' (table of options expected, got %s)")
          :format(fname, type(opts)), 3)
  end
  return opts or {}
end

-- Waits until every member of g has ended (used after cancelling them).
local function settle(g)
  while g:next() do end
end

--- Runs or waits for every task and function in list; results in input order.
-- opts.errors = "raise" (default): the first failure cancels the others, waits for them,
-- and is re-raised. "collect": returns results, errors where errors[i] is task i's error.
function sl.gather(list, opts)
  check_list(list, "gather")
  opts = check_opts(opts, "gather")
  local mode = opts.errors or "raise"
  if mode ~= "raise" and mode ~= "collect" then
    error("bad option errors to 'gather' (\"raise\" or \"collect\" expected, got "
          .. tostring(mode) .. ")", 2)
  end
  local g = core.group(list)
  local results, errors = {n = #list}, nil
  local function collect()
    while true do
      local i, t = g:next()
      if i == nil then return nil end
      local ok, v = t:result()
      if ok then
        results[i] = v
      elseif mode == "collect" then
        errors = errors or {}
        errors[i] = v
      else
        return t
      end
    end
  end
  local ok, failed = pcall(collect)
  if not ok then             -- gather itself was cancelled: so are its tasks
    g:cancel()
    settle(g)
    error(failed, 0)
  end
  if failed then
    g:cancel()
    settle(g)
    failed:join()            -- re-raises the first error
  end
  return results, errors
end

--- Waits for tasks until a condition: opts["until"] = "all" (default) | "first" |
-- "first_error", opts.timeout = seconds. Returns done (completion order), pending (input
-- order). Never raises the tasks' errors; look at each with t:result() or t:join().
function sl.wait(tasks, opts)
  check_list(tasks, "wait")
  opts = check_opts(opts, "wait")
  local cond = opts["until"] or "all"
  if cond ~= "all" and cond ~= "first" and cond ~= "first_error" then
    error("bad option until to 'wait' (\"all\", \"first\" or \"first_error\" expected, got "
          .. tostring(cond) .. ")", 2)
  end
  local g <close> = core.group(tasks)
  local deadline = opts.timeout and now() + opts.timeout
  local done, seen = {}, {}
  while true do
    local left = deadline and math.max(0, deadline - now())
    local i, t = g:next(left)
    if not i then break end          -- nil: all ended; false: timeout
    done[#done + 1], seen[i] = t, true
    if cond == "first" or (cond == "first_error" and t:status() == "failed") then
      -- also take whatever else has already ended, without waiting
      for j, u in g.next, g, 0 do
        if not j then break end
        done[#done + 1], seen[j] = u, true
      end
      break
    end
  end
  local pending, all = {}, g:tasks()
  for i = 1, #all do
    if not seen[i] then pending[#pending + 1] = all[i] end
  end
  return done, pending
end

--- Iterates over tasks (functions are spawned) in the order they end:
-- for t in sl.as_completed(tasks, {timeout = s}) do local v = t:join() end
-- Raises "ETIMEDOUT: ..." if opts.timeout passes with tasks still running.
function sl.as_completed(tasks, opts)
  check_list(tasks, "as_completed")
  opts = check_opts(opts, "as_completed")
  local g = core.group(tasks)
  local deadline = opts.timeout and now() + opts.timeout
  local function iter()
    local i, t = g:next(deadline and math.max(0, deadline - now()))
    if i == false then
      error(("ETIMEDOUT: as_completed timed out with %d task%s still running")
            :format(g:pending(), g:pending() == 1 and "" or "s"), 2)
    end
    return t
  end
  return iter, nil, nil, g
end

--- for ok, value, job in sl.limited_as_completed(source, limit [, handler]) do ... end
-- source: an iterator function (may wait), an array, or a coroutine; each item is a
-- function to run, or a value for handler(item). At most `limit` jobs are running or
-- finished-but-not-taken. Rows come in completion order, pcall style.
function sl.limited_as_completed(source, limit, handler)
  -- Checked here too, so that the error points at the caller's line, not at this file.
  local ts = type(source)
  if ts ~= "function" and ts ~= "table" and ts ~= "thread" then
    error("bad argument #1 to 'limited_as_completed' (function, array or generator "
          .. "expected, got " .. ts .. ")", 2)
  end
  if math.type(limit) ~= "integer" or limit < 1 then
    error("bad argument #2 to 'limited_as_completed' (limit must be an integer of at least "
          .. "1, got " .. tostring(limit) .. ")", 2)
  end
  if handler ~= nil and type(handler) ~= "function" then
    error("bad argument #3 to 'limited_as_completed' (function expected, got "
          .. type(handler) .. ")", 2)
  end
  if ts == "thread" then
    local co = source
    source = coroutine.wrap(function()
      while coroutine.status(co) == "suspended" do
        local ok, v = coroutine.resume(co)
        if not ok then error(v, 0) end
        if v == nil then return nil end
        coroutine.yield(v)
      end
    end)
  end
  return core.limited_as_completed(source, limit, handler)
end

sl.executor = function(opts)
  return require("sluice.executor").new(opts)
end

return sl
