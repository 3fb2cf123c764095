-- sluice.crawl.frontier: the URLs waiting to be fetched, one FIFO per host (origin), and
-- the order hosts take turns in. A host is *eligible* when it has URLs, fewer than its
-- per-host limit in flight, its robots.txt is known and its delay has passed; eligible hosts
-- wait in a round-robin ring, delayed ones in a heap by time, so taking the next URL costs
-- O(log hosts) and a slow host never holds up the others. Beyond `max_queued` URLs in
-- memory, new ones go to a spill file on disk and come back, in order, as the queues drain.
local url = require "sluice.url"

local origin_of = url.origin

local M = {}
local F = {}
F.__index = F

--- M.new{per_host =, delay =, max_queued =, spill_path = (nil: a temporary file),
--  now = fn, on_host = fn(host), filter = fn(host, url, depth, parent) → false to drop}
function M.new(o)
  return setmetatable({
    hosts = {}, nhosts = 0,
    ring = {}, ring_first = 1, ring_last = 0,     -- eligible hosts, round robin
    heap = {},                                   -- {time, host} delayed hosts
    queued = 0,                                  -- URLs in memory (retries included)
    spilled = 0,                                 -- URLs in the spill file, not yet read back
    retrying = 0,                                -- URLs waiting for their next attempt
    retry_queued = 0,                            -- retries due, back in their host's queue
    only_retries = false,                        -- the page limit is reached: retries only
    per_host = o.per_host, delay = o.delay or 0,
    max_queued = o.max_queued, spill_path = o.spill_path,
    spill_temp = o.spill_path == nil, now = o.now, on_host = o.on_host,
    filter = o.filter or function() return true end,
  }, F)
end

-- The delayed-host heap, ordered by time.
local function heap_push(h, time, item)
  local n = #h + 1
  h[n] = {time, item}
  while n > 1 do
    local p = n // 2
    if h[p][1] <= h[n][1] then break end
    h[p], h[n] = h[n], h[p]
    n = p
  end
end

local function heap_pop(h)
  local top, n = h[1], #h
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and h[l][1] < h[m][1] then m = l end
    if r <= n and h[r][1] < h[m][1] then m = r end
    if m == i then break end
    h[i], h[m] = h[m], h[i]
    i = m
  end
  return top
end

--- The host record for an origin, made (and announced with on_host) the first time.
function F:host(origin)
  local h = self.hosts[origin]
  if h then return h end
  h = {origin = origin, urls = {}, depths = {}, parents = {}, head = 1, tail = 0,
       retries = {}, inflight = 0, next_time = 0, delay = self.delay, state = "idle",
       robots = nil}
  self.hosts[origin] = h
  self.nhosts = self.nhosts + 1
  self.on_host(h)
  return h
end

--- Puts a host where it belongs now: in the ring when it could send a request, in the heap
-- when only its delay holds it, nowhere otherwise (empty, full, or robots.txt unknown).
function F:check(h)
  if h.state ~= "idle" or not h.robots or h.inflight >= self.per_host then return end
  if (self.only_retries or h.tail < h.head) and #h.retries == 0 then return end
  if h.next_time > self.now() then
    h.state = "delayed"
    heap_push(self.heap, h.next_time, h)
  else
    h.state = "ready"
    local last = self.ring_last + 1
    self.ring_last = last
    self.ring[last] = h
  end
end

local function spill(self, u, depth, parent)
  local f = self.spill_w
  if not f then
    -- (named only now: a crawl that never spills leaves no file behind)
    self.spill_path = self.spill_path or os.tmpname()
    f = assert(io.open(self.spill_path, "w+b"))
    self.spill_w, self.spill_pos = f, 0
  end
  f:seek("end")
  f:write(depth, "\t", parent or "", "\t", u, "\n")
  self.spilled = self.spilled + 1
end

-- Puts a URL in its host's queue in memory.
local function push_mem(self, u, depth, parent)
  local h = self:host(origin_of(u))
  local t = h.tail + 1
  h.tail = t
  h.urls[t], h.depths[t], h.parents[t] = u, depth, parent or false
  self.queued = self.queued + 1
  if h.state == "idle" then self:check(h) end
end

--- Queues a URL (normalized, not seen before) at depth, found on parent (nil for a seed).
-- While URLs wait on disk, new ones go behind them, so the order stays first in, first out.
function F:push(u, depth, parent)
  if self.queued >= self.max_queued or self.spilled > 0 then
    return spill(self, u, depth, parent)
  end
  push_mem(self, u, depth, parent)
end

