-- sluice.executor: seed 004's executor for tasks. submit() applies back-pressure, map()
-- yields in input order with a bounded window, and errors are raised, ignored or collected.
local core = require "sluice.core"

local spawn, current, semaphore, event = core.spawn, core.current, core.semaphore, core.event

local Executor = {}
Executor.__index = Executor

local MODES = {raise = true, ignore = true, collect = true}

--- sl.executor{max_workers = n, errors = "raise" | "ignore" | "collect", timeout = s}
-- Creates an executor; use it as `local ex <close> = sl.executor{...}`.
local function new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("bad argument #1 to 'executor' (table of options expected, got " .. type(opts) .. ")", 3)
  end
  local n = opts.max_workers or 100
  if math.type(n) ~= "integer" or n < 1 then
    error("bad option max_workers to 'executor' (integer >= 1 expected, got " .. tostring(n) .. ")", 3)
  end
  local mode = opts.errors or "raise"
  if not MODES[mode] then
    error("bad option errors to 'executor' (\"raise\", \"ignore\" or \"collect\" expected, got "
          .. tostring(mode) .. ")", 3)
  end
  if opts.timeout ~= nil and (type(opts.timeout) ~= "number" or opts.timeout < 0) then
    error("bad option timeout to 'executor' (non-negative number expected)", 3)
  end
  local ex = setmetatable({
    max_workers = n, mode = mode,
    slots = semaphore(n),       -- back-pressure: one slot per running job
    idle = event(),             -- set whenever no job is active
    jobs = {},                  -- active job task -> true (at most max_workers + nested)
    active = 0, submitted = 0, completed = 0, failed = 0,
    errors = {},                -- collect mode: {error =, traceback =, task =}
    failure = nil,              -- raise mode: the first failure
    closed = false,
  }, Executor)
  ex.idle:set()
  if opts.timeout then
    ex.watchdog = spawn(function()
      core.sleep(opts.timeout)
      ex.timed_out = opts.timeout
      ex:cancel()
    end)
  end
  return ex
end

