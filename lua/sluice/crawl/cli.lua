-- sluice.crawl.cli: `sluice crawl [options] URL...`, the ready-made crawler on sluice.crawl.
-- Parses the command line, loads a --handler file, runs the crawl; engine/main.c runs
-- M.main as the main task's action (scripts/crawl.lua is a wrapper that does the same).
local sl = require "sluice"
local crawl = require "sluice.crawl"

local M = {}

local HELP = [[
  URL...            start URLs (http:// or https://); or -f FILE, one per line (# comments)
  --limit N         requests in flight at once, all hosts together (default 16)
  --per-host N      requests in flight to one host (default 2)
  --delay S         seconds between two requests to one host (default 0; a robots.txt
                    Crawl-delay that is longer wins)
  --depth N         follow links at most N steps from a seed (default: no limit)
  --max-pages N     stop after N records (default: no limit)
  --same-host       only follow links to the seeds' hosts (scheme, host and port)
  --handler FILE    a Lua file returning the page handler, function(page), run for every
                    response: page:css, page:xpath, page:emit, page:follow (see README)
  --out FILE        where the records go (default: standard output): JSON lines, or by its
                    extension CSV (.csv: the emitted items, one row each) or SQLite
                    (.sqlite, .sqlite3, .db: tables pages and items)
  --format F        jsonl, csv or sqlite: the output's format, whatever its extension
  --state DIR       journal the crawl in DIR; the same command resumes it after a kill,
                    and --out is then appended to
  --user-agent S    the User-Agent sent, and matched against robots.txt (default
                    "sluice-crawl/0.1")
  --ignore-robots   do not fetch or obey robots.txt
  --proxy URL       send every request through this proxy (http://, socks5://,
                    socks5h://; user:password@ for its credentials); without it the
                    http_proxy, https_proxy, all_proxy and no_proxy variables apply
  --cookies [FILE]  keep cookies (RFC 6265) for the crawl; with FILE (a next argument that
                    is no option and no URL, or --cookies=FILE), in the Netscape
                    cookies.txt format curl uses: loaded at the start if it exists, saved
                    at the end (after Ctrl-C too)

Each record: {"url", "status", "depth", "parent", "bytes", "links", "time", "error"}
(and "redirect" for a 3xx, "items" for what the handler emitted). Exit status: 0 when the
crawl ran to its end (pages that failed are in the output with their error), 2 for bad
arguments, 130 after Ctrl-C (with --state, run the same command to go on), 1 if the crawl
itself failed (e.g. the disk is full).
]]

local function usage_line(prog)
  return "usage: " .. prog .. " [--limit N] [--per-host N] [--delay S] [--depth N]\n"
    .. "         [--max-pages N] [--same-host] [--handler FILE] [--out FILE] [--format F]\n"
    .. "         [--state DIR] [--user-agent S] [--ignore-robots] [--proxy URL]\n"
    .. "         [--cookies [FILE]] (URL... | -f FILE)\n"
end

-- option → {field, kind, min}: kinds "int", "num", "str" take a value; "flag" does not.
local OPTS = {
  ["--limit"] = {"limit", "int", 1}, ["--per-host"] = {"per_host", "int", 1},
  ["--delay"] = {"delay", "num", 0}, ["--depth"] = {"depth", "int", 0},
  ["--max-pages"] = {"max_pages", "int", 0}, ["--same-host"] = {"same_host", "flag"},
  ["--handler"] = {"handler", "str"},
  ["--out"] = {"out", "str"}, ["--format"] = {"format", "str"},
  ["--state"] = {"state", "str"},
  ["--user-agent"] = {"user_agent", "str"}, ["--ignore-robots"] = {"robots", "flag"},
  ["--proxy"] = {"proxy", "str"},
  ["-f"] = {"file", "str"},
  ["--cookies"] = {"cookies", "optstr"},
}

-- The function a --handler file returns; nil and a message when it has none.
local function load_handler(path)
  local f, ferr = io.open(path, "r")
  if not f then return nil, "cannot read " .. ferr end
  f:close()
  local chunk, err = loadfile(path)
  if not chunk then return nil, "cannot load " .. path .. ": " .. err end
  local ok, fn = pcall(chunk)
  if not ok then
    if sl.is_cancelled(fn) then error(fn, 0) end
    return nil, "the handler file " .. path .. " failed: " .. tostring(fn)
  end
  if type(fn) ~= "function" then
    return nil, "the handler file " .. path .. " returned " .. type(fn)
      .. ", not a function (end it with `return function(page) ... end`)"
  end
  return fn
end

--- M.main(prog, ...): runs the command with its arguments; prog names it in the usage.
-- Exits the process with 2 on bad arguments and 1 when the crawl failed.
function M.main(prog, ...)
  local args = {...}
  local function usage(msg)
    io.stderr:write("crawl: ", msg, "\n", usage_line(prog))
    os.exit(2)
  end
  local opts, seeds, files = {}, {}, {}
  local i = 1
  while args[i] do
    local a = args[i]
    local name, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    local spec = OPTS[name]
    if a == "-h" or a == "--help" then
      io.stdout:write(usage_line(prog), "\n", HELP)
      os.exit(0)
    elseif spec then
      local field, kind, min = spec[1], spec[2], spec[3]
      if kind == "optstr" then   -- the value is optional: not an option, not a URL
        local v = args[i + 1]
        if not inline and v and not v:find("^%-") and not v:find("^%a[%w+.-]*://") then
          opts[field], i = v, i + 2
        else
          opts[field], i = inline or true, i + 1
        end
      elseif kind == "flag" then
        if inline then usage(name .. " takes no value") end
        opts[field] = field ~= "robots"      -- --ignore-robots sets robots = false
        i = i + 1
      else
        local v = inline or args[i + 1]
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
  if opts.handler then
    local fn, err = load_handler(opts.handler)
    if not fn then usage("--handler: " .. err) end
    opts.handler = fn
  end

  opts.seeds = seeds
  local ok, crawler = pcall(crawl.new, opts)
  if not ok then usage(tostring(crawler):gsub("^crawl: ", "")) end
  -- The summary already says why a crawl stopped; only Ctrl-C goes on up (exit status 130).
  local done, err = pcall(crawler.run, crawler)
  if not done then
    if sl.is_cancelled(err) then error(err, 0) end
    os.exit(1)
  end
end

return M
