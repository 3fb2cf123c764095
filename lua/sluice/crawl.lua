-- sluice.crawl: a bounded, polite, resumable crawler on sluice's tasks and HTTP client.
-- One dispatcher (the task that calls run) takes URLs from the frontier host by host and
-- starts a task per fetch, at most `limit` at a time; each fetch parses its page and
-- returns its outcome, which the dispatcher alone applies: new links into the frontier,
-- one JSON line, the counters. See README "sluice.crawl".
local sl = require "sluice"
local core = require "sluice.core"
local http = require "sluice.http"
local url = require "sluice.url"
local robots = require "sluice.crawl.robots"
local fetch = require "sluice.crawl.fetch"
local frontier = require "sluice.crawl.frontier"
local journal = require "sluice.crawl.state"
local report = require "sluice.crawl.report"
local output = require "sluice.crawl.out"

local normalize, origin_of, parse_url = url.normalize, url.origin, url.parse
local now, spawn = sl.now, sl.spawn

local M = {}
local C = {}
C.__index = C

-- name → {type, default, check}: every option of crawl.new, checked up front.
local OPTIONS = {
  seeds = {"table"}, handler = {"function"},
  limit = {"integer", 16, 1}, per_host = {"integer", 2, 1}, delay = {"number", 0, 0},
  depth = {"integer", nil, 0}, max_pages = {"integer", nil, 0},
  same_host = {"boolean", false}, allowed_domains = {"table"}, allow = {"table"},
  deny = {"table"}, user_agent = {"string", "sluice-crawl/0.1"},
  robots = {"boolean", true}, retries = {"integer", 3, 0}, backoff = {"number", 0.5, 0},
  max_backoff = {"number", 60, 0}, max_retry_after = {"number", 300, 0},
  timeout = {"number", 30, 0, false_ok = true}, max_body = {"integer", 16 * 1024 * 1024, 1},
  max_queued = {"integer", 10000, 1}, seen = {"string", "exact"},
  capacity = {"integer", nil, 1}, fp_rate = {"number", 1e-6, 0},
  headers = {"table"}, tls_verify = {"boolean", true}, ca_file = {"string"}, out = {"any"}, format = {"string"},
  state = {"string"}, status = {"boolean"}, log = {"userdata"}, proxy = {"any"},
  cookies = {"any"},
}

local function check_options(opts, lvl)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'crawl.new' (table of options expected, got " .. type(opts) .. ")", lvl)
  end
  local o = {}
  for k, v in pairs(opts) do
    local spec = OPTIONS[k]
    if not spec then error("crawl: unknown option '" .. tostring(k) .. "'", lvl) end
    local want, got = spec[1], math.type(v) or type(v)
    local fits = want == "any" or got == want or (want == "number" and type(v) == "number")
    if spec.false_ok and v == false then fits, spec = true, {}   -- timeout = false: none
    elseif type(v) == "number" and (v ~= v or v == math.huge) then fits = false end
    if not fits or (spec[3] and v < spec[3]) then
      error(string.format("crawl: bad option '%s' (%s%s expected, got %s)", k, want,
            spec[3] and " >= " .. spec[3] or "", tostring(v)), lvl)
    end
    o[k] = v
  end
  for k, spec in pairs(OPTIONS) do
    if o[k] == nil then o[k] = spec[2] end
  end
  if o.seen ~= "exact" and o.seen ~= "bloom" then
    error("crawl: bad option 'seen' (\"exact\" or \"bloom\" expected, got " .. o.seen .. ")", lvl)
  end
  if o.format and o.format ~= "jsonl" and o.format ~= "csv" and o.format ~= "sqlite" then
    error("crawl: bad option 'format' (\"jsonl\", \"csv\" or \"sqlite\" expected, got "
          .. o.format .. ")", lvl)
  end
  if o.fp_rate <= 0 or o.fp_rate >= 1 then
    error("crawl: bad option 'fp_rate' (a number between 0 and 1 expected)", lvl)
  end
  for _, name in ipairs{"allow", "deny", "allowed_domains"} do
    for i, p in ipairs(o[name] or {}) do
      if type(p) ~= "string" or (name ~= "allowed_domains" and not pcall(string.find, "", p)) then
        error(string.format("crawl: bad option '%s' (entry %d is not a valid %s: %s)", name, i,
              name == "allowed_domains" and "domain" or "Lua pattern", tostring(p)), lvl)
      end
    end
  end
  local ck = o.cookies
  if ck ~= nil and ck ~= false and ck ~= true and type(ck) ~= "string" and
     not (type(ck) == "userdata" and (getmetatable(ck) or {}).__name == "sluice.http.cookiejar") then
    error("crawl: bad option 'cookies' (true, a file name or a jar expected, got " ..
          type(ck) .. ")", lvl)
  end
  o.seeds = o.seeds or {}
  if #o.seeds == 0 and not o.state then error("crawl: no seeds (option 'seeds')", lvl) end
  return o
