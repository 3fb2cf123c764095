-- sluice.crawl.out: where a crawl's records go. JSON lines and CSV are files written in
-- order, whose size after each record the journal keeps, so a resume cuts what it never
-- confirmed; SQLite is sluice.crawl.out_sqlite. Part of sluice.crawl (see README).
local cjson = require "cjson"
local core = require "sluice.core"

local concat, sort = table.concat, table.sort

local M = {}

--- JSON text of v, with "/" as it is (cjson writes "\/"; a backslash of the text is itself
-- escaped, so every "\/" in cjson's output is an escaped slash).
function M.json(v)
  return (cjson.encode(v):gsub("\\/", "/"))
end
local json = M.json

local EXTENSIONS = {csv = "csv", sqlite = "sqlite", sqlite3 = "sqlite", db = "sqlite",
                    jsonl = "jsonl", json = "jsonl", ndjson = "jsonl"}

--- The output format: opts.format, else from the extension of an `out` path (.csv; .sqlite,
-- .sqlite3, .db), else JSON lines. A sluice.sqlite database as `out` is SQLite.
function M.format(opts)
  if opts.format then return opts.format end
  local o = opts.out
  if type(o) == "string" then
    return EXTENSIONS[(o:match("%.(%w+)$") or ""):lower()] or "jsonl"
  end
  if type(o) == "userdata" and tostring(o):find("^sluice%.sqlite%.db") then return "sqlite" end
  return "jsonl"
end

---------------------------------------------------------------------------------------------
-- CSV (RFC 4180): one row per item, CRLF line ends, a field quoted when it holds a comma,
-- a quote, CR or LF. The columns are the first item's keys, sorted, then `_extra`: a JSON
-- object of any key a later item has and the header lacks (empty when none).

local EXTRA = "_extra"

local function csv_field(s)
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- A value as CSV text: strings as they are, nil and JSON null empty, the rest as JSON.
local function csv_text(v)
  local t = type(v)
  if t == "string" then return v end
  if v == nil or v == cjson.null then return "" end
  if t == "boolean" then return tostring(v) end
  return json(v)
end

-- An item as a map column name → value (an item that is not a table is {value = item}).
local function fields(item)
  if type(item) ~= "table" then return {value = item} end
  local m = {}
  for k, v in pairs(item) do m[tostring(k)] = v end
  return m
end

local function header_of(item)
  local cols = {}
  for k in pairs(fields(item)) do
    if k ~= EXTRA then cols[#cols + 1] = k end
  end
  sort(cols)
  return cols
end

local function csv_row(cols, has, item)
  local m, out = fields(item), {}
  for i, c in ipairs(cols) do out[i] = csv_field(csv_text(m[c])) end
  local extra = {}
  for k in pairs(m) do
    if not has[k] then extra[#extra + 1] = k end
  end
  if #extra > 0 then
    sort(extra)   -- (keys sorted so the same item always gives the same text)
    for i, k in ipairs(extra) do extra[i] = json(k) .. ":" .. json(m[k]) end
    out[#out + 1] = csv_field("{" .. concat(extra, ",") .. "}")
  else
    out[#out + 1] = ""
  end
  return concat(out, ",") .. "\r\n"
end

-- Splits the first CSV record of s into its fields; nil if s holds no whole record.
local function parse_record(s)
  local fields_, pos = {}, 1
  while true do
    local v
    if s:sub(pos, pos) == '"' then
      local parts, i = {}, pos + 1
      while true do
        local q = s:find('"', i, true)
        if not q then return nil end
        parts[#parts + 1] = s:sub(i, q - 1)
        if s:sub(q + 1, q + 1) == '"' then
          parts[#parts + 1] = '"'
          i = q + 2
        else
          pos = q + 1
          break
        end
      end
      v = concat(parts)
    else
      local e = s:find("[,\r\n]", pos) or #s + 1
      v = s:sub(pos, e - 1)
      pos = e
    end
    fields_[#fields_ + 1] = v
    local c = s:sub(pos, pos)
    if c == "," then pos = pos + 1
    elseif c == "\r" or c == "\n" then return fields_
    else return nil end
  end
end
M._parse_csv_record = parse_record

---------------------------------------------------------------------------------------------
-- File outputs: JSON lines or CSV, to a path, a file handle or (JSON lines) a function.

local F = {}
F.__index = F

-- The columns of the CSV file being appended to, read from its first record.
local function read_header(self)
  local f = self.f
  f:seek("set", 0)
  local head = f:read(65536) or ""
  f:seek("end")
  local cols = parse_record(head)
  if not cols or cols[#cols] ~= EXTRA then
    error("crawl: " .. self.path .. " does not start with the header of a crawl's CSV "
          .. "(a last column " .. EXTRA .. "); not appending to it", 0)
  end
  cols[#cols] = nil
  return cols
end

-- The text a record adds to the file.
local function text_of(self, rec, line)
  if self.kind == "jsonl" then return line end
  local items = rec.items
  if not items or #items == 0 then return "" end
  local t = {}
  if not self.cols then
    if self.offset > 0 and self.path then
      self.cols = read_header(self)
    else
      self.cols = header_of(items[1])
      local h = {}
      for i, c in ipairs(self.cols) do h[i] = csv_field(c) end
      h[#h + 1] = EXTRA
      t[1] = concat(h, ",") .. "\r\n"
    end
    self.has = {}
    for _, c in ipairs(self.cols) do self.has[c] = true end
  end
  for _, item in ipairs(items) do t[#t + 1] = csv_row(self.cols, self.has, item) end
  return concat(t)
end

--- Writes a record (line: its JSON line) and confirms it at once: it is in the file (flushed
-- when a journal will say so) before confirm(rec, offset) journals it.
function F:write(rec, line)
  local text = text_of(self, rec, line)
  local out = self.f
  if type(out) == "function" then
    out(text, rec)
  elseif text ~= "" then
    local ok, err = out:write(text)
    if not ok then error("crawl: cannot write a record: " .. tostring(err), 0) end
    self.offset = self.offset + #text
    if self.flush then
      ok, err = out:flush()
      if not ok then error("crawl: cannot write a record: " .. tostring(err), 0) end
    end
  end
  self.confirm(rec, self.offset)
end

--- On resume: cuts the file back to `offset`, the end of the last record the journal
-- confirmed (c: the crawler, for its log and state directory).
function F:cut(c, st, offset)
  if self.offset < offset then
    c.report:log_line(string.format("crawl: resume: %s is shorter than the %d bytes of records "
                                    .. "the journal confirmed: some records are gone from it",
                                    self.path, offset))
  elseif self.offset > offset then
    -- Only cut at the end of a record: anything else is not the file this crawl wrote.
    local f = self.f
    f:seek("set", math.max(offset - 1, 0))
    if offset > 0 and offset ~= st.out_start and f:read(1) ~= "\n" then
      st:close()
      error("crawl: " .. self.path .. " does not end a record at byte " .. offset
            .. ", where the journal in " .. c.opts.state .. " says; not cutting it", 0)
    end
    assert(core._truncate(f, offset))
    c.report:log_line(string.format("crawl: resume: %d bytes of records the journal never "
                                    .. "confirmed were cut from %s", self.offset - offset,
                                    self.path))
  end
  self.offset = self.f:seek("end")
end

--- Flushes (and closes a file it opened); ok, or nil and why.
function F:close()
  local out = self.f
  if io.type(out) ~= "file" then return true end
  local flushed, ferr = out:flush()
  if self.path then out:close() end
  if not flushed then return nil, "crawl: cannot write a record: " .. tostring(ferr) end
  return true
end

local function open_file(c, kind, confirm)
  local o = c.opts
  local out = o.out or io.stdout
  local self = setmetatable({kind = kind, confirm = confirm, flush = o.state ~= nil}, F)
  if type(out) == "string" then
    local f, err
    if o.state then f = io.open(out, "r+b") end
    if not f then f, err = io.open(out, "w+b") end
    if not f then error("crawl: cannot open the output: " .. err, 0) end
    f:setvbuf("full", 65536)
    self.f, self.path = f, out
  elseif io.type(out) == "file" or (type(out) == "function" and kind == "jsonl") then
    self.f = out
  else
    error("crawl: bad option 'out' (a path, a file" .. (kind == "jsonl" and " or a function" or "")
          .. " expected for format " .. kind .. ")", 0)
  end
  self.offset = io.type(self.f) == "file" and (self.f:seek("end") or 0) or 0
  return self
end

--- Opens the crawler's output; confirm(rec, offset [, more]) is called once a record is
-- out, in order (more: another follows at once, so the journal need not flush yet).
function M.open(c, confirm)
  local kind = M.format(c.opts)
  if kind == "sqlite" then return require("sluice.crawl.out_sqlite").open(c, confirm) end
  return open_file(c, kind, confirm)
end

return M
