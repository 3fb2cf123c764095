-- client_header_ctl_spec.lua: issue 9, "the client sending header values with control
-- bytes". Nothing a script passes can split a request or smuggle a header: header values
-- with a control byte other than HTAB are refused (an argument error, like a bad header
-- name), in per-request headers, lists and the client's defaults; methods must be tokens;
-- targets are percent-encoded; an IPv6 host may hold only an address (no zone id, which
-- went into the Host header as it was).
local http = require "sluice.http"
local W = require "spec.http_wire"

-- A raw loopback server recording each request's head as received, byte for byte (in
-- srv.heads).
local function recorder()
  return W.raw_server(function(sock)
    sock:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
  end)
end

describe("regress: control bytes in what the client sends", function()
  local client

  after_each(function()
    if client then client:close() end
    client = nil
  end)

  it("refuses header values with control bytes, sending nothing", function()
    local srv = recorder()
    client = http.client()
    local bad = {"a\1b", "a\0b", "a\rb", "a\nb", "a\r\nX-Injected: 1", "\27[31m", "del\127",
                 "tail\r\n"}
    for _, v in ipairs(bad) do
      local ok, err = pcall(client.get, client, srv.url, {headers = {["X-Value"] = v}})
      assert.is_false(ok, ("%q was accepted"):format(v))
      assert.matches("header 'X-Value' has a control character in its value", err, 1, true)
      ok, err = pcall(client.get, client, srv.url, {headers = {["X-List"] = {"fine", v}}})
      assert.is_false(ok, ("%q was accepted in a list"):format(v))
      ok = pcall(http.request, {url = srv.url, method = "POST", body = "x",
                                headers = {Cookie = v}})
      assert.is_false(ok, ("%q was accepted by http.request"):format(v))
    end
    assert.equals(0, #srv.heads)
  end)

  it("refuses them in a client's default headers", function()
    for _, v in ipairs({"a\1b", "a\r\nX-Injected: 1", "x\127"}) do
      local ok, err = pcall(http.client, {headers = {Authorization = v}})
      assert.is_false(ok, ("%q was accepted"):format(v))
      assert.matches("header 'Authorization' has a control character in its value", err, 1,
                     true)
    end
  end)

  it("sends HTAB and bytes above 0x7f as they are", function()
    local srv = recorder()
    client = http.client{headers = {["X-Default"] = "d\te"}}
    assert.equals("ok", assert(client:get(srv.url, {headers = {["X-Tab"] = "a\tb",
                                                               ["X-Utf8"] = "caf\195\169"}})).body)
    local h = srv.heads[1]
    assert.truthy(h:find("\r\nX-Tab: a\tb\r\n", 1, true))
    assert.truthy(h:find("\r\nX-Utf8: caf\195\169\r\n", 1, true))
    assert.truthy(h:find("\r\nX-Default: d\te\r\n", 1, true))
  end)

  it("refuses bad names and methods, and encodes control bytes in the target", function()
    local srv = recorder()
    client = http.client()
    for _, name in ipairs({"X Bad", "X:Bad", "X\r\nBad", "", "X\0"}) do
      assert.is_false(pcall(client.get, client, srv.url, {headers = {[name] = "v"}}))
      assert.is_false(pcall(http.client, {headers = {[name] = "v"}}))
    end
    for _, m in ipairs({"GET / HTTP/1.1\r\nX: y\r\n\r\nGET", "GET\0", "G T", ""}) do
      assert.is_false(pcall(client.request, client, {url = srv.url, method = m}))
    end
    assert.equals(0, #srv.heads)
    assert(client:get(srv.url .. "a\r\nX-Injected: 1\0\1 b"))
    assert.equals(1, #srv.heads)
    local line = srv.heads[1]:match("^[^\r\n]*")
    assert.equals("GET /a%0D%0AX-Injected:%201%00%01%20b HTTP/1.1", line)
    assert.is_nil(srv.heads[1]:find("X-Injected: 1", 1, true))
  end)

  it("refuses an IPv6 host with a zone id or other bytes", function()
    local srv = recorder()
    local port = srv.port
    for _, host in ipairs({"[::1%\r\nX-Injected: 1]", "[::1%eth0]", "[::1%25lo]",
                           "[::1 ]", "[::g]"}) do
      local res, err, code = http.get("http://" .. host .. ":" .. port .. "/",
                                      {timeout = 2})
      assert.is_nil(res, host .. " was accepted")
      assert.equals("EINVAL", code, err)
    end
    assert.equals(0, #srv.heads)
  end)
end)
