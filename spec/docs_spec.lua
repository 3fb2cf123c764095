-- docs_spec.lua: README.md is sluice's reference, so this spec keeps it in step with the code.
-- It fails when a function registered in C or exported from lua/ is missing from README's
-- "## Reference" section, when that section names a function that does not exist, when a
-- new Lua-visible type or module appears that nobody has documented, when an example of
-- the tour no longer runs or no longer prints what README says it prints, and when the
-- tour's scraping handler differs from scripts/scrape_catalogue.lua's or its command no
-- longer scrapes scripts/testsite.lua's shop (started here on 127.0.0.1) into SQLite.
--
-- The convention (README states it too): a function is documented by a code span that starts
-- with a call of it, on the conventional name of its object:
--   `sl.NAME(`     functions of require "sluice"     (`sl.NAME` for its other values)
--   `t:NAME(`      task methods (metatables sluice.task and sluice.task.failed)
--   `sem:NAME(`    semaphore methods          `ev:NAME(`   event methods
--   `q:NAME(`      queue methods              `ex:NAME(`   executor methods
--   `file:NAME(`   methods of what sl.lines returns (sluice.lines)
--   `jobs:NAME(`   methods of what sl.limited_as_completed returns (sluice.lac)
--   `url.NAME(`    functions of require "sluice.url"    `set:NAME(`  its seen sets
--   `html.NAME(`   functions of require "sluice.html"   `p:NAME(`    its parsers
--   `doc:NAME(`    its documents (html.parse)          `sel:NAME(`  their selections
--   `css.NAME(`    functions of require "sluice.css"
--   `sqlite.NAME(`  functions of require "sluice.sqlite" `db:NAME(`   its databases,
--                                                       `stmt:NAME(` their statements
--   `cjson.NAME(`  lua-cjson                         (`cjson.NAME` for its values)
--   `NAME(`        the busted API                    (`NAME` for assert, spy, stub, ...)
-- Names starting with "_" are internal and need no documentation.

local sl = require "sluice"
require "sluice.tcp"   -- registers the socket and listener types checked below
local http = require "sluice.http"   -- and the HTTP client's and server's
local url = require "sluice.url"     -- the seen set's type
local html = require "sluice.html"   -- the HTML parser's type
local sqlite = require "sluice.sqlite" -- the database's and statement's types

-- Every "sluice.*" metatable in the registry: the prefix README writes its methods with,
-- or false for a type with no public methods. A type missing here makes the spec fail.
local TYPES = {
  ["sluice.task"] = "t:",
  ["sluice.task.failed"] = "t:",    -- the handle of a failed task: same methods
  ["sluice.semaphore"] = "sem:",
  ["sluice.event"] = "ev:",
  ["sluice.queue"] = "q:",
  ["sluice.lines"] = "file:",
  ["sluice.lac"] = "jobs:",
  ["sluice.group"] = false,         -- internal: the core of gather, wait and as_completed
  ["sluice.cancelled"] = false,     -- no methods; documented as `sl.cancelled`
  ["sluice.tcp.socket"] = "sock:",
  ["sluice.tcp.listener"] = "listener:",
  ["sluice.http.server"] = false,   -- the C core of http.serve's server (methods: server:)
  ["sluice.http.client"] = "client:",
  ["sluice.http.headers"] = false,  -- res.headers: case-insensitive lookup, no methods
  ["sluice.http.cookiejar"] = "jar:",
  ["sluice.url.seen_set"] = "set:",
  ["sluice.html.parser"] = "p:",
  ["sluice.html.document"] = "doc:",
  ["sluice.html.selection"] = "sel:",   -- a node is a selection of one: node methods are sel:
  ["sluice.html.xpath"] = false,    -- internal: a compiled XPath expression in the cache
  ["sluice.sqlite.db"] = "db:",
  ["sluice.sqlite.stmt"] = "stmt:",
}