-- Reads spilled URLs back while memory has room for them (below three quarters full).
local function unspill(self)
  local f = self.spill_w
  f:seek("set", self.spill_pos)
  local room = math.max(1, self.max_queued * 3 // 4)
  while self.spilled > 0 and self.queued < room do
    local line = f:read("l")
    if not line then break end
    local depth, parent, u = line:match("^(%d+)\t([^\t]*)\t(.*)$")
    self.spilled = self.spilled - 1
    push_mem(self, u, tonumber(depth), parent ~= "" and parent or nil)
  end
  if self.spilled == 0 then
    -- Everything came back: start the file again rather than let it grow.
    f:close()
    self.spill_w = nil
    os.remove(self.spill_path)
    if self.spill_temp then self.spill_path = nil end
  else
    self.spill_pos = f:seek()
  end
end

-- A host's queue is three arrays indexed head..tail. Lua never shrinks an array whose front
-- was emptied, so once more than half of it is dead the live part moves to new arrays:
-- memory follows the queue's length, not the number of URLs that went through it.
local function compact(h)
  local head, tail = h.head, h.tail
  local n = tail - head + 1
  h.urls = table.move(h.urls, head, tail, 1, {})
  h.depths = table.move(h.depths, head, tail, 1, {})
  h.parents = table.move(h.parents, head, tail, 1, {})
  h.head, h.tail = 1, n
end

--- Takes the next URL to fetch, host by host in turn: returns host, url, depth, parent,
-- attempt (1 for a first try) and whether the URL was put back by retry (so a first try
-- that could not start counts once), or nil when no host may send a request now.
function F:pop()
  self:due()
  local now = self.now()
  local ring = self.ring
  while self.ring_first <= self.ring_last do
    local i = self.ring_first
    local h = ring[i]
    ring[i] = nil
    self.ring_first = i + 1
    h.state = "idle"
    if h.next_time > now then
      -- held since it joined the ring (a Retry-After): wait in the heap
      self:check(h)
    elseif h.robots and h.inflight < self.per_host then
      local u, depth, parent, attempt
      local r, again = h.retries, #h.retries > 0
      if again then
        self.retry_queued = self.retry_queued - 1
        self.queued = self.queued - 1
        local e = table.remove(r, 1)
        u, depth, parent, attempt = e[1], e[2], e[3], e[4]
      end
      -- URLs the filter refuses (robots.txt) are dropped here, before they cost a slot or
      -- the host's delay.
      while not u and not self.only_retries and h.head <= h.tail do
        local k = h.head
        u, depth, parent, attempt = h.urls[k], h.depths[k], h.parents[k], 1
        h.urls[k], h.depths[k], h.parents[k] = nil, nil, nil
        h.head = k + 1
        self.queued = self.queued - 1
        if k >= 1024 and k > h.tail - k then compact(h) end
        if not self.filter(h, u, depth, parent or nil) then u = nil end
      end
      if u then
        h.inflight = h.inflight + 1
        if h.delay > 0 then h.next_time = math.max(h.next_time, now + h.delay) end
        self:check(h)
        self:refill()
        return h, u, depth, parent or nil, attempt, again
      end
      self:check(h)
      self:refill()
    end
  end
  return nil
end

--- frontier:stats() → {queued = URLs still to fetch (in memory, spilled or waiting to be
-- retried), hosts = hosts seen, only_retries = whether the page limit stopped new URLs}:
-- what the report shows, without reaching into the frontier's fields.
function F:stats()
  return {queued = self.queued + self.spilled + self.retrying, hosts = self.nhosts,
          only_retries = self.only_retries}
end

--- Reads spilled URLs back once memory is half empty.
function F:refill()
  if self.spilled > 0 and self.queued < math.max(1, self.max_queued // 2) then unspill(self) end
end

--- A request of host h ended: its slot is free again.
function F:release(h)
  h.inflight = h.inflight - 1
  if h.state == "idle" then self:check(h) end
end

--- Puts a URL back for another attempt, ahead of the host's queue, once `at` has come.
-- `pause` also holds the whole host until then (the server asked for it: 429, 503).
function F:retry(h, u, depth, parent, attempt, at, pause)
  self.retrying = self.retrying + 1
  heap_push(self.heap, at, {h, u, depth, parent, attempt})
  if pause and at > h.next_time then h.next_time = at end
end

-- Moves delayed hosts and retries whose time has come back into play.
function F:due()
  local heap, now = self.heap, self.now()
  -- Retries share the heap with delayed hosts: entries are {time, host} or
  -- {time, {host, url, depth, parent, attempt}}.
  while heap[1] and heap[1][1] <= now do
    local item = heap_pop(heap)[2]
    if item.origin then
      item.state = "idle"
      self:check(item)
    else
      local h = item[1]
      self.retrying = self.retrying - 1
      local r = h.retries
      r[#r + 1] = {item[2], item[3], item[4], item[5]}
      self.queued = self.queued + 1
      self.retry_queued = self.retry_queued + 1
      if h.state == "idle" then self:check(h) end
    end
  end
end

--- The time the next delayed host or retry becomes due, or nil.
function F:next_time()
  local top = self.heap[1]
  return top and top[1]
end

--- From now on, only URLs already tried come out (the page limit was reached, but the
-- fetches that failed must still get their last tries and their records).
function F:only_retries_now()
  self.only_retries = true
end

--- Whether nothing is left: no URL queued, spilled or waiting for a retry (after
-- only_retries_now: no retry left).
function F:empty()
  if self.only_retries then return self.retrying == 0 and self.retry_queued == 0 end
  return self.queued == 0 and self.spilled == 0 and self.retrying == 0
end

--- Removes the spill file.
function F:close()
  if self.spill_w then
    self.spill_w:close()
    self.spill_w = nil
  end
  if self.spill_path then os.remove(self.spill_path) end
end

return M
