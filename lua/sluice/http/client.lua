-- sluice.http.client: the HTTP/1.1 client, re-exported by sluice.http: http.get,
-- http.request, http.client and redirects. A request is one call into the C core (_send).
local core = require "sluice.http.client_core"

local M = {}

local default = core.new()
local methods = getmetatable(default).__index
local send = methods._send

local REDIRECT = {[301] = true, [302] = true, [303] = true, [307] = true, [308] = true}

---------------------------------------------------------------------------------------------
-- Redirects

-- Removes "." and ".." segments from an absolute path (RFC 3986, 5.2.4).
local function remove_dots(path)
  local out = {}
  for seg in path:gmatch("/([^/]*)") do
    if seg == ".." then
      out[#out] = nil
    elseif seg ~= "." then
      out[#out + 1] = seg
    end
  end
  local last = path:match("/([^/]*)$")
  if last == "." or last == ".." then out[#out + 1] = "" end
  return "/" .. table.concat(out, "/")
end

-- The URL a Location header points to, seen from base; nil if base is not a URL.
local function resolve(base, loc)
  if loc:find("^%a[%w+.-]*:") then return loc end
  local scheme, auth, rest = base:match("^(%a[%w+.-]*)://([^/?#]*)([^#]*)")
  if not scheme then return nil end
  if loc:sub(1, 2) == "//" then return scheme .. ":" .. loc end
  local prefix = scheme .. "://" .. auth
  local path = rest:match("^[^?]*")
  if path == "" then path = "/" end
  if loc == "" then return prefix .. rest end
  local first = loc:sub(1, 1)
  if first == "?" then return prefix .. path .. loc end
  if first == "#" then return prefix .. rest end
  local lpath, query = loc:match("^([^?#]*)(.*)$")
  if first ~= "/" then lpath = (path:match("^(.*/)") or "/") .. lpath end
  return prefix .. remove_dots(lpath) .. query:gsub("#.*$", "")
end

-- "http://host:port" in lower case with the default port made explicit, for comparing.
local function origin(url)
  local scheme, auth = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil end
  scheme, auth = scheme:lower(), auth:lower()
  if not auth:find(":%d+$") then auth = auth .. (scheme == "https" and ":443" or ":80") end
  return scheme .. "://" .. auth
end

-- The headers that carry credentials (lower case). They never cross an origin, whoever
-- set them: the request's own headers or the client's defaults.
local CREDENTIALS = {authorization = true, cookie = true, ["proxy-authorization"] = true}

-- A copy of opts for the next hop: the new method's body, what is left of the total
-- timeout, and, for another origin, no credentials (nor a Host of the caller's). The
-- request's credentials and Host are dropped in any case of their names, and `false` for
-- each one keeps the client from adding its defaults (for Host, the request then gets the
-- one made from its URL); the next hops inherit both, so credentials do not come back even
-- if a later redirect returns to the first origin.
local function next_opts(opts, keep_body, cross, elapsed)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if not keep_body then o.body = nil end
  if o.timeout then o.timeout = math.max(0, o.timeout - elapsed) end
  if cross then
    local h = {}
    if type(o.headers) == "table" then
      for k, v in pairs(o.headers) do
        local lk = type(k) == "string" and k:lower()
        if not CREDENTIALS[lk] and lk ~= "host" then h[k] = v end
      end
    end
    for name in pairs(CREDENTIALS) do h[name] = false end
    h.host = false
    o.headers = h
  end
  return o
end

-- Follows the redirect res answered to method url: 301, 302 and 303 become a GET (a HEAD
-- stays a HEAD) without body, 307 and 308 keep method and body (a body function cannot be
-- sent twice: the 307/308 response is returned as it is).
local function follow(c, method, url, opts, res)
  local max = opts and opts.max_redirects or c:_max_redirects()
  local hops, spent = 0, 0
  opts = opts or {}
  while REDIRECT[res.status] do
    local loc = res.headers.location
    if not loc or max == 0 then break end
    local status = res.status
    if (status == 307 or status == 308) and type(opts.body) == "function" then break end
    if hops >= max then
      return nil, ("ELOOP: more than %d redirects (the last to %s)"):format(max, loc), "ELOOP"
    end
    local target = resolve(url, loc)
    if not target then
      return nil, "EINVAL: bad redirect location: " .. loc, "EINVAL"
    end
    local keep_body = status == 307 or status == 308
    if not keep_body then method = method == "HEAD" and "HEAD" or "GET" end
    spent = spent + res.timings.total
    opts = next_opts(opts, keep_body, origin(target) ~= origin(url), spent)
    hops, url = hops + 1, target
    local err, code
    res, err, code = send(c, method, url, opts)
    if not res then return nil, err, code end
  end
  res.redirects = hops
  return res
end

local function request(c, method, url, opts)
  local res, err, code = send(c, method, url, opts)
  if res and REDIRECT[res.status] then return follow(c, method, url, opts, res) end
  return res, err, code
end

---------------------------------------------------------------------------------------------
-- The API

-- Argument errors, reported at the caller of the API function (level 3).
local function bad_arg(n, fname, want, v)
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, want, type(v)), 3)
end

local function request_table(c, opts, fname)
  if type(opts) ~= "table" then bad_arg(1, fname, "table", opts) end
  local url, method = opts.url, opts.method or "GET"
  if type(url) ~= "string" then
    error(("bad argument #1 to '%s' (field 'url' must be a string, got %s)")
          :format(fname, type(url)), 3)
  end
  if type(method) ~= "string" then
    error(("bad argument #1 to '%s' (field 'method' must be a string)"):format(fname), 3)
  end
  return request(c, method, url, opts)
end

--- http.get(url [, opts]) -> response, or nil, "ENAME: message", "ENAME". Waits.
-- The hot path of a crawl: checks inline and one call into C.
function M.get(url, opts)
  if type(url) ~= "string" then bad_arg(1, "http.get", "URL string", url) end
  if opts ~= nil and type(opts) ~= "table" then bad_arg(2, "http.get", "table", opts) end
  local res, err, code = send(default, "GET", url, opts)
  if res and REDIRECT[res.status] then return follow(default, "GET", url, opts, res) end
  return res, err, code
end

--- http.request{url = ..., method = "GET", headers, body, ...} -> response or fail triple.
function M.request(opts)
  return request_table(default, opts, "http.request")
end

--- http.client([opts]) -> a client with its own defaults, limits and connection pool.
function M.client(opts)
  if opts ~= nil and type(opts) ~= "table" then bad_arg(1, "http.client", "table", opts) end
  return core.new(opts)
end

--- http.header_values(headers, name) -> the list of values a header came with.
M.header_values = core.header_values

--- client:get(url [, opts]) -> response or fail triple. Waits.
function methods.get(c, url, opts)
  if type(url) ~= "string" then bad_arg(1, "client:get", "URL string", url) end
  if opts ~= nil and type(opts) ~= "table" then bad_arg(2, "client:get", "table", opts) end
  local res, err, code = send(c, "GET", url, opts)
  if res and REDIRECT[res.status] then return follow(c, "GET", url, opts, res) end
  return res, err, code
end

--- client:request{url = ..., method = ..., ...} -> response or fail triple. Waits.
function methods.request(c, opts)
  return request_table(c, opts, "client:request")
end

return M
