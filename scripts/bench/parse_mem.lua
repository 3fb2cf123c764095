-- parse_mem.lua: the parse_mem benchmark's sluice side (extract.sh): what an html.parse
-- document costs in memory per byte of HTML, and that dropped documents are freed.
--
-- usage: sluice parse_mem.lua PAGES      (PAGES: a file naming HTML files, one a line)
-- keep: reads every page, then parses them all and keeps every document; the growth of the
--   resident set (/proc/self/statm) over the HTML bytes is per_byte.
-- loop: then closes them, and parses the pages one at a time three times over, dropping
--   each document without closing it (the garbage collector must free it, its memory being
--   counted); loop_growth_kib is the peak resident set of passes 2 and 3 over pass 1's:
--   a document that outlived its pass would show there.
-- Prints "pages=N bytes=B kept_kib=K per_byte=X loop_growth_kib=G".
local html = require "sluice.html"

local function rss_kib()
  local f = assert(io.open("/proc/self/statm"))
  local resident = f:read("a"):match("^%d+ (%d+)")
  f:close()
  return tonumber(resident) * 4   -- pages of 4 KiB
end

if not arg[1] then
  io.stderr:write("usage: sluice parse_mem.lua PAGES\n")
  os.exit(2)
end
local bodies, bytes = {}, 0
for path in io.lines(arg[1]) do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("a")
  f:close()
  bytes = bytes + #bodies[#bodies]
end
collectgarbage()
collectgarbage()

-- Keep every document.
local before = rss_kib()
local docs = {}
for i = 1, #bodies do docs[i] = html.parse(bodies[i]) end
local kept = rss_kib() - before
for i = 1, #docs do docs[i]:close() end
docs = nil
collectgarbage()

-- One at a time, dropped (not closed) each time; the peak resident set per pass.
local peaks = {}
for pass = 1, 3 do
  local peak = 0
  for i = 1, #bodies do
    local doc = html.parse(bodies[i])
    assert(#doc:xpath("//a") >= 0)
    doc = nil
    local r = rss_kib()
    if r > peak then peak = r end
  end
  peaks[pass] = peak
end
print(("pages=%d bytes=%d kept_kib=%d per_byte=%.2f loop_growth_kib=%d"):format(
  #bodies, bytes, kept, kept * 1024 / bytes, math.max(peaks[2], peaks[3]) - peaks[1]))