-- Every module under lua/ or in package.preload: the prefix of its documented functions, or
-- false for an internal one. Modules under sluice.test are the runner's, all internal.
local MODULES = {
  ["sluice"] = "sl.",
  ["cjson"] = "cjson.",
  ["busted"] = "",
  ["sluice.core"] = false,          -- the C half, re-exported by sluice
  ["sluice.boot"] = false,          -- the body of the main task
  ["sluice.executor"] = false,      -- reached through sl.executor; methods checked as ex:
  ["sluice.test"] = false,          -- the `sluice test` command, documented as such
  ["sluice.tcp"] = "tcp.",
  ["sluice.http"] = "http.",
  ["sluice.http.client"] = false,   -- re-exported by sluice.http
  ["sluice.http.server"] = false,   -- re-exported by sluice.http
  ["sluice.http.client_core"] = false,
  ["sluice.http.server_core"] = false,
  ["sluice.repl"] = false,           -- the REPL behind `sluice -i`, documented as such
  ["sluice.repl_core"] = false,      -- its C half
  ["sluice.shell"] = false,          -- `sluice shell`, documented as such
  ["sluice.page_doc"] = false,       -- page:css and page:xpath of sluice.crawl and sluice.shell
  ["sluice.url"] = "url.",
  ["sluice.html"] = "html.",
  ["sluice.css"] = "css.",
  ["sluice.css_lex"] = false,        -- sluice.css's tokenizer
  ["sluice.crawl"] = "crawl.",
  ["sluice.crawl.fetch"] = false,    -- the crawler's parts, documented as sluice.crawl
  ["sluice.crawl.frontier"] = false,
  ["sluice.crawl.report"] = false,
  ["sluice.crawl.robots"] = false,
  ["sluice.crawl.state"] = false,
  ["sluice.crawl.out"] = false,
  ["sluice.crawl.out_sqlite"] = false,
  ["sluice.crawl.cli"] = false,      -- `sluice crawl`, documented as such
  ["sluice.sqlite"] = "sqlite.",
}

local function is_internal_module(name)
  return MODULES[name] == false or name:find("^sluice%.test%.") ~= nil
end

---------------------------------------------------------------------------------------------
-- Reading README

-- The repository root, found from this file's own path so any working directory works.
local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/docs_spec.lua"
local root = (here:match("^(.*)/[^/]*$") or ".") .. "/.."

local function readme()
  local f = assert(io.open(root .. "/README.md", "r"), "README.md not found at " .. root)
  local text = f:read("a")
  f:close()
  return text
end

-- The text of a section ("## title", or "### title" for level 3), up to the next heading
-- of its level or above.
local function section(text, title, level)
  level = level or 2
  local head = ("#"):rep(level) .. " "
  local s = text:find("\n" .. head .. title .. "\n", 1, true)
  assert(s, "README.md has no '" .. head .. title .. "' section")
  local e = #text
  for l = 2, level do
    e = math.min(e, text:find("\n" .. ("#"):rep(l) .. " ", s + 1, true) or e)
  end
  return text:sub(s, e)
end