end

-- (lvl: the stack level of the caller to blame in error messages)
local function new(opts, lvl)
  local o = check_options(opts, lvl + 1)
  local self = setmetatable({opts = o, token = robots.token(o.user_agent)}, C)
  self.seeds = {}
  self.seed_origins = {}
  -- cookies: a jar of its own (true), one loaded from and saved to a file, or the caller's
  if o.cookies == true then self.jar = http.cookiejar()
  elseif type(o.cookies) == "string" then
    local ok, jar = pcall(http.cookiejar, {file = o.cookies})
    if not ok then error("crawl: bad option 'cookies' (" .. tostring(jar) .. ")", lvl) end
    self.jar = jar
  elseif o.cookies then self.jar = o.cookies end
  -- allowed_domains as {domain, "." .. domain} in lower case, made once, not per link
  self.domains = {}
  for i, d in ipairs(o.allowed_domains or {}) do self.domains[i] = {d:lower(), "." .. d:lower()} end
  -- no option narrows the scope: every link is in it (checked once, not per link)
  self.unscoped = not (o.depth or o.same_host or o.allowed_domains or o.allow or o.deny)
  for i, s in ipairs(o.seeds) do
    local u, err = normalize(tostring(s))
    if not u then error("crawl: bad seed '" .. tostring(s) .. "': " .. err, lvl) end
    self.seeds[i] = u
    self.seed_origins[origin_of(u)] = true
  end
  return self
end

