-- sluice.crawl.fetch: one request of the crawl and what follows it. A fetch task gets a
-- page, extracts its links and runs the handler; or gets a host's robots.txt. It changes
-- nothing of the crawler's: it returns an outcome (the record and links, or the retry to
-- make; the robots.txt rules; what to count) that the dispatcher in sluice.crawl applies.
-- Part of sluice.crawl (see README).
local sl = require "sluice"
local url = require "sluice.url"
local html = require "sluice.html"
local page_doc = require "sluice.page_doc"
local robots = require "sluice.crawl.robots"

local normalize = url.normalize
local now, is_cancelled = sl.now, sl.is_cancelled

local M = {}

-- Network failures worth another try; the rest (a bad URL, https, a body too large) fail
-- at once.
local RETRY_CODES = {
  ECONNREFUSED = true, ECONNRESET = true, ETIMEDOUT = true, EPROTO = true, EPIPE = true,
  ECONNABORTED = true, ENETUNREACH = true, EHOSTUNREACH = true, EAI_AGAIN = true, EOF = true,
}

-- Failures that say the process (or the machine) is out of sockets, not that the host
-- failed: file descriptors (EMFILE, ENFILE) or ephemeral ports (EADDRNOTAVAIL). The
-- request waits until a connection of the crawl closes and is tried again, without using
-- up one of its attempts, and the crawl runs fewer requests at once (see `starved`).
local STARVED_CODES = {EMFILE = true, ENFILE = true, EADDRNOTAVAIL = true}
local STARVED_WAIT = 0.05   -- seconds before the request is tried again, at least

local MONTHS = {jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8,
                sep = 9, oct = 10, nov = 11, dec = 12}

-- Seconds since the epoch of a UTC date (the proleptic Gregorian calendar; no time zone
-- or daylight saving gets involved, unlike os.time).
local function utc_epoch(y, m, d, hh, mm, ss)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return ((era * 146097 + doe - 719468) * 24 + hh) * 3600 + mm * 60 + ss
end

--- Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date in any of the
-- three forms of RFC 9110 (0 if it has passed); nil if neither.
function M.retry_after(value)
  if type(value) ~= "string" then return nil end
  local secs = value:match("^%s*(%d+)%s*$")
  if secs then return tonumber(secs) end
  local d, mon, y, hh, mm, ss
  -- IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT"
  d, mon, y, hh, mm, ss = value:match("^%s*%a+,%s*(%d+)[ %-](%a%a%a)[ %-](%d+)%s+(%d+):(%d+):(%d+)")
  if not d then   -- asctime "Sun Nov  6 08:49:37 1994"
    mon, d, hh, mm, ss, y = value:match("^%s*%a+%s+(%a%a%a)%s+(%d+)%s+(%d+):(%d+):(%d+)%s+(%d+)")
  end
  local m = mon and MONTHS[mon:lower()]
  if not m then return nil end
  y = tonumber(y)
  if y < 100 then y = y + (y < 70 and 2000 or 1900) end   -- RFC 850's two-digit year
  local t = utc_epoch(y, m, tonumber(d), tonumber(hh), tonumber(mm), tonumber(ss))
  return math.max(0, t - os.time())
end

-- How long to wait before attempt n + 1: exponential, with ±50% jitter, capped; at least
-- what Retry-After asked for (up to max_retry_after). o: the crawl's options.
local function backoff(o, attempt, res)
  local wait = math.min(o.max_backoff, o.backoff * 2 ^ (attempt - 1)) * (0.5 + math.random())
  local ra = res and M.retry_after(res.headers["retry-after"])
  if ra then wait = math.max(wait, math.min(ra, o.max_retry_after)) end
  return wait, ra ~= nil
end

-- The client ran out of sockets (err, the fail message): what the dispatcher needs to
-- lower its limit (the connections open and busy), and whether waiting can help, that is
-- whether the crawl holds connections that will close.
local function starved(client, err)
  local st = client:stats()
  return {err = err, open = st.open, busy = st.open - st.idle}, st.open > 0
end

local function is_html(res)
  local ct = res.headers["content-type"]
  if not ct then return false end
  ct = ct:lower()
  return ct:find("text/html", 1, true) ~= nil or ct:find("xhtml", 1, true) ~= nil
end

-- The page a handler sees; page:follow and page:emit act on it. Its document (html.parse's
-- tree, for page:css and page:xpath) is built on first use only, so a handler that never
-- asks costs nothing more than the streaming link pass, and is closed when the handler
-- returns, so a crawl never holds more trees than it runs handlers.
local Page = {}
Page.__index = Page

