-- shell.lua: `sluice shell [URL]`, the REPL made a place to try selectors, as `scrapy shell`
-- is: fetch(url) sets the globals `page` and `response`, and page:css / page:xpath query it.
-- engine/main.c runs M.main as an action before the REPL (lua/sluice/repl.lua) starts.
local sl = require "sluice"
local http = require "sluice.http"
local html = require "sluice.html"
local page_doc = require "sluice.page_doc"

local M = {}

local type, rawget, rawset, select = type, rawget, rawset, select

local HELP = [[
sluice shell: the REPL with these globals (each input runs as a task, so they may wait):
  fetch(url_or_request)  GET a URL (or run http.request{url=..., method=..., headers=...,
                         body=...}), print a summary and set `page` and `response`
  page                   the last page fetched: page.url, .status, .headers, .body,
                         .response, .title, .links; page:css(sel), page:xpath(expr)
  response               the HTTP client's response for `page`
  http, html, url, sl    require "sluice.http", "sluice.html", "sluice.url", "sluice"
  tasks()                the tasks alive; help() shows this again
Try: page:css("title::text"):get(), page:xpath("//a/@href"):getall()]]

local USAGE = "usage: sluice shell [URL]"

---------------------------------------------------------------------------------------------
-- Pages

local Page = {}
local page_methods = {}

-- page:css(selector) and page:xpath(expr) query the page's document, parsed on first use
-- and kept: parsing once serves every query (page:document() gives the tree itself).
page_methods.document = page_doc.document
page_methods.css = page_doc.css
page_methods.xpath = page_doc.xpath

-- A table, not a function, so that the REPL's Tab completion offers page:css( and the rest.
Page.__index = page_methods

Page.__tostring = function(self)
  return ("<page %d %s, %d bytes>"):format(self.status, self.url, #self.body)
end

-- page.links and page.title come from html.links at once: it streams over the body without
-- building a tree (tens of microseconds for a typical page), so no laziness is needed.
local function new_page(res)
  local body = res.body or ""
  local links, info = html.links(body, res.url)
  return setmetatable({url = res.url, status = res.status, headers = res.headers, body = body,
                       response = res, links = links, title = info.title}, Page)
end

---------------------------------------------------------------------------------------------
-- fetch

-- "127.0.0.1:8080/x" and "example.com" mean http://, as in a browser's address bar.
local function with_scheme(u)
  if u:find("^%a[%w+.-]*://") then return u end
  return "http://" .. u
end

-- One line on what came back: status, final URL, body size, time.
local function summary(res)
  local t = res.timings and res.timings.total or 0
  local redirects = (res.redirects or 0) > 0
    and (", %d redirect%s"):format(res.redirects, res.redirects == 1 and "" or "s") or ""
  return ("%d %s  %s  (%d bytes, %.1f ms%s)"):format(res.status, res.reason or "", res.url,
                                                     #(res.body or ""), t * 1000, redirects)
end

--- fetch(url_or_request): performs the request, prints a one-line summary and sets the
-- globals `response` and `page`. A failed request prints its error on stderr and leaves
-- them as they were. Returns nothing, so the prompt prints only the summary.
function M.fetch(req)
  local res, err
  if type(req) == "string" then
    res, err = http.request{url = with_scheme(req)}
  elseif type(req) == "table" then
    local opts = {}
    for k, v in pairs(req) do opts[k] = v end
    if type(opts.url) == "string" then opts.url = with_scheme(opts.url) end
    res, err = http.request(opts)
  else
    error(("bad argument #1 to 'fetch' (URL string or request table expected, got %s)")
          :format(type(req)), 2)
  end
  if not res then
    local still = rawget(_G, "page")
    io.stdout:flush()
    io.stderr:write("fetch failed: ", tostring(err),
                    getmetatable(still) == Page and " (page is still " .. still.url .. ")" or "",
                    "\n")
    io.stderr:flush()
    return
  end
  rawset(_G, "response", res)
  rawset(_G, "page", new_page(res))
  io.stdout:write(summary(res), "\n")
  io.stdout:flush()
end

--- help(): lists the shell's globals.
function M.help()
  io.stdout:write(HELP, "\n")
end

---------------------------------------------------------------------------------------------
-- The command

-- Sets a global unless the user's -l or environment already did.
local function provide(name, v)
  if rawget(_G, name) == nil then rawset(_G, name, v) end
end

--- main(tty, ...): the action `sluice shell [URL]` runs before the REPL: the globals, the
-- first fetch, and a line on a terminal that says where to start.
function M.main(tty, ...)
  local n = select("#", ...)
  local first = ...
  if first == "-h" or first == "--help" then
    print(USAGE)
    print(HELP)
    os.exit(0)
  end
  if n > 1 or (type(first) == "string" and first:sub(1, 1) == "-") then
    io.stderr:write("sluice shell: ", n > 1 and "one URL at most" or "unknown option " .. first,
                    "\n", USAGE, "\n")
    os.exit(1)
  end
  provide("fetch", M.fetch)
  provide("help", M.help)
  provide("http", http)
  provide("html", html)
  provide("url", require "sluice.url")
  provide("sl", sl)
  if first then M.fetch(first) end
  if tty then
    io.stdout:write("sluice shell: fetch(url) sets page and response, page:css(sel) queries "
                    .. "it; help() says more.\n")
  end
end

M.Page = Page
return M
