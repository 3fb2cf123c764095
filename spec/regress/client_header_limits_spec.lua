-- client_header_limits_spec.lua: issue 9, defect 7 (client side). Repeated response headers
-- are joined in linear time; max_header counts the head's bytes on the wire (status line,
-- header lines with their CRLF and blanks); max_headers (1000) bounds the number of
-- fields; interim 1xx responses count against both, so an endless stream of them ends.
local sl = require "sluice"
local http = require "sluice.http"
local H = require "spec.helpers"
local W = require "spec.http_wire"
local raw, fails = W.raw_server, H.fails

-- A response head with the given header lines (a list of "Name: value"), no body.
local function head(lines)
  return "HTTP/1.1 200 OK\r\n" .. table.concat(lines, "\r\n") .. "\r\n"
         .. "Content-Length: 0\r\n\r\n"
end

describe("regress: response head limits", function()
  it("joins 100,000 repeats of a header in linear time", function()
    local lines = {}
    for i = 1, 100000 do lines[i] = "a: " .. (i % 10) end
    local bytes = head(lines)
    local srv = raw(function(sock) sock:write(bytes) end)
    local c0 = os.clock()
    local res = assert(http.get(srv.url, {max_headers = 200000, max_header = #bytes,
                                          headers = {Connection = "close"}}))
    local cpu = os.clock() - c0
    assert.equals(200, res.status)
    assert.equals(100000 * 3 - 2, #res.headers.a)
    assert.equals("1, 2, 3", res.headers.a:sub(1, 7))
    local values = http.header_values(res.headers, "a")
    assert.equals(100000, #values)
    assert.equals("0", values[100000])
    -- quadratic joining took over a second here; linear takes a few ms (more under ASan)
    assert.is_true(cpu < 0.4, ("took %.3f s of CPU"):format(cpu))
  end)

  it("counts 65,000 empty headers by their bytes on the wire and their number", function()
    local lines = {}
    for i = 1, 65000 do lines[i] = "a:" end
    local bytes = head(lines)
    local srv = raw(function(sock) sock:write(bytes) end)
    local err = fails("EMSGSIZE", http.get(srv.url, {headers = {Connection = "close"}}))
    assert.matches("max_headers (1000 fields)", err, 1, true)
    err = fails("EMSGSIZE", http.get(srv.url, {max_headers = 100000,
                                               headers = {Connection = "close"}}))
    assert.matches("max_header (65536 bytes)", err, 1, true)
  end)

  it("counts the blanks around a value", function()
    local srv = raw(function(sock)
      sock:write("HTTP/1.1 200 OK\r\nX-Pad:" .. (" "):rep(70000) .. "v\r\n"
                 .. "Content-Length: 2\r\n\r\nok")
    end)
    local err = fails("EMSGSIZE", http.get(srv.url, {headers = {Connection = "close"}}))
    assert.matches("max_header (65536 bytes)", err, 1, true)
  end)

  it("allows a head of exactly max_header bytes and max_headers fields", function()
    local bytes = head({"X-A: 1", "X-B: 2"})     -- three fields with Content-Length
    local srv = raw(function(sock) sock:write(bytes) end)
    local opts = {max_header = #bytes, max_headers = 3, headers = {Connection = "close"}}
    assert.equals(200, assert(http.get(srv.url, opts)).status)
    opts.max_header = #bytes - 1
    fails("EMSGSIZE", http.get(srv.url, opts))
    opts.max_header, opts.max_headers = #bytes, 2
    fails("EMSGSIZE", http.get(srv.url, opts))
    -- as a client's default too
    local c = http.client{max_headers = 2}
    fails("EMSGSIZE", c:get(srv.url, {headers = {Connection = "close"}}))
    assert.equals(200, assert(c:get(srv.url, {max_headers = 3,
                                              headers = {Connection = "close"}})).status)
    c:close()
  end)

  it("ends an endless stream of 100 Continue responses quickly", function()
    local srv = raw(function(sock)
      local burst = ("HTTP/1.1 100\r\n\r\n"):rep(256)
      while sock:write(burst) do end
    end)
    local t0 = sl.now()
    local err = fails("EMSGSIZE", http.get(srv.url, {timeout = 3,
                                                     headers = {Connection = "close"}}))
    assert.matches("max_header (65536 bytes)", err, 1, true)
    assert.is_true(sl.now() - t0 < 1, "took " .. (sl.now() - t0) .. " s")
  end)

  it("counts the fields of interim responses against max_headers", function()
    local srv = raw(function(sock)
      local early = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nLink: </b>\r\n\r\n"
      sock:write(early:rep(3) .. head({"X-Final: yes"}))
    end)
    local res = assert(http.get(srv.url, {max_headers = 8, headers = {Connection = "close"}}))
    assert.equals("yes", res.headers["x-final"])
    assert.is_nil(res.headers.link)
    fails("EMSGSIZE", http.get(srv.url, {max_headers = 7, headers = {Connection = "close"}}))
  end)
end)
