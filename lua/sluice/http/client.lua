-- sluice.http.client: the HTTP/1.1 client, re-exported by sluice.http: http.get,
-- http.request and http.client. A request, its redirects included, is one call into the
-- C core (_send), which decides on redirects and resolves them with sluice.url's resolver.
-- Every API function below calls the C core itself: the core reports misuse one Lua frame
-- above the C function (at the user's code), so none of them calls another to get there.
local core = require "sluice.http.client_core"

local M = {}

local default = core.new()
local methods = getmetatable(default).__index
local send = methods._send

-- Argument errors, reported at the caller of the API function (level 3).
local function bad_arg(n, fname, want, v)
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, want, type(v)), 3)
end

-- The method of a request table, checked (level 3: the caller of the API function).
local function table_method(opts, fname)
  if type(opts) ~= "table" then bad_arg(1, fname, "table", opts) end
  local url, method = opts.url, opts.method or "GET"
  if type(url) ~= "string" then
    error(("bad argument #1 to '%s' (field 'url' must be a string, got %s)")
          :format(fname, type(url)), 3)
  end
  if type(method) ~= "string" then
    error(("bad argument #1 to '%s' (field 'method' must be a string)"):format(fname), 3)
  end
  return method
end

--- http.get(url [, opts]) -> response, or nil, "ENAME: message", "ENAME". Waits.
-- The hot path of a crawl: checks inline and one call into C.
function M.get(url, opts)
  if type(url) ~= "string" then bad_arg(1, "http.get", "URL string", url) end
  if opts ~= nil and type(opts) ~= "table" then bad_arg(2, "http.get", "table", opts) end
  local res, err, code = send(default, "GET", url, opts)
  return res, err, code
end

--- http.request{url = ..., method = "GET", headers, body, ...} -> response or fail triple.
function M.request(opts)
  local method = table_method(opts, "http.request")
  local res, err, code = send(default, method, opts.url, opts)
  return res, err, code
end

--- http.client([opts]) -> a client with its own defaults, limits and connection pool.
function M.client(opts)
  if opts ~= nil and type(opts) ~= "table" then bad_arg(1, "http.client", "table", opts) end
  local c = core.new(opts)
  return c
end

--- http.cookiejar([opts]) -> a cookie jar to share between clients (http.client{cookies = jar}).
M.cookiejar = core.cookiejar

--- http.header_values(headers, name) -> the list of values a header came with.
M.header_values = core.header_values

--- client:get(url [, opts]) -> response or fail triple. Waits.
function methods.get(c, url, opts)
  if type(url) ~= "string" then bad_arg(1, "client:get", "URL string", url) end
  if opts ~= nil and type(opts) ~= "table" then bad_arg(2, "client:get", "table", opts) end
  local res, err, code = send(c, "GET", url, opts)
  return res, err, code
end

--- client:request{url = ..., method = ..., ...} -> response or fail triple. Waits.
function methods.request(c, opts)
  local method = table_method(opts, "client:request")
  local res, err, code = send(c, method, opts.url, opts)
  return res, err, code
end

return M
