-- extract.lua: the extract benchmark's sluice side (extract.sh): parses every page of a list
-- with html.parse and runs a fixed set of CSS and XPath queries on each, getall() each time.
--
-- usage: sluice extract.lua QUERIES PAGES [OUT]
--   QUERIES  extract_queries.txt: "css<TAB>selector" or "xpath<TAB>expression" a line
--   PAGES    a file naming the HTML files, one a line; they are read before the clock starts
--   OUT      where the answers go, "<page>\t<query>\t<value>\t<value>..." a line, values
--            with backslash, tab, CR and LF escaped (extract_check.py compares them)
-- Prints "pages=N queries=Q results=R cpu=S": R the number of values, S the cpu seconds
-- (os.clock) spent parsing and querying. Exits 3 with "n/a: ..." when this sluice has no
-- html.parse yet.
local html = require "sluice.html"

local qpath, list, outpath = arg[1], arg[2], arg[3]
if not (qpath and list) then
  io.stderr:write("usage: sluice extract.lua QUERIES PAGES [OUT]\n")
  os.exit(2)
end
if not html.parse then
  print("n/a: this sluice has no html.parse")
  os.exit(3)
end

local queries = {}
for line in io.lines(qpath) do
  local kind, q = line:match("^(%a+)\t(.+)$")
  if kind then queries[#queries + 1] = {kind == "css", q} end
end
local bodies = {}
for path in io.lines(list) do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("a")
  f:close()
end

local ESC = {["\\"] = "\\\\", ["\t"] = "\\t", ["\n"] = "\\n", ["\r"] = "\\r"}
-- A value as parsel's get() writes it: XPath booleans are "1" and "0", numbers as Python's
-- str(float) (integral ones end in ".0", which Lua's %.14g also gives for floats).
local function text(v)
  local t = type(v)
  if t == "boolean" then return v and "1" or "0" end
  if t == "number" then return tostring(v + 0.0) end
  return (tostring(v):gsub("[\\\t\n\r]", ESC))
end

local out = outpath and assert(io.open(outpath, "wb"))
local results = 0
local t0 = os.clock()
for p = 1, #bodies do
  local doc <close> = html.parse(bodies[p])
  for qi = 1, #queries do
    local q = queries[qi]
    local all = (q[1] and doc:css(q[2]) or doc:xpath(q[2])):getall()
    results = results + #all
    if out then
      local line = {p, qi}
      for i = 1, #all do line[i + 2] = text(all[i]) end
      out:write(table.concat(line, "\t"), "\n")
    end
  end
end
local cpu = os.clock() - t0
if out then out:close() end
print(("pages=%d queries=%d results=%d cpu=%.3f"):format(#bodies, #queries, results, cpu))
