-- crawl.lua: the ready-made crawler on sluice.crawl. Crawls from seed URLs, politely and
-- within bounds, writing one JSON line per URL; with --state it survives kill -9.
--[[ usage: sluice scripts/crawl.lua [options] SEED... | -f FILE

  SEED...           start URLs (http://); or -f FILE, one per line (# comments allowed)
  --limit N         requests in flight at once, all hosts together (default 16)
  --per-host N      requests in flight to one host (default 2)
  --delay S         seconds between two requests to one host (default 0; a robots.txt
                    Crawl-delay that is longer wins)
  --depth N         follow links at most N steps from a seed (default: no limit)
  --max-pages N     stop after N records (default: no limit)
  --same-host       only follow links to the seeds' hosts (scheme, host and port)
  --out FILE        where the records go (default: standard output): JSON lines, or by its
                    extension CSV (.csv: the emitted items, one row each) or SQLite
                    (.sqlite, .sqlite3, .db: tables pages and items)
  --format F        jsonl, csv or sqlite: the output's format, whatever its extension
  --state DIR       journal the crawl in DIR; the same command resumes it after a kill,
                    and --out is then appended to
  --user-agent S    the User-Agent sent, and matched against robots.txt (default
                    "sluice-crawl/0.1")
  --ignore-robots   do not fetch or obey robots.txt

Each line: {"url", "status", "depth", "parent", "bytes", "links", "time", "error"} (and
"redirect" for a 3xx); with SQLite, the same fields as a row of the table pages. A live status line goes to stderr when it is a terminal, and a
summary at the end always. Exit status: 0 when the crawl ran to its end (pages that failed
are in the output with their error), 2 for bad arguments, 130 after Ctrl-C (with --state,
run the same command to go on), 1 if the crawl itself failed (e.g. the disk is full).

Example (the offline test site; see README):
  sluice scripts/crawl.lua --limit 32 --per-host 4 --out pages.jsonl http://127.0.0.1:8000/
]]
local crawl = require "sluice.crawl"

local USAGE = "usage: sluice scripts/crawl.lua [--limit N] [--per-host N] [--delay S] "
  .. "[--depth N] [--max-pages N] [--same-host] [--out FILE] [--format F] [--state DIR] "
  .. "[--user-agent S] [--ignore-robots] (SEED... | -f FILE)\n"

local function usage(msg)
  io.stderr:write("crawl: ", msg, "\n", USAGE)
  os.exit(2)
end

-- option → {field, kind}: kind "int", "num", "str" take a value; "flag" does not.
local OPTS = {
  ["--limit"] = {"limit", "int", 1}, ["--per-host"] = {"per_host", "int", 1},
  ["--delay"] = {"delay", "num", 0}, ["--depth"] = {"depth", "int", 0},
  ["--max-pages"] = {"max_pages", "int", 0}, ["--same-host"] = {"same_host", "flag"},
  ["--out"] = {"out", "str"}, ["--format"] = {"format", "str"},
  ["--state"] = {"state", "str"},
  ["--user-agent"] = {"user_agent", "str"}, ["--ignore-robots"] = {"robots", "flag"},
  ["-f"] = {"file", "str"},
}

local opts, seeds, files = {}, {}, {}
local i = 1
while arg[i] do
  local a = arg[i]
  local name, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
  name = name or a
  local spec = OPTS[name]
  if a == "-h" or a == "--help" then
    io.stdout:write(USAGE)
    os.exit(0)
  elseif spec then
    local field, kind, min = spec[1], spec[2], spec[3]
    if kind == "flag" then
      if inline then usage(name .. " takes no value") end
      opts[field] = field ~= "robots"      -- --ignore-robots sets robots = false
      i = i + 1
    else
      local v = inline or arg[i + 1]
      if not v then usage(name .. " needs a value") end
      if kind == "int" then
        v = math.tointeger(tonumber(v))
        if not v or v < min then usage(string.format("%s needs an integer >= %d", name, min)) end
      elseif kind == "num" then
        v = tonumber(v)
        if not v or v < min then usage(name .. " needs a number >= " .. min) end
      end
      if field == "format" and v ~= "jsonl" and v ~= "csv" and v ~= "sqlite" then
        usage("--format needs jsonl, csv or sqlite")
      end
      if field == "file" then files[#files + 1] = v else opts[field] = v end
      i = i + (inline and 1 or 2)
    end
  elseif a:sub(1, 1) == "-" and a ~= "-" then
    usage("unknown option " .. a)
  else
    seeds[#seeds + 1] = a
    i = i + 1
  end
end

for _, path in ipairs(files) do
  local f, err = io.open(path, "r")
  if not f then usage("cannot read " .. path .. ": " .. err) end
  for line in f:lines() do
    line = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
    if line ~= "" then seeds[#seeds + 1] = line end
  end
  f:close()
end
if #seeds == 0 and not opts.state then usage("no seed URLs") end

opts.seeds = seeds
local ok, crawler = pcall(crawl.new, opts)
if not ok then usage(tostring(crawler):gsub("^crawl: ", "")) end
-- The summary already says why a crawl stopped; only Ctrl-C goes on up (exit status 130).
local done, err = pcall(crawler.run, crawler)
if not done then
  if require("sluice").is_cancelled(err) then error(err, 0) end
  os.exit(1)
end