--- page:css(selector) → selection of the page's document (parsed on first use).
Page.css = page_doc.css

--- page:xpath(expr) → selection of the page's document (parsed on first use).
Page.xpath = page_doc.xpath

-- The selection metatable, to tell a selection from other userdata.
local SELECTION = debug.getregistry()["sluice.html.selection"]

-- Queues one link (a string) resolved against base; the normalized URL, or nil.
local function follow_one(self, u, base)
  local abs = normalize(tostring(u), base)
  if abs then self.links[#self.links + 1] = abs end
  return abs
end

--- page:follow(url) → normalized URL or nil; page:follow(selection or list) → count.
-- Queues links at the next depth, resolved against the page's base (its <base href>, or
-- its URL). A selection gives its results: an element's href (a, area, link), an
-- attribute's or a text's value.
function Page:follow(x)
  local doc = rawget(self, "_doc")
  local base = doc and doc.base or self._base or self.url
  if getmetatable(x) == SELECTION then
    local n = 0
    for i = 1, #x do
      local r = x[i]
      local v
      if r.tag then v = r:attr("href") else v = r:get() end
      if type(v) == "string" and follow_one(self, v, base) then n = n + 1 end
    end
    return n
  elseif type(x) == "table" then
    local n = 0
    for i = 1, #x do
      if follow_one(self, x[i], base) then n = n + 1 end
    end
    return n
  end
  return follow_one(self, x, base)
end