-- The ```lua blocks of a text, each with the ### heading above it and the output its
-- `--> ` comments announce, one line per print, in order.
local function lua_blocks(text)
  local blocks, title = {}, "?"
  local pos = 1
  while true do
    local s, e, code = text:find("\n```lua\n(.-)\n```", pos)
    if not s then break end
    for h in text:sub(pos, s):gmatch("\n### ([^\n]+)") do title = h end
    local expected = {}
    for line in (code .. "\n"):gmatch("([^\n]*)\n") do
      local out = line:match("%-%->%s?(.-)%s*$")
      if out then expected[#expected + 1] = out end
    end
    blocks[#blocks + 1] = {title = title, code = code, expected = expected}
    pos = e + 1
  end
  return blocks
end

---------------------------------------------------------------------------------------------
-- What the code exports

-- Names of a table's public keys as {name, call} entries (call: it is a function).
local function entries(t)
  local out = {}
  for k, v in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" then
      out[#out + 1] = {name = k, call = type(v) == "function"}
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- The method table of a registry metatable: its __index, or the table an __index function
-- closes over (HTML documents and selections, whose __index also gives doc.base, sel[i] ...).
local function methods_of(tname)
  local mt = debug.getregistry()[tname]
  assert(type(mt) == "table", "no metatable " .. tname .. " in the registry")
  if type(mt.__index) == "function" then
    local _, methods = debug.getupvalue(mt.__index, 1)
    return type(methods) == "table" and methods or {}
  end
  return type(mt.__index) == "table" and mt.__index or {}
end

local function executor_methods()
  local ex = sl.executor{max_workers = 1}
  local index = getmetatable(ex).__index
  ex:close()
  return index
end

-- Every documented surface: what it is, its prefix, and the table holding its names.
local function surfaces()
  local list = {
    {what = "function and value of require \"sluice\"", prefix = "sl.", t = sl},
    {what = "executor method", prefix = "ex:", t = executor_methods()},
    {what = "function and value of require \"cjson\"", prefix = "cjson.", t = require "cjson"},
    {what = "function of require \"busted\"", prefix = "", t = require "busted"},
    {what = "function of require \"sluice.http\"", prefix = "http.", t = http},
    {what = "function of require \"sluice.url\"", prefix = "url.", t = url},
    {what = "function of require \"sluice.html\"", prefix = "html.", t = html},
    {what = "function of require \"sluice.css\"", prefix = "css.", t = require "sluice.css"},
    {what = "function and value of require \"sluice.sqlite\"", prefix = "sqlite.", t = sqlite},
    {what = "function of require \"sluice.crawl\"", prefix = "crawl.", t = require "sluice.crawl"},
    {what = "crawler method", prefix = "crawler:",
     t = getmetatable(require("sluice.crawl").new{seeds = {"http://127.0.0.1/"}}).__index},
  }
  local names = {}
  for tname in pairs(TYPES) do names[#names + 1] = tname end
  table.sort(names)
  for _, tname in ipairs(names) do
    if TYPES[tname] then
      list[#list + 1] = {what = "method of " .. tname, prefix = TYPES[tname],
                         t = methods_of(tname)}
    end
  end
  return list
end

-- Module names: every file under lua/ (as scripts/embed.lua names them) and every preload.
local function module_names()
  local found = {}
  local p = io.popen("find '" .. root .. "/lua' -name '*.lua' 2>/dev/null")
  for path in p:lines() do
    local name = path:gsub("^.-/lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    found[name] = path
  end
  p:close()
  for name in pairs(package.preload) do found[name] = found[name] or "package.preload" end
  return found
end

---------------------------------------------------------------------------------------------

describe("README's reference", function()
  local ref

  before_each(function()
    ref = section(readme(), "Reference")
  end)

  for _, s in ipairs(surfaces()) do
    it("documents every " .. s.what, function()
      local missing = {}
      for _, e in ipairs(entries(s.t)) do
        local needle = "`" .. s.prefix .. e.name .. (e.call and "(" or "")
        if not ref:find(needle, 1, true) then missing[#missing + 1] = needle end
      end
      assert(#missing == 0, "README.md's reference does not document " .. #missing ..
             " name(s); write each as a code span starting with: " ..
             table.concat(missing, "  "))
    end)
  end

  it("names no function that does not exist", function()
    local stale = {}
    for _, s in ipairs(surfaces()) do
      if s.prefix ~= "" then
        local pat = "`" .. s.prefix:gsub("%p", "%%%0") .. "([%a_][%w_]*)"
        for name in ref:gmatch(pat) do
          if s.t[name] == nil then stale[#stale + 1] = s.prefix .. name end
        end
      end
    end
    assert(#stale == 0, "README.md's reference documents names the code does not have: "
           .. table.concat(stale, ", "))
  end)

  it("knows every Lua-visible type sluice registers", function()
    local unknown = {}
    for k, v in pairs(debug.getregistry()) do
      if type(k) == "string" and k:find("^sluice%.") and type(v) == "table"
        and TYPES[k] == nil then
        unknown[#unknown + 1] = k
      end
    end
    table.sort(unknown)
    assert(#unknown == 0, "new type(s) " .. table.concat(unknown, ", ") .. ": document their "
           .. "methods in README.md and give them a prefix in TYPES in spec/docs_spec.lua")
  end)

  it("knows every module under lua/ and in package.preload", function()
    local unknown = {}
    for name, where in pairs(module_names()) do
      if MODULES[name] == nil and not is_internal_module(name) then
        unknown[#unknown + 1] = name .. " (" .. where .. ")"
      end
    end
    table.sort(unknown)
    assert(#unknown == 0, "new module(s) " .. table.concat(unknown, ", ") .. ": document "
           .. "their functions in README.md and list them in MODULES in spec/docs_spec.lua")
  end)
end)

describe("README's tour", function()
  local blocks = lua_blocks(section(readme(), "A five-minute tour"))

  it("has examples", function()
    assert(#blocks > 0, "no ```lua blocks in the tour")
  end)

  for i, b in ipairs(blocks) do
    it(("example %d (%s) runs and prints what README shows"):format(i, b.title), function()
      local out = {}
      local env = setmetatable({}, {__index = _G})
      env.print = function(...)
        local parts = {}
        for j = 1, select("#", ...) do parts[j] = tostring((select(j, ...))) end
        out[#out + 1] = table.concat(parts, " ")
      end
      local chunk = assert(load(b.code, "=README tour example " .. i, "t", env))
      chunk()
      assert.same(b.expected, out)
    end)
  end
end)

---------------------------------------------------------------------------------------------
-- The tour's scraping example: the handler README shows is scripts/scrape_catalogue.lua's,
-- and the command README gives scrapes the test site's shop into SQLite.

describe("README's scraping example", function()
  local H = require "spec.helpers"
  local sqlite = require "sluice.sqlite"
  local cjson = require "cjson"
  local scraping = section(section(readme(), "A five-minute tour"), "Scraping", 3)

  it("is scripts/scrape_catalogue.lua's handler, to the byte", function()
    local script = H.read_file(root .. "/scripts/scrape_catalogue.lua")
    local handler = script:match("\n(return function%(page%).*)$")
    assert(handler, "scripts/scrape_catalogue.lua has no line starting 'return function(page)'")
    local block = lua_blocks(scraping)[1]
    assert(block, "no ```lua block in README's Scraping section")
    assert.equals(handler, block.code .. "\n")
  end)

  it("runs as README says: sluice crawl --handler into SQLite, every product's fields", function()
    local n = 45   -- products: three listing pages of 20
    local site = H.site{hosts = 1, pages = 5, catalogue = n, plain = true}
    local tmp = os.tmpname()
    local db_path = tmp .. ".sqlite"   -- the extension picks the output format
    finally(function()
      os.remove(tmp)
      for _, suffix in ipairs{"", "-wal", "-shm", "-journal"} do os.remove(db_path .. suffix) end
    end)
    -- README's ```sh block: the command (its "\" continuations joined), then the query
    local sh = assert(scraping:match("\n```sh\n(.-)\n```"), "no ```sh block in the Scraping section")
    sh = sh:gsub("\\\n%s*", "")
    local command = assert(sh:match("^%./sluice (crawl [^\n]*)"), "no ./sluice crawl command")
    local query = assert(sh:match('\nsqlite3 catalogue%.sqlite "([^"]*)"'), "no sqlite3 query")
    local args = {}
    for word in command:gmatch("%S+") do
      if word == "catalogue.sqlite" then word = db_path
      elseif word:find("^scripts/") then word = root .. "/" .. word
      else word = word:gsub("^http://127%.0%.0%.1:PORT/", site.hosts[1] .. "/") end
      args[#args + 1] = word
    end
    H.has(site.hosts[1], args[#args])
    -- in the background: this process serves the site
    local p = H.spawn(args)
    assert.equals(0, H.wait(p, 20), H.read_file(p.err))
    H.has("crawl: done: " .. n + 3 .. " pages", H.read_file(p.err))

    local db <close> = assert(sqlite.open(db_path, {readonly = true}))
    local testsite, products, seen = H.testsite(), {}, 0
    for row in db:rows("SELECT url, item FROM items") do
      local id = tonumber(row.url:match("/catalogue/product/(%d+)%.html$"))
      local want, item = testsite.product(site, 1, id), cjson.decode(row.item)
      assert.same({name = want.name, price = tonumber(want.price), stock = want.stock,
                   tags = want.tags}, item)
      products[item.name] = item.price
      seen = seen + 1
    end
    assert.equals(n, seen)
    -- README's query: three rows, each a product's name and price
    local rows = 0
    for row in db:rows(query) do
      local name, price
      for _, v in pairs(row) do
        if type(v) == "string" then name = v else price = v end
      end
      -- (compared as numbers: SQLite gives 447 where the item's JSON decodes to 447.0)
      assert.equals(products[name], tonumber(price), "not a product: " .. tostring(name)
                    .. " " .. tostring(price))
      rows = rows + 1
    end
    assert.equals(3, rows)
  end, {timeout = 30})
end)
