-- sluice.crawl.state: the journal behind `--state DIR`. Every URL let into the frontier is
-- written as `+ depth url parent`, every URL whose record is out as `= url offset status`
-- (offset: the size of the output file once the record is in it; for SQLite, the record's
-- number, its `seq`). After a kill, replaying
-- the journal gives back the seen set, what is done, and what is still to fetch, in the
-- order it was found; records the journal never confirmed are cut from the output.
local core = require "sluice.core"

local M = {}
local S = {}
S.__index = S

local HEADER = "# sluice crawl journal 1\n"

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read_pid(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

-- Whether pid is a live sluice process (a pid reused by something else does not count).
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
  if not f then return false end
  local cmd = f:read("a") or ""
  f:close()
  return cmd:find("sluice", 1, true) ~= nil
end

-- Takes the lock DIR/lock (a directory: mkdir either makes it or fails, atomically) and
-- writes this process's id in it. The lock of a process that is gone (kill -9) is taken
-- over; that of a live one is an error.
local function lock(dir)
  local path = dir .. "/lock"
  local me = read_pid("/proc/self/stat") or 0
  for _ = 1, 2 do
    if os.execute("mkdir " .. quote(path) .. " 2>/dev/null") then
      local f = io.open(path .. "/pid", "w")
      if not f then error("crawl: cannot write " .. path .. "/pid", 0) end
      f:write(me, "\n")
      f:close()
      return path
    end
    local holder = read_pid(path .. "/pid")
    if holder and holder ~= me and alive(holder) then
      error("crawl: the state directory " .. dir .. " is in use by process " .. holder, 0)
    end
    os.remove(path .. "/pid")
    os.remove(path)
  end
  error("crawl: cannot take the lock " .. path, 0)
end

--- Opens (creating) the state directory `dir`; returns the state object or raises.
function M.open(dir)
  if not os.rename(dir, dir) then
    local ok = os.execute("mkdir -p " .. quote(dir))
    if not ok then error("crawl: cannot create the state directory " .. dir, 0) end
  end
  local lockpath = lock(dir)
  local path = dir .. "/journal"
  local f = io.open(path, "r+b") or io.open(path, "w+b")
  if not f then error("crawl: cannot open " .. path .. " for writing", 0) end
  local self = setmetatable({dir = dir, path = path, f = f, lock = lockpath}, S)
  -- A kill in the middle of a write leaves half a line: cut back to the last whole one.
  local size = f:seek("end")
  if size == 0 then
    f:write(HEADER)
    f:flush()
    self.fresh = true
  else
    local keep, pos = 0, 0
    f:seek("set", 0)
    -- (the same pass finds the output the journal was written for: "#out start path")
    for line in f:lines("L") do
      pos = pos + #line
      if line:sub(-1) == "\n" then
        keep = pos
        if not self.out then
          local start, out = line:match("^#out\t(%d+)\t(.*)\n$")
          if out then self.out, self.out_start = out, tonumber(start) end
        end
      end
    end
    if keep < size then assert(core._truncate(f, keep)) end
    f:seek("end")
  end
  return self
end

--- Records which output file the records go to, and its size before the first of them
-- (checked and used when resuming).
function S:set_out(path, size)
  self.out, self.out_start = path, size
  self.f:write("#out\t", size, "\t", path, "\n")
  self.f:flush()
end

--- Replays the journal: adds every URL ever queued to `seen`, calls push(url, depth,
-- parent) for each one still to fetch (in journal order; `done` is a scratch seen set),
-- and returns the number of records already out and the output offset after the last of
-- them (nil when none).
function S:replay(seen, done, push)
  local f = self.f
  local ndone, offset, pending = 0, nil, 0
  f:seek("set", 0)
  for line in f:lines() do
    local kind = line:sub(1, 1)
    if kind == "+" then
      local u = line:match("^%+\t%d+\t([^\t]*)")
      if u then seen:add(u); pending = pending + 1 end
    elseif kind == "-" then
      done:add(line:sub(3))
    elseif kind == "=" then
      local u, off = line:match("^=\t([^\t]*)\t(%d+)\t")
      if u then
        done:add(u)
        ndone = ndone + 1
        offset = tonumber(off)
      end
    end
  end
  if pending > ndone then
    f:seek("set", 0)
    for line in f:lines() do
      if line:sub(1, 1) == "+" then
        local depth, u, parent = line:match("^%+\t(%d+)\t([^\t]*)\t(.*)$")
        if u and not done:has(u) then
          push(u, tonumber(depth), parent ~= "" and parent or nil)
        end
      end
    end
  end
  f:seek("end")
  return ndone, offset
end

--- Journals URLs let into the frontier (buffered until done() or flush()).
function S:queued(u, depth, parent)
  self.f:write("+\t", depth, "\t", u, "\t", parent or "", "\n")
end

--- Journals a URL that was let in but will never be fetched (robots.txt disallows it), so
-- a resume does not queue it again.
function S:skipped(u)
  self.f:write("-\t", u, "\n")
end

--- Journals a record as out (the output was flushed up to `offset`: its size in bytes for a
-- file, the record's number for SQLite), and flushes unless `more` records follow at once.
function S:done(u, offset, status, more)
  local f = self.f
  f:write("=\t", u, "\t", offset, "\t", status or "-", "\n")
  if not more then f:flush() end
end

function S:flush()
  self.f:flush()
end

function S:close()
  if self.f then
    self.f:close()
    self.f = nil
    os.remove(self.lock .. "/pid")
    os.remove(self.lock)
  end
end

return M
