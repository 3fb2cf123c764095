-- http_client_spec.lua: sluice's HTTP/1.1 client (engine/http_client*.c, engine/dns.c,
-- lua/sluice/http/client.lua) against loopback servers the spec starts with sluice.tcp: well
-- behaved ones for the features, broken ones for the failures, and the pool's state after.
local sl = require "sluice"
local tcp = require "sluice.tcp"
local http = require "sluice.http"
local H = require "spec.helpers"

local REASONS = {[200] = "OK", [204] = "No Content", [301] = "Moved Permanently",
  [302] = "Found", [303] = "See Other", [304] = "Not Modified", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect", [404] = "Not Found"}

-- Reads HTTP requests from a server-side socket (keeps what it read past each one).
local function reader(sock)
  local buf = ""
  local R = {}
  local function fill()
    local data = sock:read()
    if not data then return false end
    buf = buf .. data
    return true
  end
  local function need(n)
    while #buf < n do if not fill() then return false end end
    return true
  end
  local function line()
    while not buf:find("\r\n", 1, true) do if not fill() then return nil end end
    local i = buf:find("\r\n", 1, true)
    local l = buf:sub(1, i - 1)
    buf = buf:sub(i + 2)
    return l
  end
  -- The next request as {method, path, headers (lower-case names), body, head}, or nil.
  function R.request()
    while not buf:find("\r\n\r\n", 1, true) do if not fill() then return nil end end
    local i = buf:find("\r\n\r\n", 1, true)
    local head = buf:sub(1, i + 1)
    buf = buf:sub(i + 4)
    local method, path = head:match("^(%S+) (%S+) HTTP/1%.1\r\n")
    local h = {}
    for name, value in head:gmatch("\n([^:\r\n]+): ([^\r\n]*)") do h[name:lower()] = value end
    local body = ""
    if h["content-length"] then
      local n = tonumber(h["content-length"])
      if not need(n) then return nil end
      body, buf = buf:sub(1, n), buf:sub(n + 1)
    elseif h["transfer-encoding"] == "chunked" then
      local parts = {}
      while true do
        local size = tonumber(line() or "", 16)
        if not size then return nil end
        if size == 0 then line() break end
        if not need(size + 2) then return nil end
        parts[#parts + 1] = buf:sub(1, size)
        buf = buf:sub(size + 3)
      end
      body = table.concat(parts)
    end
    return {method = method, path = path, headers = h, body = body, head = head}
  end
  return R
end

-- The bytes of a response; headers is a list of {name, value}. Content-Length is added
-- unless headers has a framing header or body is false (no framing at all).
local function response(status, headers, body)
  local lines = {("HTTP/1.1 %d %s"):format(status, REASONS[status] or "Whatever")}
  local framed = body == false
  for _, h in ipairs(headers or {}) do
    lines[#lines + 1] = h[1] .. ": " .. h[2]
    local n = h[1]:lower()
    if n == "content-length" or n == "transfer-encoding" then framed = true end
  end
  body = body or ""
  if not framed then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
end

-- A loopback server: handler(sock, srv) runs for each connection. srv.conns counts them;
-- srv:close() stops listening and waits until every connection has ended.
local function server(handler)
  local srv = {conns = 0, active = 0, idle = sl.event(), requests = {}}
  srv.idle:set()
  srv.listener = assert(tcp.listen("127.0.0.1", 0, function(sock)
    srv.conns = srv.conns + 1
    srv.active = srv.active + 1
    srv.idle:clear()
    local ok, err = pcall(handler, sock, srv)
    srv.active = srv.active - 1
    if srv.active == 0 then srv.idle:set() end
    if not ok then error(err, 0) end
  end))
  srv.port = srv.listener:port()
  srv.url = "http://127.0.0.1:" .. srv.port
  function srv.close()
    srv.listener:close()
    assert(srv.idle:wait(3), "the server's connections did not end")
  end
  return srv
end

-- A keep-alive server answering each request with route(req, srv) -> status, headers,
-- body (or a raw string to send as it is). Requests are recorded in srv.requests.
local function app(route)
  return server(function(sock, srv)
    local R = reader(sock)
    while true do
      local req = R.request()
      if not req then return end
      srv.requests[#srv.requests + 1] = req
      local status, headers, body = route(req, srv, sock)
      if status == nil then return end
      local bytes = type(status) == "string" and status or response(status, headers, body)
      if not sock:write(bytes) then return end
    end
  end)
end

local function hello(req)
  return 200, {{"Content-Type", "text/plain"}}, "hello " .. req.path
end

local fails = H.fails

local function elapsed(fn)
  local t0 = sl.now()
  local a, b, c = fn()
  return sl.now() - t0, a, b, c
end

describe("http client", function()
  local srv, client

  after_each(function()
    if client then client:close() end
    if srv then srv.close() end
    srv, client = nil, nil
  end)

  describe("responses", function()
    it("has status, reason, case-insensitive headers, body, url and timings", function()
      srv = app(hello)
      client = http.client()
      local res = assert(client:get(srv.url .. "/a?b=1#frag"))
      assert.equals(200, res.status)
      assert.equals("OK", res.reason)
      assert.equals("hello /a?b=1", res.body)
      assert.equals("text/plain", res.headers["content-type"])
      assert.equals("text/plain", res.headers["Content-Type"])
      assert.equals("text/plain", res.headers.CONTENT_TYPE or res.headers["CONTENT-TYPE"])
      assert.equals("12", res.headers["content-length"])
      assert.equals(srv.url .. "/a?b=1#frag", res.url)
      assert.equals(0, res.redirects)
      for _, k in ipairs({"dns", "connect", "first_byte", "total"}) do
        assert.is_number(res.timings[k])
        assert.is_true(res.timings[k] >= 0 and res.timings[k] < 2)
      end
      assert.is_true(res.timings.total >= res.timings.first_byte)
      local req = srv.requests[1]
      assert.equals("GET", req.method)
      assert.equals("127.0.0.1:" .. srv.port, req.headers.host)
      assert.equals("gzip, deflate, br, zstd", req.headers["accept-encoding"])
      assert.equals("*/*", req.headers.accept)
    end)

    it("keeps repeated headers: joined in headers, listed by http.header_values", function()
      srv = app(function()
        return 200, {{"Set-Cookie", "a=1; Path=/"}, {"X-One", "1"}, {"set-cookie", "b=2"},
                     {"SET-COOKIE", "c=3"}}, ""
      end)
      client = http.client()
      local res = assert(client:get(srv.url))
      assert.equals("a=1; Path=/, b=2, c=3", res.headers["set-cookie"])
      assert.same({"a=1; Path=/", "b=2", "c=3"},
                  http.header_values(res.headers, "Set-Cookie"))
      assert.same({"1"}, http.header_values(res.headers, "x-one"))
      assert.same({}, http.header_values(res.headers, "x-none"))
      local names = {}
      for k in pairs(res.headers) do names[#names + 1] = k end
      table.sort(names)
      assert.same({"content-length", "set-cookie", "x-one"}, names)
    end)

    it("reads chunked and close-delimited bodies", function()
      srv = server(function(sock)
        local req = reader(sock).request()
        if req.path == "/chunked" then
          sock:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
          sock:write("5\r\nhello\r\n")
          sl.sleep(0.01)
          sock:write("1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n")
        else
          sock:write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil")
          sl.sleep(0.01)
          sock:write(" the end")
        end
      end)
      client = http.client()
      local res = assert(client:get(srv.url .. "/chunked"))
      assert.equals("hello world!", res.body)
      res = assert(client:get(srv.url .. "/close"))
      assert.equals("until the end", res.body)
    end)

    it("decodes gzip and deflate (zlib-wrapped or raw); decompress = false keeps the bytes",
       function()
      -- ("sluice "):rep(1000) compressed three ways (made with Python's gzip and zlib)
      local text = ("sluice "):rep(1000)
      local files = {}
      for kind, name in pairs({gzip = "body.gz", zlib = "body.zlib", raw = "body.deflate"}) do
        files[kind] = H.read_file("spec/fixtures/http/" .. name)
        assert.is_true(#files[kind] > 0 and #files[kind] < 200)
      end
      srv = app(function(req)
        local kind = req.path:sub(2)
        if kind == "bad" then
          return 200, {{"Content-Encoding", "gzip"}}, "not gzip at all"
        end
        local enc = kind == "gzip" and "gzip" or "deflate"
        return 200, {{"Content-Encoding", enc}}, files[kind]
      end)
      client = http.client()
      for _, kind in ipairs({"gzip", "zlib", "raw"}) do
        local res = assert(client:get(srv.url .. "/" .. kind))
        assert.equals(#text, #res.body, kind)
        assert.equals(text, res.body)
      end
      local raw = assert(client:get(srv.url .. "/gzip", {decompress = false}))
      assert.equals(files.gzip, raw.body)
      fails("EFBIG", client:get(srv.url .. "/gzip", {max_body = 1000}))
      fails("EPROTO", client:get(srv.url .. "/bad"))
      local got = {}
      local function sink(piece) got[#got + 1] = piece end
      assert(client:get(srv.url .. "/raw", {sink = sink}))
      assert.equals(text, table.concat(got))
      fails("EPROTO", client:get(srv.url .. "/bad", {sink = function() end}))
      assert.equals(200, assert(client:get(srv.url .. "/zlib")).status)
    end)

    it("gives HEAD, 204 and 304 responses no body", function()
      srv = app(function(req)
        if req.path == "/204" then return 204, {}, false end
        if req.path == "/304" then return 304, {{"ETag", "x"}}, false end
        return 200, {{"Content-Length", "11"}}, req.method == "HEAD" and "" or "hello world"
      end)
      client = http.client()
      local res = assert(client:request{method = "HEAD", url = srv.url .. "/"})
      assert.equals(200, res.status)
      assert.equals("", res.body)
      assert.equals("11", res.headers["content-length"])
      assert.equals("", assert(client:get(srv.url .. "/204")).body)
      assert.equals(304, assert(client:get(srv.url .. "/304")).status)
      assert.equals("hello world", assert(client:get(srv.url .. "/")).body)
      assert.equals(1, srv.conns)
    end)

    it("streams a body to opts.sink in order, leaving res.body nil", function()
      local piece = ("x"):rep(100000)
      srv = server(function(sock)
        reader(sock).request()
        sock:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i = 1, 20 do sock:write(("%x\r\n%s%02d\r\n"):format(#piece + 2, piece, i)) end
        sock:write("0\r\n\r\n")
      end)
      client = http.client()
      local got, calls = {}, 0
      local res = assert(client:get(srv.url, {sink = function(chunk)
        calls = calls + 1
        got[#got + 1] = chunk
        if calls == 2 then sl.sleep(0.01) end      -- a sink may wait
      end}))
      assert.is_nil(res.body)
      local all = table.concat(got)
      assert.equals(20 * (#piece + 2), #all)
      for i = 1, 20 do
        local at = i * (#piece + 2)
        assert.equals(("%02d"):format(i), all:sub(at - 1, at))
      end
      assert.is_true(calls >= 2)
    end)
  end)

  describe("requests", function()
    it("sends string bodies with Content-Length and function bodies chunked", function()
      srv = app(function(req) return 200, {}, req.method .. " " .. req.body end)
      client = http.client()
      local res = assert(client:request{method = "POST", url = srv.url .. "/s", body = "abc"})
      assert.equals("POST abc", res.body)
      assert.equals("3", srv.requests[1].headers["content-length"])
      local big = ("z"):rep(100000)
      res = assert(client:request{method = "PUT", url = srv.url, body = big})
      assert.equals("PUT " .. big, res.body)
      local parts = {"one ", "", "two ", big}
      local i = 0
      res = assert(client:request{method = "POST", url = srv.url, body = function()
        i = i + 1
        if i == 2 then sl.sleep(0.01) end
        return parts[i]
      end})
      assert.equals("POST one two " .. big, res.body)
      assert.equals("chunked", srv.requests[3].headers["transfer-encoding"])
      assert.is_nil(srv.requests[3].headers["content-length"])
      res = assert(client:request{method = "POST", url = srv.url})
      assert.equals("0", srv.requests[4].headers["content-length"])
      assert.equals(1, srv.conns)
    end)

    it("sends request headers over the client's defaults; false removes one", function()
      srv = app(function() return 200, {}, "" end)
      client = http.client{headers = {["User-Agent"] = "spec/1", ["X-Default"] = "d",
                                      Accept = false}}
      assert(client:get(srv.url, {headers = {["x-default"] = "mine", ["X-Multi"] = {"1", "2"},
                                             ["Accept-Encoding"] = false, ["X-Num"] = 7}}))
      local h = srv.requests[1].headers
      assert.equals("spec/1", h["user-agent"])
      assert.equals("mine", h["x-default"])
      assert.equals("7", h["x-num"])
      assert.is_nil(h.accept)
      assert.is_nil(h["accept-encoding"])
      local n = 0
      for _ in srv.requests[1].head:gmatch("\nX%-Multi: ") do n = n + 1 end
      assert.equals(2, n)
      assert(client:get(srv.url))
      assert.equals("d", srv.requests[2].headers["x-default"])
      assert.has_error(function() client:get(srv.url, {headers = {["X-Bad"] = "a\r\nb"}}) end)
      assert.has_error(function() client:get(srv.url, {headers = {["bad name"] = "a"}}) end)
    end)

    it("http.get and http.request use the default client", function()
      srv = app(function(req)
        return 200, {{"Connection", "close"}}, req.method .. " " .. req.body
      end)
      assert.equals("GET ", assert(http.get(srv.url)).body)
      assert.equals("PATCH x", assert(http.request{url = srv.url, method = "PATCH",
                                                    body = "x"}).body)
    end)

    it("raises on misuse", function()
      assert.has_error(function() http.get(nil) end)
      assert.has_error(function() http.get("http://x/", "opts") end)
      assert.has_error(function() http.request("http://x/") end)
      assert.has_error(function() http.request{method = "GET"} end)
      assert.has_error(function() http.get("http://127.0.0.1:1/", {timeout = -1}) end)
      assert.has_error(function() http.get("http://127.0.0.1:1/", {body = 42}) end)
      assert.has_error(function() http.request{url = "http://x/", method = "G T"} end)
      assert.has_error(function() http.client{max_per_host = 0} end)
      assert.has_error(function() http.client{max_headers = -1} end)
      assert.has_error(function() http.get("http://127.0.0.1:1/", {max_headers = 1.5}) end)
      local c = http.client()
      c:close()
      c:close()
      assert.has_error(function() c:get("http://127.0.0.1:1/") end)
    end)
  end)

  describe("the pool", function()
    it("reuses one connection for requests one after another", function()
      srv = app(hello)
      client = http.client()
      for i = 1, 5 do
        assert.equals("hello /" .. i, assert(client:get(srv.url .. "/" .. i)).body)
      end
      assert.equals(1, srv.conns)
      local st = client:stats()
      assert.equals(5, st.requests)
      assert.equals(4, st.reused)
      assert.equals(1, st.open)
      assert.equals(1, st.idle)
    end)

    it("opens at most max_per_host connections; the others wait for one", function()
      srv = app(function(req) sl.sleep(0.02) return hello(req) end)
      client = http.client{max_per_host = 2}
      local list = {}
      for i = 1, 6 do
        list[i] = function() return assert(client:get(srv.url .. "/" .. i)).body end
      end
      local res = sl.gather(list)
      for i = 1, 6 do assert.equals("hello /" .. i, res[i]) end
      assert.equals(2, srv.conns)
      assert.equals(2, client:stats().idle)
    end)

    it("keeps at most max_idle idle connections, closing the longest idle first", function()
      srv = app(function(req) sl.sleep(0.02) return hello(req) end)
      local other = app(hello)
      client = http.client{max_idle = 2}
      local list = {}
      for i = 1, 4 do list[i] = function() return assert(client:get(srv.url)).status end end
      sl.gather(list)
      assert.equals(4, srv.conns)
      assert.equals(2, client:stats().idle)
      assert(client:get(other.url))
      local st = client:stats()
      assert.equals(2, st.idle)
      assert.equals(2, st.open)
      assert(client:get(other.url))
      assert.equals(1, other.conns)
      client:close()
      other.close()
    end)

    it("closes idle connections after keepalive, and on Connection: close", function()
      srv = app(function(req)
        if req.path == "/close" then return 200, {{"Connection", "close"}}, "" end
        return 200, {}, ""
      end)
      client = http.client{keepalive = 0.1}
      assert(client:get(srv.url))
      assert.equals(1, client:stats().idle)
      sl.sleep(0.3)
      assert.equals(0, client:stats().open)
      assert(srv.idle:wait(1))
      assert(client:get(srv.url .. "/close"))
      assert.equals(0, client:stats().open)
      assert(client:get(srv.url))
      assert.equals(3, srv.conns)
    end)

    it("does not keep the process alive with idle connections", function()
      srv = app(hello)
      local script = H.tmpfile(([[
        local http = require "sluice.http"
        local res = assert(http.get("%s/x"))
        print(res.status, res.body)
      ]]):format(srv.url))
      -- The child talks to this process's server, so it runs in the background while
      -- this task waits for its output file.
      local out = os.tmpname()
      H.sh(("(%s %s > %s 2>&1; echo \"exit=$?\" >> %s) > /dev/null 2>&1 &"):format(H.bin,
        H.quote(script), H.quote(out), H.quote(out)))
      local t0 = sl.now()
      while not H.read_file(out):find("exit=") and sl.now() - t0 < 4 do sl.sleep(0.02) end
      local text = H.read_file(out)
      os.remove(script)
      os.remove(out)
      assert.equals("200\thello /x\nexit=0\n", text)
      assert.is_true(sl.now() - t0 < 4)
    end)

    it("resolves names once through the DNS cache, trying each address", function()
      srv = app(hello)
      client = http.client()
      local before = client:stats()
      local url = "http://localhost:" .. srv.port
      local list = {}
      for i = 1, 3 do
        list[i] = function() return assert(client:get(url .. "/" .. i)).body end
      end
      assert.same({"hello /1", "hello /2", "hello /3", n = 3}, sl.gather(list))
      local c2 = http.client()     -- a pool of its own, so it resolves again: from the cache
      assert.equals("hello /4", assert(c2:get(url .. "/4")).body)
      c2:close()
      local after = client:stats()
      assert.is_true(after.dns_lookups - before.dns_lookups <= 1)
      assert.is_true(after.dns_hits > before.dns_hits)
      assert.equals("localhost:" .. srv.port, srv.requests[1].headers.host)
    end)

    it("notices a kept-alive connection the server closed while it was idle", function()
      srv = server(function(sock)
        local req = reader(sock).request()
        sock:write(response(200, {}, "once " .. req.path))
      end)
      client = http.client()
      assert.equals("once /1", assert(client:get(srv.url .. "/1")).body)
      local t0 = sl.now()
      while client:stats().open > 0 and sl.now() - t0 < 2 do sl.sleep(0.01) end
      assert.equals(0, client:stats().open)
      assert.equals("once /2", assert(client:get(srv.url .. "/2")).body)
      assert.equals(0, client:stats().retries)
    end)

    it("does not reuse a connection that sent bytes nobody asked for", function()
      srv = app(function(req)
        if req.path == "/extra" then
          return response(200, {}, "ok") .. "HTTP/1.1 200 OK\r\n"
        end
        return 200, {}, "ok"
      end)
      client = http.client()
      assert.equals("ok", assert(client:get(srv.url .. "/extra")).body)
      assert.equals("ok", assert(client:get(srv.url .. "/")).body)
      assert.equals(2, srv.conns)
    end)

    it("skips interim 1xx responses", function()
      srv = app(function()
        return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
          .. response(200, {{"X-Final", "yes"}}, "final")
      end)
      client = http.client()
      local res = assert(client:get(srv.url))
      assert.equals(200, res.status)
      assert.equals("final", res.body)
      assert.equals("yes", res.headers["x-final"])
      assert.is_nil(res.headers.link)
      assert.equals(1, srv.conns)
    end)

    it("client:close() fails the requests waiting for a connection, lets others finish",
       function()
      srv = app(function() sl.sleep(0.1) return 200, {}, "done" end)
      client = http.client{max_per_host = 1}
      local a = sl.spawn(function() return client:get(srv.url) end)
      local b = sl.spawn(function() return client:get(srv.url) end)
      sl.sleep(0.02)
      client:close()
      local res_b, err_b, code_b = b:join()
      fails("ECANCELED", res_b, err_b, code_b)
      assert.equals("done", assert(a:join()).body)
      assert.has_error(function() client:get(srv.url) end,
                       "attempt to use a closed HTTP client")
      client = nil
    end)
  end)

  describe("redirects", function()
    it("follows 301, 302 and 303 as GET without body, 307 and 308 with both", function()
      srv = app(function(req)
        local code = tonumber(req.path:match("^/r(%d+)"))
        if code then return code, {{"Location", "/final?from=" .. code}}, "moved" end
        return 200, {}, req.method .. " " .. req.path .. " " .. req.body
      end)
      client = http.client()
      for _, code in ipairs({301, 302, 303}) do
        local res = assert(client:request{method = "POST", url = srv.url .. "/r" .. code,
                                           body = "data"})
        assert.equals("GET /final?from=" .. code .. " ", res.body)
        assert.equals(1, res.redirects)
        assert.equals(srv.url .. "/final?from=" .. code, res.url)
      end
      for _, code in ipairs({307, 308}) do
        local res = assert(client:request{method = "PUT", url = srv.url .. "/r" .. code,
                                           body = "data"})
        assert.equals("PUT /final?from=" .. code .. " data", res.body)
      end
      local res = assert(client:request{method = "HEAD", url = srv.url .. "/r302"})
      assert.equals(200, res.status)
      assert.equals("HEAD", srv.requests[#srv.requests].method)
      -- A sink gets the body at the end of the redirects only.
      local pieces = {}
      local function sink(p) pieces[#pieces + 1] = p end
      res = assert(client:get(srv.url .. "/r301", {sink = sink}))
      assert.equals("GET /final?from=301 ", table.concat(pieces))
      assert.equals(1, res.redirects)
    end)

    it("resolves relative locations and counts hops; max_redirects bounds them", function()
      srv = app(function(req)
        local n = tonumber(req.path:match("/hop/(%d+)$"))
        if n and n > 0 then return 302, {{"Location", "../hop/" .. (n - 1)}}, "" end
        if req.path == "/loop" then return 301, {{"Location", "/loop"}}, "" end
        return 200, {}, "landed " .. req.path
      end)
      client = http.client{max_redirects = 4}
      local res = assert(client:get(srv.url .. "/a/hop/3"))
      assert.equals("landed /a/hop/0", res.body)
      assert.equals(3, res.redirects)
      fails("ELOOP", client:get(srv.url .. "/a/hop/5"))
      fails("ELOOP", http.get(srv.url .. "/loop", {headers = {Connection = "close"}}))
      res = assert(client:get(srv.url .. "/a/hop/5", {max_redirects = 0}))
      assert.equals(302, res.status)
      assert.equals(0, res.redirects)
      res = assert(client:get(srv.url .. "/a/hop/5", {max_redirects = 10}))
      assert.equals(5, res.redirects)
    end)

    it("drops Authorization and Cookie when the redirect leaves the origin", function()
      local other = app(function() return 200, {}, "other" end)
      srv = app(function(req)
        if req.path == "/away" then return 302, {{"Location", other.url .. "/x"}}, "" end
        if req.path == "/here" then return 302, {{"Location", "/x"}}, "" end
        return 200, {}, "here"
      end)
      client = http.client()
      local headers = {Authorization = "Bearer s", Cookie = "c=1", ["X-Keep"] = "k",
                       Host = "127.0.0.1:" .. srv.port}
      assert.equals("here", assert(client:get(srv.url .. "/here", {headers = headers})).body)
      local last = srv.requests[#srv.requests].headers
      assert.equals("Bearer s", last.authorization)
      assert.equals("c=1", last.cookie)
      assert.equals("other", assert(client:get(srv.url .. "/away", {headers = headers})).body)
      local got = other.requests[1].headers
      assert.is_nil(got.authorization)
      assert.is_nil(got.cookie)
      assert.equals("k", got["x-keep"])
      assert.equals("127.0.0.1:" .. other.port, got.host)
      client:close()
      other.close()
    end)

    it("reports a redirect to a scheme it cannot fetch as EINVAL", function()
      srv = app(function() return 301, {{"Location", "ftp://example.com/"}}, "" end)
      client = http.client()
      local err = fails("EINVAL", client:get(srv.url))
      assert.equals("EINVAL: unsupported URL scheme 'ftp' (only http:// and https:// are)", err)
    end)
  end)

  describe("failures", function()
    it("rejects URLs it cannot fetch with a fail triple", function()
      fails("EINVAL", http.get("ftp://example.com/"))
      fails("EINVAL", http.get("example.com/path"))
      fails("EINVAL", http.get("http://exa mple.com/"))
      fails("EINVAL", http.get("http://user:pw@example.com/"))
      fails("EINVAL", http.get("http://example.com:99999/"))
      fails("EINVAL", http.get("http:///path"))
      fails("EINVAL", http.get("http://[::1/"))
    end)

    it("reports a refused connection, and an unknown host", function()
      local l = assert(tcp.listen("127.0.0.1", 0, function() end))
      local port = l:port()
      l:close()
      client = http.client()
      local err = fails("ECONNREFUSED", client:get("http://127.0.0.1:" .. port .. "/"))
      assert.matches("127.0.0.1:" .. port, err, 1, true)
      local _, _, code = client:get("http://no-such-host.invalid/")
      assert.matches("^E", code)
      assert.equals(0, client:stats().open)
    end)

    -- Each broken server answers the first connection badly and the second one well, so
    -- the test checks that the same client goes on working.
    local function broken(bad)
      return server(function(sock, s)
        local req = reader(sock).request()
        if s.conns == 1 then return bad(sock, req) end
        sock:write(response(200, {}, "fine"))
      end)
    end

    local function still_works()
      local res = assert(client:get(srv.url .. "/again"))
      assert.equals("fine", res.body)
      assert.equals(0, client:stats().open - client:stats().idle)
    end

    it("EPROTO for a garbage status line", function()
      srv = broken(function(sock) sock:write("HTTP/1.1 OK 200\r\n\r\n") end)
      client = http.client()
      local t, res, err, code = elapsed(function() return client:get(srv.url) end)
      local msg = fails("EPROTO", res, err, code)
      assert.matches("invalid HTTP response", msg, 1, true)
      assert.is_true(t < 1)
      still_works()
    end)

    it("ECONNRESET for a body shorter than its Content-Length", function()
      srv = broken(function(sock)
        sock:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
      end)
      client = http.client()
      local msg = fails("ECONNRESET", client:get(srv.url))
      assert.matches("after 3 of 10 body bytes", msg, 1, true)
      still_works()
    end)

    it("ECONNRESET for a connection closed in the middle of the headers", function()
      srv = broken(function(sock) sock:write("HTTP/1.1 200 OK\r\nContent-Le") end)
      client = http.client()
      local msg = fails("ECONNRESET", client:get(srv.url))
      assert.matches("middle of the response headers", msg, 1, true)
      still_works()
    end)

    it("EMSGSIZE for a 10 MB header, quickly", function()
      srv = broken(function(sock)
        sock:write("HTTP/1.1 200 OK\r\nX-Huge: ")
        local block = ("h"):rep(1024 * 1024)
        for _ = 1, 10 do if not sock:write(block) then return end end
        sock:write("\r\n\r\n")
      end)
      client = http.client()
      local t, res, err, code = elapsed(function() return client:get(srv.url) end)
      fails("EMSGSIZE", res, err, code)
      assert.is_true(t < 1)
      still_works()
    end)

    it("EFBIG for an endless chunked body past max_body", function()
      srv = broken(function(sock)
        sock:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        local chunk = ("%x\r\n%s\r\n"):format(65536, ("c"):rep(65536))
        while sock:write(chunk) do end
      end)
      client = http.client{max_body = 1024 * 1024}
      local msg = fails("EFBIG", client:get(srv.url))
      assert.matches("max_body (1048576 bytes)", msg, 1, true)
      fails("EFBIG", client:get(srv.url .. "/again", {max_body = 2}))
      still_works()
    end)

    it("ETIMEDOUT when the headers come and then nothing (idle_timeout)", function()
      srv = broken(function(sock)
        sock:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
        sock:read()            -- until the client gives up and closes
      end)
      client = http.client{idle_timeout = 0.2}
      local t, res, err, code = elapsed(function() return client:get(srv.url) end)
      local msg = fails("ETIMEDOUT", res, err, code)
      assert.matches("nothing received", msg, 1, true)
      assert.is_true(t >= 0.19 and t < 1.5)
      still_works()
    end)

    it("ETIMEDOUT when no response comes (first_byte_timeout) or the call is too long",
       function()
      srv = server(function(sock, s)
        local R = reader(sock)
        local req = R.request()
        if req.path == "/silent" then sock:read() return end
        if req.path == "/trickle" then
          sock:write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
          for _ = 1, 100 do
            sl.sleep(0.05)
            if not sock:write("x") then return end
          end
          return
        end
        sock:write(response(200, {}, "fine"))
      end)
      client = http.client()
      local t, res, err, code = elapsed(function()
        return client:get(srv.url .. "/silent", {first_byte_timeout = 0.2})
      end)
      assert.matches("no response", fails("ETIMEDOUT", res, err, code), 1, true)
      assert.is_true(t >= 0.19 and t < 1.5)
      t, res, err, code = elapsed(function()
        return client:get(srv.url .. "/trickle", {timeout = 0.3})
      end)
      assert.matches("timed out after 0.3 s", fails("ETIMEDOUT", res, err, code), 1, true)
      assert.is_true(t >= 0.29 and t < 1.5)
      still_works()
    end)

    it("retries an idempotent request once when a kept-alive connection was closed",
       function()
      -- The first connection answers one request, then closes when the second arrives.
      srv = server(function(sock, s)
        local R = reader(sock)
        local req = R.request()
        if not req then return end
        sock:write(response(200, {}, "first " .. req.method))
        req = R.request()
        if s.conns == 1 then return end
        while req do
          sock:write(response(200, {}, "fresh " .. req.method))
          req = R.request()
        end
      end)
      client = http.client()
      assert.equals("first GET", assert(client:get(srv.url)).body)
      assert.equals("first GET", assert(client:get(srv.url)).body)
      assert.equals(1, client:stats().retries)
      assert.equals(2, srv.conns)
      -- A POST is not retried.
      assert.equals("fresh GET", assert(client:get(srv.url)).body)
      client:close()
      srv.close()
      srv = server(function(sock, s)
        local R = reader(sock)
        local req = R.request()
        sock:write(response(200, {}, "first " .. req.method))
        if s.conns == 1 then R.request() return end
        sock:write(response(200, {}, "fresh"))
      end)
      client = http.client()
      assert(client:request{method = "POST", url = srv.url, body = "1"})
      fails("ECONNRESET", client:request{method = "POST", url = srv.url, body = "2"})
      assert.equals(0, client:stats().retries)
    end)

    it("closes the connection of a cancelled request, and goes on", function()
      local release = sl.event()
      srv = server(function(sock, s)
        local R = reader(sock)
        local req = R.request()
        if s.conns == 1 then
          sock:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
          local data = sock:read()           -- nil: the client closed the connection
          s.after_cancel = data
          release:set()
          return
        end
        while req do
          sock:write(response(200, {}, "fine"))
          req = R.request()
        end
      end)
      client = http.client()
      local t = sl.spawn(function() return client:get(srv.url) end)
      sl.sleep(0.1)
      assert.equals(1, client:stats().open)
      t:cancel()
      assert.is_true(t:wait(1))
      assert.equals("cancelled", t:status())
      assert(release:wait(1))
      assert.is_nil(srv.after_cancel)
      assert.equals(0, client:stats().open)
      still_works()
      -- A cancellation while waiting for a connection slot leaves the pool consistent too.
      local c2 = http.client{max_per_host = 1}
      local slow = app(function() sl.sleep(0.1) return 200, {}, "slow" end)
      local a = sl.spawn(function() return c2:get(slow.url) end)
      local b = sl.spawn(function() return c2:get(slow.url) end)
      sl.sleep(0.02)
      b:cancel()
      assert.equals("slow", a:join().body)
      assert.equals("cancelled", b:status())
      assert.equals("slow", assert(c2:get(slow.url)).body)
      assert.equals(1, slow.conns)
      c2:close()
      slow.close()
    end)

    it("passes on an error raised by the sink or the body function", function()
      srv = app(function(req) return 200, {}, ("b"):rep(1000) .. req.body end)
      client = http.client()
      assert.has_error(function()
        client:get(srv.url, {sink = function() error("sink says no", 0) end})
      end, "sink says no")
      assert.has_error(function()
        local function body() error("no body", 0) end
        client:request{method = "POST", url = srv.url, body = body}
      end, "no body")
      assert.has_error(function()
        client:request{method = "POST", url = srv.url, body = function() return 42 end}
      end)
      assert.equals(0, client:stats().open - client:stats().idle)
      assert.equals(("b"):rep(1000), assert(client:get(srv.url)).body)
    end)
  end)
end)