--- crawl.new(opts) → crawler (see README for the options).
function M.new(opts)
  local crawler = new(opts, 3)   -- (not a tail call: errors blame the caller's line)
  return crawler
end

-- Whether a URL may be crawled (apart from robots.txt): scope options and depth.
local function in_scope(self, u, depth)
  local o = self.opts
  if o.depth and depth > o.depth then return false end
  if o.same_host and not self.seed_origins[origin_of(u)] then return false end
  if o.allowed_domains then
    local parts = parse_url(u)
    local host = parts and parts.host or ""
    local ok = false
    for _, d in ipairs(self.domains) do
      if host == d[1] or host:sub(-#d[2]) == d[2] then ok = true break end
    end
    if not ok then return false end
  end
  if o.allow then
    local ok = false
    for _, p in ipairs(o.allow) do
      if u:find(p) then ok = true break end
    end
    if not ok then return false end
  end
  if o.deny then
    for _, p in ipairs(o.deny) do
      if u:find(p) then return false end
    end
  end
  return true
end

--- Lets a URL into the frontier unless it was seen or is out of scope; true if it was new.
local function add(self, u, depth, parent)
  if not (self.unscoped or in_scope(self, u, depth)) or not self.seen:add(u) then
    return false
  end
  if self.journal then self.journal:queued(u, depth, parent) end
  self.frontier:push(u, depth, parent)
  return true
end

--- Writes the record of a URL (exactly once per URL); the output confirms it (at once for
-- a file, after its transaction for SQLite), and only then is it journaled as done.
local function record(self, rec)
  local ok_json, line = pcall(report.json, rec)
  if not ok_json then
    -- what the handler emitted cannot be written as JSON: keep the record, say why
    rec.items = nil
    rec.error = "handler: cannot write the emitted items: " .. tostring(line)
    line = report.json(rec)
  end
  self.out:write(rec, line)
end

-- Opens the output (see sluice.crawl.out): a path (appended to with a state directory,
-- truncated without), a file handle, a function(line, record), or a SQLite database.
local function open_out(self)
  self.out = output.open(self, function(rec, offset, more)
    if self.journal then self.journal:done(rec.url, offset, rec.status, more) end
    self.report:count(rec)
  end)
  self.out_path = self.out.path
end

-- With a state directory: replays the journal into the seen set and the frontier, and cuts
-- the records the journal did not confirm from the output.
local function resume(self)
  local st = journal.open(self.opts.state)
  self.journal = st
  local out_path = self.out_path or "-"
  if st.out and st.out ~= out_path then
    st:close()
    error("crawl: the crawl in " .. self.opts.state .. " wrote its records to " .. st.out
          .. "; resume it with the same output (or start afresh with another state directory)", 0)
  end
  if not st.out then st:set_out(out_path, self.out.offset) end
  if st.fresh then return end
  local scratch = url.seen_set()
  local ndone, offset = st:replay(self.seen, scratch, function(u, d, p)
    self.frontier:push(u, d, p)
  end)
  self.report:resumed(ndone, self.frontier:stats().queued)
  -- (before the first confirmed record: the size the output had when the crawl began)
  if self.out_path then self.out:cut(self, st, offset or st.out_start or 0) end
  self.done_before = ndone
end

-- The client ran out of sockets (s: fetch's figures): the limit of requests at once goes a
-- little under the connections it had in use, and the log says so the first time.
local function starved(self, s)
  local limit = math.max(1, math.min(self.limit, s.busy - math.max(1, s.busy // 8)))
  if limit < self.limit then
    self.limit, self.grown = limit, 0
  end
  if not self.starved_said then
    self.starved_said = true
    self.report:log_line(string.format("crawl: out of sockets (%s) with %d connections open: "
      .. "at most %d requests at once from now on, growing back slowly; the requests that "
      .. "failed so wait and are tried again (raise `ulimit -n` to crawl faster)", s.err,
      s.open, self.limit))
  end
end

-- A request got a response: after as many as the limit, once out of sockets, the limit
-- goes up by one (towards `limit`), so the crawl finds again how much the process can do.
local function grow(self)
  if self.limit >= self.opts.limit then return end
  self.grown = self.grown + 1
  if self.grown >= self.limit then
    self.limit, self.grown = self.limit + 1, 0
  end
end

-- A new host (the frontier's on_host): its URLs wait until its robots.txt is in, fetched
-- by the dispatcher like a page (robots_due).
local function on_host(self, h)
  if not self.opts.robots then
    h.robots = robots.allow_all
    return
  end
  h.robots = false
  self.loading = self.loading + 1
  local q = self.robots_new
  q[#q + 1] = {h = h, attempt = 1}
end

-- The next robots.txt attempt due now (first tries in order, then retries whose time has
-- come), or nil and the time the first retry is due.
local function robots_due(self)
  local q = self.robots_new
  if self.robots_head <= #q then
    local job = q[self.robots_head]
    q[self.robots_head] = nil
    self.robots_head = self.robots_head + 1
    if self.robots_head > #q then self.robots_new, self.robots_head = {}, 1 end
    return job
  end
  local later = self.robots_later
  if #later == 0 then return nil end
  local t, first = now(), nil
  for i = 1, #later do
    local job = later[i]
    if job.at <= t then
      table.remove(later, i)
      return job
    end
    if not first or job.at < first then first = job.at end
  end
  return nil, first
end

-- A host's robots.txt is settled: its URLs may go.
local function robots_done(self, h, out)
  h.robots, h.robots_error = out.robots, out.robots_error
  if out.delay then h.delay = math.max(h.delay, out.delay) end
  self.loading = self.loading - 1
  self.frontier:check(h)
end

-- Applies the outcome of a fetch task (see sluice.crawl.fetch), or an output's failure.
local function apply(self, out)
  local kind, job, report = out.kind, out.job, self.report
  if kind == "output" then
    self.failure = self.failure or out.failure
    return
  end
  self.tasks[out.task] = nil
  self.running = self.running - 1
  if out.failure then
    if kind == "robots" then
      robots_done(self, job.h, {robots = robots.allow_all,
                                robots_error = "robots.txt: " .. tostring(out.failure)})
    else
      -- A bug or a full disk: stop the crawl rather than lose records.
      self.failure = self.failure or out.failure
      self.frontier:release(job.h)
    end
    return
  end
  report.requests = report.requests + out.requests
  if out.grow then grow(self) end
  if out.starved then starved(self, out.starved) end
  if out.retry then report.retries = report.retries + 1 end
  if kind == "robots" then
    if out.retry then
      job.attempt, job.at = out.retry.attempt, out.retry.at
      self.robots_later[#self.robots_later + 1] = job
    else
      robots_done(self, job.h, out)
    end
    return
  end
  local r = out.retry
  if r then
    self.frontier:retry(job.h, job.u, job.depth, job.parent, r.attempt, r.at, r.pause)
  else
    if out.handler_error then report:handler_failed(job.u, out.handler_error) end
    local links, depth = out.links, job.depth + 1
    for i = 1, #links do add(self, links[i], depth, job.u) end
    record(self, out.record)
  end
  self.frontier:release(job.h)
end

-- Starts a fetch task: fetch.page or fetch.robots on job, in one of the `limit` slots.
local function start_job(self, kind, fn, job)
  self.running = self.running + 1
  local t = spawn(fetch.worker, self.inbox, kind, fn, self.ctx, job)
  self.tasks[t] = true
end

-- Takes URLs from the frontier and starts fetches until there is nothing left (or the page
-- limit is reached and the last retries are over). Fetches report back through the inbox,
-- which the dispatcher also waits on: a slot freed and new links come with an outcome,
-- and a host's delay or a retry comes due with the timeout of that wait.
local function dispatch(self)
  local F, inbox = self.frontier, self.inbox
  while not self.failure do
    if self.budget <= 0 and not F.only_retries then F:only_retries_now() end
    local started, t = false, nil
    if self.running < self.limit then
      local job, at = robots_due(self)
      if job then
        start_job(self, "robots", fetch.robots, job)
        started = true
      else
        local h, u, depth, parent, attempt, again = F:pop()
        if h then
          if not again then self.budget = self.budget - 1 end
          -- (with every field of fetch.page's outcome, which it writes here)
          start_job(self, "page", fetch.page,
                    {h = h, u = u, depth = depth, parent = parent, attempt = attempt,
                     requests = 0, grow = false, retry = false, record = false,
                     links = false, handler_error = false, starved = false,
                     kind = false, job = false, task = false})
          started = true
        elseif F:empty() and self.running == 0 and (self.loading == 0 or F.only_retries) then
          break
        else
          t = F:next_time()
          if at and (not t or at < t) then t = at end
        end
      end
    end
    -- Outcomes are applied as they come; without a start, wait for one (or for t).
    local out = inbox:try_get()
    if out == nil and not started then
      out = inbox:get(t and math.max(0, t - now()) or nil)
    end
    while out ~= nil do
      apply(self, out)
      out = inbox:try_get()
    end
  end
end

-- The frontier's filter, as each URL comes out: robots.txt's rules, and the hosts whose
-- robots.txt could not be had (their URLs get a failure record, without a request).
local function admit(self, h, u, depth, parent)
  if h.robots_error then
    self.budget = self.budget - 1
    record(self, {url = u, depth = depth, parent = parent, bytes = 0, links = 0, time = 0,
                  error = h.robots_error})
    if self.budget <= 0 then self.frontier:only_retries_now() end
    return false
  end
  local parts = parse_url(u)
  local target = parts and (parts.query and parts.path .. "?" .. parts.query or parts.path) or ""
  local ok, why = robots.allowed(h.robots, target)
  if not ok then
    if why and not h.robots_said then
      -- a path too long, or rules too costly, to be matched: said once per host
      h.robots_said = true
      self.report:log_line("crawl: " .. u:sub(1, 200) .. ": " .. why .. " for the robots.txt "
                           .. "of " .. h.origin .. "; its URLs like it count as disallowed")
    end
    self.report.disallowed = self.report.disallowed + 1
    if self.journal then self.journal:skipped(u) end
    return false
  end
  return true
end

-- Opens the output and the state, queues the seeds and crawls.
local function start(self)
  open_out(self)
  if self.opts.state then resume(self) end
  if self.opts.max_pages then self.budget = self.opts.max_pages - self.done_before end
  for _, s in ipairs(self.seeds) do add(self, s, 0, nil) end
  self.report:start()
  return dispatch(self)
end

--- crawler:run() → summary table. Waits until the crawl is over. See README.
function C:run()
  local o = self.opts
  self.report = report.new(self, o)
  self.seen = url.seen_set{kind = o.seen, capacity = o.capacity, fp_rate = o.fp_rate}
  self.inbox = sl.queue()       -- fetch tasks' outcomes, for the dispatcher
  self.robots_new, self.robots_head, self.robots_later = {}, 1, {}
  self.running, self.loading, self.tasks, self.done_before = 0, 0, {}, 0
  -- requests at once: `limit`, unless the process ran out of sockets (see sluice.crawl.fetch)
  self.limit, self.grown = o.limit, 0
  self.budget = math.huge
  self.frontier = frontier.new{per_host = o.per_host, delay = o.delay, now = now,
                               max_queued = o.max_queued,
                               spill_path = o.state and (o.state .. "/spill"),
                               on_host = function(h) on_host(self, h) end,
                               filter = function(h, u, d, p) return admit(self, h, u, d, p) end}
  local headers = {}
  for k, v in pairs(o.headers or {}) do headers[k] = v end
  headers["User-Agent"] = o.user_agent
  self.client = http.client{max_per_host = o.per_host, max_redirects = 0,
                            timeout = o.timeout, max_body = o.max_body,
                            tls_verify = o.tls_verify, ca_file = o.ca_file,
                            headers = headers, proxy = o.proxy, cookies = self.jar}
  self.ctx = {client = self.client, opts = o, token = self.token}   -- what fetches read
  local ok, err = pcall(start, self)
  if ok and self.failure then ok, err = false, self.failure end
  -- On an error or a cancellation (Ctrl-C), stop the fetches in flight; their URLs stay
  -- queued in the journal, so a resumed crawl fetches them again. (After the page limit,
  -- robots.txt fetches no longer needed may be left too.) A task cancelled before it
  -- started never runs its body: wait for the tasks themselves, not for a count to drop.
  local list = {}
  for t in pairs(self.tasks) do list[#list + 1] = t end
  for _, t in ipairs(list) do t:cancel() end
  for _, t in ipairs(list) do pcall(t.wait, t) end
  if self.out then
    local closed, cerr = self.out:close()
    if not closed and ok then ok, err = false, cerr end
  end
  if self.journal then self.journal:close() end
  if type(o.cookies) == "string" then       -- written whole, then renamed over the file
    local saved, serr = self.jar:save()
    if not saved and ok then ok, err = false, "crawl: cookies: " .. serr end
  end
  self.frontier:close()
  self.client:close()
  local summary = self.report:finish(not ok and err or nil)
  if not ok then error(err, 0) end
  return summary
end

--- crawl.retry_after(value) → seconds or nil (see sluice.crawl.fetch).
M.retry_after = fetch.retry_after

--- crawl.run(opts) → summary: crawl.new(opts):run().
function M.run(opts)
  return new(opts, 3):run()
end

return M