-- Bookkeeping when a job ends, however it ends (even cancelled before it ever ran): called
-- by the engine outside any task, so it must not wait.
local function job_ended(ex, t)
  if ex.jobs[t] == "slot" then ex.slots:release() end
  ex.jobs[t] = nil
  ex.active = ex.active - 1
  if ex.active == 0 then ex.idle:set() end
  local ok, err = t:result()         -- taking the outcome: the executor answers for it
  if ok then
    ex.completed = ex.completed + 1
  elseif not core.is_cancelled(err) then
    ex.failed = ex.failed + 1
    local tb = t:traceback()
    if ex.mode == "raise" then
      if not ex.failure then
        ex.failure = {error = err, traceback = tb, task = t}
        ex:cancel()
      end
    elseif ex.mode == "collect" then
      ex.errors[#ex.errors + 1] = {error = err, traceback = tb, task = t}
    else
      io.stderr:write("sluice: executor job failed (ignored): ", tb or tostring(err), "\n")
    end
  end
end

-- A job submitted from inside one of this executor's own jobs: it waits for its slot
-- itself, so the submitting job never blocks while holding a slot.
local function run_nested(ex, fn, ...)
  ex.slots:acquire()
  ex.jobs[current()] = "slot"
  return fn(...)
end

local function start(ex, holding, fn, ...)
  ex.submitted = ex.submitted + 1
  ex.active = ex.active + 1
  ex.idle:clear()
  local t
  if holding then
    t = spawn(fn, ...)
    ex.jobs[t] = "slot"
  else
    t = spawn(run_nested, ex, fn, ...)
    ex.jobs[t] = "waiting"
  end
  local on_end = ex.on_end
  if not on_end then                  -- one closure per executor, not one per job
    on_end = function(done) job_ended(ex, done) end
    ex.on_end = on_end
  end
  core._on_end(t, on_end)
  return t
end

local function check_open(ex, fname)
  if ex.closed then error("attempt to use a closed executor", 3) end
  if ex.failure then core._reraise(ex.failure.error, ex.failure.traceback) end
  if ex.timed_out then
    error(("ETIMEDOUT: executor timed out after %g seconds"):format(ex.timed_out), 3)
  end
  if getmetatable(ex) ~= Executor then
    error("bad self to '" .. fname .. "' (executor expected; call it as ex:" .. fname .. "(...))", 3)
  end
end

--- ex:submit(fn, ...) -> task. Waits while max_workers jobs run (back-pressure). From
-- inside one of this executor's own jobs it never waits: the new job waits for its slot.
function Executor:submit(fn, ...)
  check_open(self, "submit")
  if type(fn) ~= "function" then
    error("bad argument #1 to 'submit' (function expected, got " .. type(fn) .. ")", 2)
  end
  if self.jobs[current()] then return start(self, false, fn, ...) end
  self.slots:acquire()
  if self.failure or self.timed_out then
    self.slots:release()
    check_open(self, "submit")
  end
  return start(self, true, fn, ...)
end

--- ex:try_submit(fn, ...) -> task, or nil, "EBUSY: ...", "EBUSY" when full. Never waits.
function Executor:try_submit(fn, ...)
  check_open(self, "try_submit")
  if type(fn) ~= "function" then
    error("bad argument #1 to 'try_submit' (function expected, got " .. type(fn) .. ")", 2)
  end
  if not self.slots:try_acquire() then
    return nil, ("EBUSY: executor is full (%d jobs running)"):format(self.max_workers), "EBUSY"
  end
  return start(self, true, fn, ...)
end

--- for v in ex:map(fn, iterable) do ... end: fn(item) for every item of an array or an
-- iterator function, results in input order; at most max_workers results are held.
-- A failed job raises (errors = "raise") or is skipped. A job returning nil ends the loop,
-- as with any Lua iterator.
function Executor:map(fn, iterable)
  check_open(self, "map")
  local pull
  if type(iterable) == "table" then
    local i = 0
    pull = function() i = i + 1; return iterable[i] end
  elseif type(iterable) == "function" then
    pull = iterable
  else
    error("bad argument #2 to 'map' (array or iterator function expected, got "
          .. type(iterable) .. ")", 2)
  end
  local window, first, last, done = {}, 1, 0, false
  return function()
    while true do
      while not done and last - first + 1 < self.max_workers do
        local item = pull()
        if item == nil then done = true break end
        last = last + 1
        window[last] = self:submit(fn, item)
      end
      if first > last then return nil end
      local t = window[first]
      window[first] = nil
      first = first + 1
      t:wait()
      if t:result() then return select(2, t:result()) end
      check_open(self, "map")   -- raise mode re-raises the first failure; else skip the item
    end
  end
end

--- ex:cancel(): cancels every running job.
function Executor:cancel()
  for t in pairs(self.jobs) do t:cancel() end
end

--- ex:join() -> true, or (errors = "collect") the list of {error, traceback, task}.
-- Waits until no job is running; re-raises the first failure in "raise" mode.
function Executor:join()
  while self.active > 0 do self.idle:wait() end
  -- Nothing runs any more: the timeout has nothing left to cancel, and its timer must not
  -- keep the process alive.
  if self.watchdog and not self.timed_out then
    self.watchdog:cancel()
    self.watchdog = nil
  end
  if self.failure then core._reraise(self.failure.error, self.failure.traceback) end
  if self.timed_out then
    error(("ETIMEDOUT: executor timed out after %g seconds"):format(self.timed_out), 2)
  end
  if self.mode == "collect" then return self.errors end
  return true
end

--- ex:stats() -> {submitted, running, completed, failed}
function Executor:stats()
  return {submitted = self.submitted, running = self.active,
          completed = self.completed, failed = self.failed}
end

-- `local ex <close> = sl.executor{}`: closing joins. If the block is left by an error,
-- the jobs are cancelled first and that error goes on, not a job's.
function Executor:__close(err)
  if self.closed then return end
  if err ~= nil then
    self:cancel()
    while self.active > 0 do self.idle:wait() end
    if self.watchdog then self.watchdog:cancel() end
  end
  if err == nil then                  -- join, with the timeout still armed
    local ok, e = pcall(self.join, self)
    self.closed = true
    if not ok then error(e, 0) end
  end
  self.closed = true
end

function Executor:close()
  return self:__close(nil)
end

Executor.__name = "sluice.executor"

return {new = new}
