-- page_doc.lua: the parsed document behind page:css and page:xpath, made on first use and
-- kept in the page, for the crawler's pages (sluice.crawl.fetch) and the shell's (sluice.shell).
local html = require "sluice.html"

local M = {}

local type, rawget, rawset = type, rawget, rawset

--- charset(content_type) → the charset parameter of a Content-Type value
-- ("text/html; charset=ISO-8859-1" gives "iso-8859-1"), or nil.
function M.charset(content_type)
  if type(content_type) ~= "string" then return nil end
  return content_type:lower():match(";%s*charset%s*=%s*\"?([^%s;\"]+)")
end

-- The tree of page (a table with body, url and headers), parsed once with the page's URL as
-- base and its Content-Type's charset; errors at `level` when M.close has freed it.
local function document(page, level)
  local doc = rawget(page, "_doc")
  if doc == nil then
    if rawget(page, "_closed") then
      error("attempt to query a page whose handler has returned (its document is freed)", level)
    end
    doc = html.parse(page.body, page.url, M.charset(page.headers["content-type"]))
    rawset(page, "_doc", doc)
  end
  return doc
end

--- document(page) → the page's document, parsed on first use.
function M.document(page)
  return document(page, 3)
end

--- css(page, selector) → selection of the page's document: page:css as a method.
function M.css(page, selector)
  return document(page, 3):css(selector)
end

--- xpath(page, expr) → selection of the page's document: page:xpath as a method.
function M.xpath(page, expr)
  return document(page, 3):xpath(expr)
end

--- close(page): frees the document, if one was made; later queries raise.
function M.close(page)
  local doc = rawget(page, "_doc")
  rawset(page, "_doc", nil)
  rawset(page, "_closed", true)
  if doc then doc:close() end
end

return M
