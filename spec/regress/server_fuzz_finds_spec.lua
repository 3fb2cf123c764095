-- server_fuzz_finds_spec.lua: issue 9, what the http_request fuzzer found in the server.
-- A head that fits max_header_size exactly was refused with 431 when its final CRLFs came
-- in a read of their own: the CRLFs after the last header were counted twice (once ahead,
-- once as read), so the limit depended on how the bytes were read.
local sl = require "sluice"
local W = require "spec.http_wire"

describe("regress: server fuzz finds", function()
  it("applies max_header_size the same way however the head is read", function()
    local srv = W.start(function() return 200, nil, "ok" end, {max_header_size = 64})
    local head = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: "
    -- the last span (the value) ends 4 bytes before the limit: the head fits exactly
    head = head .. ("p"):rep(64 - 4 - #head)
    for _, cut in ipairs({0, 2}) do
      local c = W.connect(srv)
      c:send(head .. ("\r\n\r\n"):sub(1, cut))
      sl.sleep(0.02)
      c:send(("\r\n\r\n"):sub(cut + 1))
      local r = c:response()
      assert.equals(200, r.status, "cut after " .. cut .. " CRLF bytes")
    end
  end)
end)
