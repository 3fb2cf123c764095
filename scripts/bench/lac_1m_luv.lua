-- Peer for lac_1m.lua: the same limited_as_completed loop in plain Lua 5.4 on luv, with a
-- minimal but efficient scheduler (coroutine per job, FIFO ready queue drained by uv idle).
--[[ usage: lua5.4 lac_1m_luv.lua [N=1000000] [LIMIT=1000] [MODE=handler|fn]

Prints "sum=<sum of 1..N> elapsed=<seconds>".

The scheduler does what sluice's engine does, minus everything a product needs (errors
as values, cancellation, task records): a task is a bare coroutine, waking pushes it on a
ring-buffer FIFO, and an idle handle (running only while the queue is non-empty) resumes
the tasks that were ready when the loop iteration began, so sleep(0) yields to the loop
exactly once. limited_as_completed keeps LIMIT jobs running, pulls the source only when a
slot frees, runs each job under pcall and hands ok, value, job to the consumer through a
FIFO in completion order, as sluice does. MODE
"handler" passes each index to one shared job function (like sl.limited_as_completed's
handler argument); "fn" makes one closure per job (the source yields functions).
]]
local uv = require "luv"

local N = tonumber(arg[1]) or 1000000
local LIMIT = tonumber(arg[2]) or 1000
local MODE = arg[3] or "handler"

-- Ready queue: a ring of coroutines and the argument each is resumed with.
local rq, rqarg, head, tail = {}, {}, 1, 0
local idle = uv.new_idle()
local resume, running, yield = coroutine.resume, coroutine.running, coroutine.yield

local drain -- forward declaration: the idle callback

local function wake(co, v)
  if tail < head then idle:start(drain) end
  tail = tail + 1
  rq[tail], rqarg[tail] = co, v
end

-- Resumes only the tasks queued before this pass; those they wake wait for the next one.
drain = function()
  local last = tail
  while head <= last do
    local co, v = rq[head], rqarg[head]
    rq[head], rqarg[head] = nil, nil
    head = head + 1
    local ok, err = resume(co, v)
    if not ok then error(debug.traceback(co, err), 0) end
  end
  if tail < head then
    head, tail = 1, 0
    idle:stop()
  end
end

local function sleep0()
  wake(running())
  return yield()
end

local function spawn(fn, a)
  local co = coroutine.create(fn)
  wake(co, a)
  return co
end

-- Completion-order iterator over source() (a function called until nil) with at most
-- `limit` jobs running; each item is a function (or a value passed to handler).
local function limited_as_completed(source, limit, handler)
  -- FIFO of finished jobs as parallel arrays: ok, value, job item.
  local rok, rval, rjob, rhead, rtail = {}, {}, {}, 1, 0
  local active, exhausted, waiter = 0, false, nil

  local function finish(item, ok, v)
    active = active - 1
    rtail = rtail + 1
    rok[rtail], rval[rtail], rjob[rtail] = ok, v, item
    if waiter then local w = waiter; waiter = nil; wake(w) end
  end
  -- A failing job is reported as ok=false, like sluice, instead of ending the loop.
  local function run_fn(f) finish(f, pcall(f)) end
  local function run_handler(x) finish(x, pcall(handler, x)) end

  local function fill()
    while not exhausted and active < limit do
      local item = source()
      if item == nil then exhausted = true; return end
      active = active + 1
      if handler then spawn(run_handler, item) else spawn(run_fn, item) end
    end
  end

  return function()
    -- Results not yet taken count against the limit, as in sluice.
    fill()
    while rhead > rtail do
      if active == 0 then return nil end
      waiter = running()
      yield()
    end
    local i = rhead
    local ok, v, item = rok[i], rval[i], rjob[i]
    rok[i], rval[i], rjob[i] = nil, nil, nil
    rhead = i + 1
    if rhead > rtail then rhead, rtail = 1, 0 end
    return ok, v, item
  end
end

local function job(i)
  sleep0()
  return i
end

local main = coroutine.create(function()
  local t0 = uv.hrtime()
  local i = 0
  local source
  if MODE == "fn" then
    source = function()
      i = i + 1
      if i <= N then local k = i; return function() sleep0(); return k end end
    end
  else
    source = function()
      i = i + 1
      if i <= N then return i end
    end
  end
  local sum = 0
  for ok, v in limited_as_completed(source, LIMIT, MODE ~= "fn" and job or nil) do
    if not ok then error(v, 0) end
    sum = sum + v
  end
  print(string.format("sum=%d elapsed=%.3f", sum, (uv.hrtime() - t0) / 1e9))
end)

wake(main)
uv.run()
