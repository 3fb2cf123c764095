-- client_fuzz_finds_spec.lua: issue 9, what the http_response fuzzer found in the client.
-- A sink given a zlib-wrapped deflate body whose first read held one body byte failed
-- with EPROTO (raw deflate was picked from that byte alone); a sink's max_body limited
-- each read of an identity body, not the body (400 bytes passed max_body = 300 when read
-- in pieces); and trailers went through the header callbacks: merged into res.headers,
-- and a trailer Content-Encoding made the client decode an identity body.
local sl = require "sluice"
local http = require "sluice.http"
local W = require "spec.http_wire"

-- A raw loopback server that writes the given pieces, each in a read of its own as far
-- as a short pause makes it, then closes.
local function raw(pieces)
  return W.raw_server(function(sock)
    for i, p in ipairs(pieces) do
      if i > 1 then sl.sleep(0.02) end
      sock:write(p)
    end
  end)
end

-- Gets url with a sink; returns the response (or the failure) and what the sink got.
local function sunk(url, opts)
  local parts = {}
  opts = opts or {}
  opts.sink = function(piece) parts[#parts + 1] = piece end
  local res, err, code = http.get(url, opts)
  return res, err, code, table.concat(parts)
end

describe("regress: client fuzz finds", function()
  it("decodes a zlib-wrapped deflate body for a sink whose first read holds one byte", function()
    local z = string.char(0x78, 0x9c) ..     -- zlib header, then "hello" deflated
              string.char(0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00) ..
              string.char(0x06, 0x2c, 0x02, 0x15)
    local srv = raw({"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: "
                     .. #z .. "\r\n\r\n" .. z:sub(1, 1), z:sub(2)})
    local res, err, code, body = sunk(srv.url)
    assert.is_table(res, tostring(err) .. " " .. tostring(code))
    assert.equals("hello", body)
  end)

  it("holds a sink's identity body to max_body in total, however it is read", function()
    local srv = raw({"HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n" .. ("a"):rep(100),
                     ("b"):rep(100), ("c"):rep(100), ("d"):rep(100)})
    local res, _, code, body = sunk(srv.url, {max_body = 300})
    assert.is_nil(res)
    assert.equals("EFBIG", code)
    assert.is_true(#body <= 300)
  end)

  it("keeps trailers apart: res.trailers, never res.headers, never decoding", function()
    local resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" ..
                 "0\r\nContent-Encoding: gzip\r\nX-Check: 1\r\n\r\n"
    local srv = raw({resp})
    local res, err = http.get(srv.url)
    assert.is_table(res, tostring(err))
    assert.equals("hello", res.body)
    assert.is_nil(res.headers["content-encoding"])
    assert.is_nil(res.headers["x-check"])
    assert.equals("1", res.trailers["x-check"])
    assert.equals("gzip", res.trailers["Content-Encoding"])
    srv.listener:close()
    srv = raw({resp})
    local res2, err2, _, body = sunk(srv.url)
    assert.is_table(res2, tostring(err2))
    assert.equals("hello", body)
    assert.equals("1", res2.trailers["x-check"])
  end)

  it("reads the body the same whatever framing headers the trailers hold", function()
    for _, t in ipairs({"Content-Length: 2\r\n", "Transfer-Encoding: gzip\r\n",
                        "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n"}) do
      local srv = raw({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                       .. "0\r\n" .. t .. "\r\n"})
      local res, err = http.get(srv.url)
      assert.is_table(res, tostring(err))
      assert.equals("hello", res.body)
      assert.is_nil(res.headers["content-length"])
      assert.is_table(res.trailers)
      srv.listener:close()
    end
  end)

  it("has no res.trailers without trailers", function()
    local srv = raw({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"
                     .. "0\r\n\r\n"})
    local res, err = http.get(srv.url)
    assert.is_table(res, tostring(err))
    assert.equals("ok", res.body)
    assert.is_nil(res.trailers)
  end)
end)