--- page:emit(value): adds value to this URL's record, under "items".
function Page:emit(value)
  local items = self.items
  if not items then items = {}; self.items = items end
  items[#items + 1] = value
end

-- What a handler returned, emitted after what it emitted itself. A table whose [1] is a
-- table is a list of items (each of t[1] .. t[#t] emitted), an empty table is no item, and
-- any other table is one item; values that are not tables are ignored (so a handler ending
-- in `return page:follow(u)` emits nothing).
local function emit_returned(page, t)
  if type(t[1]) == "table" then
    for i = 1, #t do page:emit(t[i]) end
  elseif next(t) ~= nil then
    page:emit(t)
  end
end

-- Handles a response (any status that is not retried): links and handler. Returns the
-- record, the links to follow (normalized) and the handler's error, if any.
local function process(ctx, u, depth, parent, res, elapsed)
  local st, body = res.status, res.body or ""
  local links, info = nil, nil
  local rec = {url = u, status = st, depth = depth, parent = parent, bytes = #body,
               time = elapsed, error = res.error}
  if st >= 300 and st < 400 then
    local loc = res.headers.location
    local target = loc and normalize(loc, u)
    if target then
      rec.redirect = target
      links = {target}
    end
  elseif st >= 200 and st < 300 and is_html(res) then
    links, info = html.links(body, u)
    if info.robots and info.robots:find("nofollow", 1, true) then links = {} end
  end
  links = links or {}
  rec.links = #links
  local handler, handler_error = ctx.opts.handler, nil
  if handler then
    local extracted = table.move(links, 1, #links, 1, {})
    local page = setmetatable({url = u, depth = depth, parent = parent, status = st,
                               headers = res.headers, body = body, links = links,
                               title = info and info.title, response = res,
                               _base = info and info.base}, Page)
    local ok, err = pcall(handler, page)
    page_doc.close(page)
    if not ok then
      if is_cancelled(err) then error(err, 0) end
      rec.error = "handler: " .. tostring(err)
      handler_error = err
    elseif type(err) == "table" then
      emit_returned(page, err)
    end
    rec.items = page.items
    if type(page.links) ~= "table" then
      rec.error = rec.error or "handler: page.links is not a list (" .. type(page.links) .. ")"
      links = {}
    else
      -- The handler may have put anything there: normalize all again but the links it
      -- left as they were extracted (normalized already).
      links = {}
      for i, l in ipairs(page.links) do
        local abs = l == extracted[i] and l or type(l) == "string" and normalize(l, u)
        if abs then links[#links + 1] = abs end
      end
    end
  end
  return rec, links, handler_error
end

--- One fetch of a page, job = {h, u, depth, parent, attempt, ...}; ctx = {client, opts,
-- token} (read only). The outcome, written into job and returned: `requests` made (1),
-- `grow` (a response came), `starved` (the client was out of sockets: see starved), and
-- either `retry` = {attempt, at, pause} (the frontier's retry) or `record`, `links` and
-- `handler_error`.
function M.page(ctx, job)
  local o, u, attempt = ctx.opts, job.u, job.attempt
  local t0 = now()
  local res, err, code = ctx.client:get(u)
  local elapsed = res and res.timings and res.timings.total or now() - t0
  -- the outcome goes in the job itself, which the dispatcher made with every field it may
  -- get (one table a page, never rehashed)
  local out = job
  out.requests = 1
  local retry = attempt <= o.retries
  if res then
    out.grow = true
    local st = res.status
    if retry and (st >= 500 or st == 429) then
      local wait, asked = backoff(o, attempt, res)
      out.retry = {attempt = attempt + 1, at = now() + wait,
                   pause = asked and (st == 429 or st == 503)}
      return out
    end
    if st >= 500 or st == 429 then
      res.error = attempt > 1 and string.format("HTTP %d after %d attempts", st, attempt)
                  or "HTTP " .. st
    end
    out.record, out.links, out.handler_error = process(ctx, u, job.depth, job.parent, res,
                                                       elapsed)
    return out
  end
  if STARVED_CODES[code] then
    local can_wait
    out.starved, can_wait = starved(ctx.client, err)
    if can_wait then
      out.retry = {attempt = attempt, at = now() + STARVED_WAIT, pause = false}
      return out
    end
  end
  if retry and (RETRY_CODES[code] or STARVED_CODES[code]) then
    out.retry = {attempt = attempt + 1, at = now() + (backoff(o, attempt)), pause = false}
    return out
  end
  out.record = {url = u, depth = job.depth, parent = job.parent, bytes = 0, links = 0,
                time = elapsed, error = attempt > 1 and err .. " (after " .. attempt
                .. " attempts)" or err}
  out.links = {}
  return out
end

--- One attempt at the robots.txt of host h (job = {h, attempt}), with the same retries
-- as pages. The outcome: `requests`, `grow`, `starved` as for a page, and either `retry`
-- = {attempt, at} or the host's policy: `robots` (what robots.parse returned), `delay`
-- (its Crawl-delay, obeyed up to a minute: a larger one would stall the host for good)
-- and `robots_error`. A 4xx means no rules; a 5xx or network failure after the retries
-- means the host's URLs are recorded as failures without being fetched (RFC 9309: assume
-- disallow).
function M.robots(ctx, job)
  local o, h, attempt = ctx.opts, job.h, job.attempt
  -- The body is kept up to robots.MAX_BODY: what comes after is read (within max_body)
  -- and dropped.
  local pieces, kept = {}, 0
  local function sink(piece)
    if kept < robots.MAX_BODY then
      piece = piece:sub(1, robots.MAX_BODY - kept)
      pieces[#pieces + 1] = piece
      kept = kept + #piece
    end
  end
  local res, err, code = ctx.client:get(h.origin .. "/robots.txt",
                                        {max_redirects = 5, sink = sink,
                                         max_body = o.max_body})
  local out = {requests = 1}
  if res then
    out.grow = true
    res.body = table.concat(pieces)
  end
  if STARVED_CODES[code] then
    local can_wait
    out.starved, can_wait = starved(ctx.client, err)
    if can_wait then
      -- (not an attempt: the request waits for a connection to close)
      out.retry = {attempt = attempt, at = now() + STARVED_WAIT}
      return out
    end
  end
  local bad = (res and res.status >= 500) or
              (not res and (RETRY_CODES[code] or STARVED_CODES[code]))
  if bad and attempt <= o.retries then
    out.retry = {attempt = attempt + 1, at = now() + (backoff(o, attempt, res))}
    return out
  end
  if res and res.status >= 200 and res.status < 300 then
    out.robots = robots.parse(res.body, ctx.token)
    if out.robots.delay then out.delay = math.min(out.robots.delay, 60) end
  elseif res and res.status < 500 then
    out.robots = robots.allow_all
  else
    out.robots = robots.allow_all
    out.robots_error = "robots.txt unreachable: " .. (res and ("HTTP " .. res.status) or err)
  end
  return out
end

--- The body of a fetch task: runs fn (M.page or M.robots) on job and puts its outcome in
-- the dispatcher's inbox (an sl.queue), with `kind`, `job` and `task` (this task) set;
-- an error (a bug, a full disk) comes as the outcome's `failure`. A cancellation goes on
-- up: the crawl is ending.
function M.worker(inbox, kind, fn, ctx, job)
  local ok, out = pcall(fn, ctx, job)
  if not ok then
    if is_cancelled(out) then error(out, 0) end
    out = {failure = out}
  end
  out.kind, out.job, out.task = kind, job, sl.current()
  inbox:put(out)
end

return M
