-- sluice.crawl.out_sqlite: a crawl's records into SQLite, a `pages` table and an `items`
-- table, written in batched transactions by a task of its own, each committed on libuv's
-- thread pool (db:batch) so the loop never waits for the disk. Part of sluice.crawl.
--
-- Exactly once across kill -9: every page row carries `seq`, the record's number in the
-- output (1, 2, ...), and its items carry the same. A record is journaled as done (with its
-- seq as the journal's offset) only after the transaction holding it has committed, so the
-- journal never confirms a row the database lacks. The other way round, a kill between a
-- commit and the journal's lines leaves rows the journal does not know: a resume deletes
-- every row whose seq is past the last one journaled, and their URLs, still queued in the
-- journal, are fetched again. (Storing the journal in the same transactions would do too,
-- but the journal is shared with the file outputs, and one cut by seq is all it takes.)
local sl = require "sluice"
local sqlite = require "sluice.sqlite"
local json = require("sluice.crawl.out").json

local now, is_cancelled = sl.now, sl.is_cancelled

local INTERVAL = 0.1     -- seconds from one transaction's start to the next, at least...
local MAX_ROWS = 1000    -- ...unless this many rows are waiting

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS pages (seq INTEGER PRIMARY KEY, url TEXT NOT NULL, status INTEGER,
  depth INTEGER, parent TEXT, bytes INTEGER, links INTEGER, time REAL, error TEXT,
  redirect TEXT, items INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS items (seq INTEGER NOT NULL, url TEXT NOT NULL, item TEXT);
CREATE INDEX IF NOT EXISTS items_seq ON items (seq);
]]
local PAGE = "INSERT INTO pages (seq, url, status, depth, parent, bytes, links, time, error, "
             .. "redirect, items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
local ITEM = "INSERT INTO items (seq, url, item) VALUES (?, ?, ?)"

local M = {}
local W = {}
W.__index = W

local function check(c, ok, err)
  if not ok then error("crawl: cannot write the output " .. c .. ": " .. tostring(err), 0) end
  return ok
end

-- Commits the rows waiting (in the writer task, or at close); on a failure the crawl stops
-- and the rows are dropped: the journal never confirmed them, so a resume fetches again.
local function commit(self)
  local batch, done = self.batch, self.done
  self.batch, self.done, self.rows = {}, {}, 0
  self.last = now()
  local ok, err = self.db:batch(batch)
  if not ok then
    self.err = "crawl: cannot write a record: " .. tostring(err) .. " (" .. self.path .. ")"
    self.c.inbox:put({kind = "output", failure = self.err})   -- (the dispatcher stops)
    return
  end
  for i, d in ipairs(done) do self.confirm(d, d.seq, i < #done) end
end

-- The writer task: a transaction at most every INTERVAL seconds, or sooner for MAX_ROWS
-- rows, while the crawl goes on. After a cancellation (Ctrl-C) it commits what it holds.
local function writer(self)
  local ok, err = pcall(function()
    while true do
      while #self.batch == 0 and not self.closing do
        self.wake:clear()
        self.wake:wait()
      end
      if #self.batch == 0 or self.err then return end
      local due = self.last + INTERVAL
      while self.rows < MAX_ROWS and not self.closing and now() < due do
        self.wake:clear()
        self.wake:wait(due - now())
      end
      commit(self)
    end
  end)
  if not ok and not is_cancelled(err) then
    self.err = self.err or tostring(err)
    self.c.inbox:put({kind = "output", failure = err})
  end
  if #self.batch > 0 and not self.err then commit(self) end
end

--- Adds a record's rows to the next transaction; it is confirmed once that has committed.
function W:write(rec)
  if self.err then error(self.err, 0) end
  local seq = self.offset + 1
  self.offset = seq
  local items = rec.items or {}
  local batch, url = self.batch, rec.url
  batch[#batch + 1] = {PAGE, seq, url, rec.status, rec.depth, rec.parent, rec.bytes,
                       rec.links, rec.time, rec.error, rec.redirect, #items}
  for _, item in ipairs(items) do batch[#batch + 1] = {ITEM, seq, url, json(item)} end
  -- (what confirm and the report need, without the items)
  self.done[#self.done + 1] = {url = url, seq = seq, status = rec.status, bytes = rec.bytes,
                               error = rec.error}
  self.rows = self.rows + 1 + #items
  if #self.done == 1 or self.rows >= MAX_ROWS then self.wake:set() end
end

--- On resume: deletes the rows past `offset`, the seq of the last record the journal
-- confirmed.
function W:cut(c, st, offset)
  local _ = st
  if self.offset < offset then
    c.report:log_line(string.format("crawl: resume: %s holds records up to %d, fewer than the "
                                    .. "%d the journal confirmed: some records are gone from it",
                                    self.path, self.offset, offset))
  elseif self.offset > offset then
    check(self.path, self.db:exec("DELETE FROM items WHERE seq > ?", offset))
    check(self.path, self.db:exec("DELETE FROM pages WHERE seq > ?", offset))
    c.report:log_line(string.format("crawl: resume: %d records the journal never confirmed "
                                    .. "were deleted from %s", self.offset - offset, self.path))
    self.offset = offset
  end
end

--- Commits what is left and closes the database (unless it was given open); ok, or nil and
-- why.
function W:close()
  if self.task then
    self.closing = true
    self.wake:set()
    pcall(self.task.join, self.task)
    self.task = nil
  end
  if #self.batch > 0 and not self.err then commit(self) end
  if self.own and self.db then self.db:close() end
  self.db = nil
  if self.err then return nil, self.err end
  return true
end

--- Opens the database (a path, or a sluice.sqlite database given as `out`), makes the
-- tables, and starts the writer task.
function M.open(c, confirm)
  local o = c.opts
  local db, own = o.out, false
  if type(db) == "string" then
    local err
    db, err = sqlite.open(o.out)
    if not db then error("crawl: cannot open the output: " .. err, 0) end
    own = true
  elseif type(db) ~= "userdata" or not tostring(db):find("^sluice%.sqlite%.db") then
    error("crawl: bad option 'out' (a path or a sluice.sqlite database expected for format "
          .. "sqlite)", 0)
  end
  local path = type(o.out) == "string" and o.out or db:filename()
  local ok, err = pcall(function()
    -- WAL: readers (sqlite3 on the side) never block the writer, and a commit is one append;
    -- synchronous NORMAL still survives a kill of the process.
    db:exec("PRAGMA journal_mode = WAL")
    check(path, db:exec("PRAGMA synchronous = NORMAL"))
    check(path, db:exec(SCHEMA))
    -- without a state directory the output starts afresh, as a JSON lines file is truncated
    if not o.state then check(path, db:exec("DELETE FROM items; DELETE FROM pages")) end
  end)
  if not ok then
    if own then db:close() end
    error(err, 0)
  end
  local max = 0
  for row in db:rows("SELECT max(seq) AS n FROM pages") do max = row.n or 0 end
  local self = setmetatable({c = c, db = db, own = own, path = path, confirm = confirm,
                             offset = max, batch = {}, done = {}, rows = 0, last = now(),
                             wake = sl.event()}, W)
  self.task = sl.spawn(writer, self)
  return self
end

return M
