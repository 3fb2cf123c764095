-- client_review_spec.lua: issue 9, defects a review of the hardened HTTP client found.
-- The trailer section of a chunked response is held to max_header (it was buffered
-- whatever its size); a gzip body followed by bytes that start with 0x1f but are not a
-- gzip member decodes (it failed with EPROTO); 204 and 304 responses have no body
-- whatever their Content-Length says (the client waited for one); and a request carries
-- exactly one Host line, whoever gave it (a client's default Host was sent besides the
-- one made from the URL).
local http = require "sluice.http"
local H = require "spec.helpers"
local W = require "spec.http_wire"
local fails = H.fails

-- A raw loopback server that keeps its connections: on each, answer(sock, head, n) is
-- called for each request head read (n counts the requests of the server); it returns
-- false to close. s.heads lists the request heads, s.conns counts connections.
local function raw(answer)
  local s
  s = W.raw_server(function(sock, head)
    while head and answer(sock, head, #s.heads) ~= false do head = s:read_head(sock) end
  end)
  return s
end

describe("regress: trailers of a chunked response", function()
  -- A server answering a chunked "ok" whose trailer section (after "0\r\n") is the given
  -- bytes.
  local function chunked(trailer)
    return W.raw_server(function(sock)
      sock:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                 .. "2\r\nok\r\n0\r\n" .. trailer)
    end)
  end

  it("refuses a trailer larger than max_header, without buffering it", function()
    local srv = chunked("X-Trailer: " .. ("a"):rep(1024 * 1024) .. "\r\n\r\n")
    local err = fails("EMSGSIZE", http.get(srv.url, {max_header = 1024}))
    assert.matches("the trailers from 127.0.0.1:%d+ exceed max_header %(1024 bytes%)", err)
  end)

  it("counts the trailers' bytes on the wire, blanks included", function()
    local srv = chunked("X:" .. (" "):rep(2000) .. "v\r\n\r\n")
    fails("EMSGSIZE", http.get(srv.url, {max_header = 1024}))
  end)

  it("allows a trailer section of exactly max_header bytes, apart from the head", function()
    local trailer = "X-T: " .. ("t"):rep(100) .. "\r\n\r\n"
    local srv = chunked(trailer)
    -- the head and the trailer section each fit; together they would not
    local res = assert(http.get(srv.url, {max_header = #trailer}))
    assert.equals("ok", res.body)
    assert.equals(("t"):rep(100), res.trailers["x-t"])   -- kept apart from res.headers
    srv.listener:close()
    srv = chunked("X-T: " .. ("t"):rep(101) .. "\r\n\r\n")
    fails("EMSGSIZE", http.get(srv.url, {max_header = #trailer}))
  end)

  it("counts trailer fields against max_headers", function()
    local lines = {}
    for i = 1, 10 do lines[i] = "X-" .. i .. ": v\r\n" end
    local srv = chunked(table.concat(lines) .. "\r\n")
    local err = fails("EMSGSIZE", http.get(srv.url, {max_headers = 5}))
    assert.matches("max_headers (5 fields)", err, 1, true)
  end)
end)

describe("regress: bytes after a gzip member that start with 0x1f", function()
  local GZ = H.read_file("spec/fixtures/http/body.gz")
  local TEXT = ("sluice "):rep(1000)

  -- A server answering with a chunked gzip body, each piece a chunk written on its own.
  local function gzip(pieces)
    return W.raw_server(function(sock)
      W.write_chunked(sock, pieces, "Content-Encoding: gzip\r\n")
    end)
  end

  local function sunk(url)
    local got = {}
    local res = assert(http.get(url, {sink = function(p) got[#got + 1] = p end}))
    assert.is_nil(res.body)
    return table.concat(got)
  end

  it("ignores trailing garbage starting with 0x1f, buffered or through a sink", function()
    local srv = gzip({GZ .. "\31\0garbage"})
    assert.equals(TEXT, assert(http.get(srv.url)).body)
    assert.equals(TEXT, sunk(srv.url))
    srv.listener:close()
    srv = gzip({GZ, "\31", "\0garbage"})
    assert.equals(TEXT, sunk(srv.url))
    assert.equals(TEXT, assert(http.get(srv.url)).body)
  end)

  it("ignores a lone 0x1f at the very end of the body", function()
    local srv = gzip({GZ .. "\31"})
    assert.equals(TEXT, assert(http.get(srv.url)).body)
    srv.listener:close()
    srv = gzip({GZ, "\31"})
    assert.equals(TEXT, sunk(srv.url))
  end)

  it("still starts the next member when its 1f 8b is split between reads", function()
    local srv = gzip({GZ, "\31", GZ:sub(2)})
    assert.equals(TEXT .. TEXT, sunk(srv.url))
    assert.equals(TEXT .. TEXT, assert(http.get(srv.url)).body)
  end)

  it("ignores everything after trailing garbage, a gzip member included", function()
    local srv = gzip({GZ .. "\31\0" .. GZ})
    assert.equals(TEXT, assert(http.get(srv.url)).body)
  end)
end)

describe("regress: 204 and 304 responses with a Content-Length", function()
  it("reads no body for them and reuses the connection", function()
    local answers = {
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n",
      "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
      "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    }
    local srv = raw(function(sock, _, n) return sock:write(answers[n]) and n < #answers end)
    local client <close> = http.client()
    local want = {304, 204, 204, 200}
    for i = 1, #answers do
      local res = assert(client:get(srv.url, {timeout = 5}))
      assert.equals(want[i], res.status)
      assert.equals(i == #answers and "ok" or "", res.body)
    end
    assert.equals(1, srv.conns)
    assert.equals(3, client:stats().reused)
  end)
end)

describe("regress: one Host line per request", function()
  -- Every Host line of a request head, in order.
  local function hosts(head)
    local found = {}
    for v in head:gmatch("\r\n[Hh][Oo][Ss][Tt]: ([^\r]*)") do found[#found + 1] = v end
    return found
  end

  -- One answer per connection: nothing is left in a pool after a test.
  local OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
  local function ok(sock) sock:write(OK) end

  it("sends a client's default Host instead of the URL's", function()
    local srv = W.raw_server(ok)
    local client <close> = http.client{headers = {Host = "example.test"}}
    assert(client:get(srv.url))
    assert.same({"example.test"}, hosts(srv.heads[1]))
    assert(client:get(srv.url, {headers = {host = "per-request.test"}}))
    assert.same({"per-request.test"}, hosts(srv.heads[2]))
    -- false drops the default: the request gets the Host made from its URL
    assert(client:get(srv.url, {headers = {HOST = false}}))
    assert.same({"127.0.0.1:" .. srv.port}, hosts(srv.heads[3]))
    assert(http.get(srv.url, {headers = {Host = "plain.test"}}))
    assert.same({"plain.test"}, hosts(srv.heads[4]))
  end)

  it("refuses a Host given twice or with a control byte", function()
    local client <close> = http.client()
    local url = "http://127.0.0.1:9/"
    assert.has_error(function() client:get(url, {headers = {Host = {"a", "b"}}}) end,
                     "bad option 'headers' (header 'Host' given more than once)")
    assert.has_error(function() client:get(url, {headers = {Host = "a", host = "b"}}) end)
    assert.has_error(function() client:get(url, {headers = {Host = "a\nb"}}) end)
    assert.has_error(function() http.client{headers = {Host = "a\r\nX-Injected: 1"}} end)
  end)

  it("does not carry a default Host to another origin", function()
    local other = W.raw_server(ok)
    local srv = W.raw_server(function(sock)
      sock:write("HTTP/1.1 302 Found\r\nLocation: " .. other.url .. "\r\n"
                 .. "Content-Length: 0\r\nConnection: close\r\n\r\n")
    end)
    local client <close> = http.client{headers = {Host = "example.test"}}
    assert.equals("ok", assert(client:get(srv.url)).body)
    assert.same({"example.test"}, hosts(srv.heads[1]))
    assert.same({"127.0.0.1:" .. other.port}, hosts(other.heads[1]))
  end)

  it("ignores a client's default Content-Length, as a request's", function()
    local srv = W.raw_server(ok)
    local client <close> = http.client{headers = {["Content-Length"] = "7"}}
    assert(client:request{method = "POST", url = srv.url, body = "abc"})
    local n = select(2, srv.heads[1]:lower():gsub("\r\ncontent%-length:", ""))
    assert.equals(1, n)
    assert.matches("\r\nContent-Length: 3\r\n", srv.heads[1], 1, true)
  end)
end)
