-- sluice.crawl.report: the crawl's counters, the JSON line of a record, the live status
-- line on stderr (only when it is a terminal) and the summary (always).
local sl = require "sluice"
local core = require "sluice.core"
local cjson = require "cjson"

local now = sl.now
local format, concat = string.format, table.concat

local M = {}
local R = {}
R.__index = R

local ESC = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}

-- A JSON string (cjson would write "http:\/\/"); bytes >= 0x80 go through as they are.
local function jstr(s)
  s = tostring(s)
  if s:find('[%c"\\]') then
    s = s:gsub('[%c"\\]', function(c) return ESC[c] or format("\\u%04x", c:byte()) end)
  end
  return '"' .. s .. '"'
end

local function jval(v)
  if v == nil then return "null" end
  if type(v) == "string" then return jstr(v) end
  return tostring(v)
end

--- The JSON line of a record: url, status, depth, parent, bytes, links, time, error, in
-- that order, then redirect and items when present.
function M.json(r)
  local t = {'{"url":', jstr(r.url), ',"status":', jval(r.status), ',"depth":', r.depth,
             ',"parent":', jval(r.parent), ',"bytes":', r.bytes, ',"links":', r.links,
             ',"time":', format("%.4f", r.time), ',"error":', jval(r.error)}
  if r.redirect then t[#t + 1] = ',"redirect":'; t[#t + 1] = jstr(r.redirect) end
  if r.items then t[#t + 1] = ',"items":'; t[#t + 1] = cjson.encode(r.items) end
  t[#t + 1] = "}\n"
  return concat(t)
end

function M.new(crawler, o)
  local log = o.log or io.stderr
  local live = o.status
  if live == nil then live = core._isatty(log) end
  return setmetatable({c = crawler, log = log, live = live, t0 = now(),
                       pages = 0, errors = 0, bytes = 0, statuses = {}, requests = 0,
                       retries = 0, disallowed = 0, handler_errors = 0, before = 0},
                      R)
end

function R:log_line(msg)
  if self.live then self.log:write("\r\27[K") end
  self.log:write(msg, "\n")
end

--- Counts a record that was written.
function R:count(rec)
  self.pages = self.pages + 1
  self.bytes = self.bytes + rec.bytes
  if rec.error then self.errors = self.errors + 1 end
  local k = rec.status or "error"
  self.statuses[k] = (self.statuses[k] or 0) + 1
end

function R:handler_failed(u, err)
  self.handler_errors = self.handler_errors + 1
  if self.handler_errors <= 10 then
    self:log_line("crawl: handler failed on " .. u .. ": " .. tostring(err))
  end
end

--- What a resumed crawl found in its journal.
function R:resumed(ndone, pending)
  self.before = ndone
  self:log_line(format("crawl: resuming: %d records already out, %d URLs still to fetch",
                       ndone, pending))
end

local function statuses_text(statuses)
  local keys = {}
  for k in pairs(statuses) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = tostring(k) .. ": " .. statuses[k] end
  return concat(parts, ", ")
end

-- The frontier's figures (none before it exists).
local NO_FRONTIER = {queued = 0, hosts = 0, only_retries = false}
local function frontier_stats(c)
  return c.frontier and c.frontier:stats() or NO_FRONTIER
end

--- The live line: done, in flight, queued, the rate since the last line, errors, counts
-- per status.
function R:status_line()
  local c, t = self.c, now()
  local dt = t - (self.last_t or self.t0)
  local rate = dt > 0 and (self.pages - (self.last_pages or 0)) / dt or 0
  self.last_t, self.last_pages = t, self.pages
  return format("crawl: %d done, %d in flight, %d queued, %.1f/s, %d errors | %s",
                self.pages, c.running or 0, frontier_stats(c).queued, rate, self.errors,
                statuses_text(self.statuses))
end

--- Starts the live status line (every half second) when stderr is a terminal.
function R:start()
  self.t0 = now()
  if not self.live then return end
  self.ticker = sl.spawn(function()
    while true do
      sl.sleep(0.5)
      self.log:write("\r\27[K", self:status_line())
      self.log:flush()
    end
  end)
end

--- Stops the live line, writes the summary on stderr and returns it as a table.
function R:finish(err)
  if self.ticker then
    self.ticker:cancel()
    self.log:write("\r\27[K")
  end
  local c, t = self.c, now() - self.t0
  local fs = frontier_stats(c)
  local summary = {pages = self.pages, errors = self.errors, statuses = self.statuses,
                   requests = self.requests, retries = self.retries,
                   disallowed = self.disallowed, hosts = fs.hosts,
                   elapsed = t, rate = t > 0 and self.pages / t or 0, queued = fs.queued,
                   bytes = self.bytes, resumed = self.before, seen = c.seen and #c.seen or 0,
                   seen_bytes = c.seen and c.seen:bytes() or 0,
                   handler_errors = self.handler_errors}
  local how = err and (sl.is_cancelled(err) and "interrupted" or "failed") or "done"
  local parts = {format("crawl: %s: %d pages in %.2f s (%.1f/s), %.1f MB", how,
                        self.pages, t, summary.rate, self.bytes / 1e6)}
  if next(self.statuses) then parts[#parts + 1] = "status " .. statuses_text(self.statuses) end
  parts[#parts + 1] = format("%d errors", self.errors)
  parts[#parts + 1] = format("%d requests, %d retries", self.requests, self.retries)
  parts[#parts + 1] = format("%d disallowed by robots.txt", self.disallowed)
  parts[#parts + 1] = format("%d hosts, %d URLs seen (seen set %.2f MB)", summary.hosts,
                             summary.seen, summary.seen_bytes / 1e6)
  if self.before > 0 then parts[#parts + 1] = format("%d records from before", self.before) end
  if summary.queued > 0 then
    local why = ""
    if fs.only_retries then why = " (the page limit was reached)"
    elseif c.opts.state then why = " (run the same command to resume)" end
    parts[#parts + 1] = format("%d still queued%s", summary.queued, why)
  end
  self.log:write(concat(parts, "; "), "\n")
  if err and not sl.is_cancelled(err) then
    self.log:write("crawl: stopped by: ", tostring(err), "\n")
  end
  self.log:flush()
  return summary
end

return M
