-- Issue 9, smaller item: an HTTP/1.1 request without Host, or a request with two Host
-- lines, was served; RFC 9112 3.2 says 400 (two Host lines let a proxy in front and the
-- handler disagree on the site asked for). HTTP/1.0 without Host stays fine.
local W = require "spec.http_wire"

describe("the HTTP server and the Host header", function()
  local calls, srv
  before_each(function()
    calls = 0
    srv = W.start(function(req)
      calls = calls + 1
      return 200, nil, req.headers.host or "none"
    end)
  end)

  -- Sends a request on a new connection; returns the response and the connection.
  local function ask(request)
    local c = W.connect(srv)
    c:send(request)
    return c:response(), c
  end

  it("answers 400 and closes when an HTTP/1.1 request has no Host", function()
    local r, c = ask("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")
    assert.equals(400, r.status)
    assert.is_true(c:closed())
    assert.equals(0, calls)
  end)

  it("answers 400 to two Host lines, in HTTP/1.1 and HTTP/1.0", function()
    assert.equals(400, ask("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status)
    assert.equals(400, ask("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n").status)
    assert.equals(0, calls)
  end)

  it("serves HTTP/1.0 without Host and HTTP/1.1 with one", function()
    assert.equals("none", ask("GET / HTTP/1.0\r\n\r\n").body)
    assert.equals("a", ask("GET / HTTP/1.1\r\nHost: a\r\n\r\n").body)
    assert.equals(2, calls)
  end)
end)
