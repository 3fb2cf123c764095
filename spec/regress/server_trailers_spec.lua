-- Issue 9, smaller item: the trailers of a chunked request body were merged into the
-- request headers, so a trailer could pass for a header the client never sent before the
-- body (or change one). Now they are kept apart, in req.trailers.
local W = require "spec.http_wire"

describe("the HTTP server and chunked request trailers", function()
  it("keeps trailers out of req.headers, in req.trailers", function()
    local seen = {}
    local srv = W.start(function(req)
      seen[req.path] = req
      return 200, nil, req.body
    end)
    local c = W.connect(srv)
    c:send("POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nX-Sum: head\r\n\r\n" ..
           "5\r\nhello\r\n0\r\nX-Sum: trailer\r\nX-Late: 1\r\nx-late: 2\r\n\r\n" .. W.get("/next"))
    assert.equals("hello", c:response().body)
    assert.equals(200, c:response().status)
    local post, get = seen["/"], seen["/next"]
    assert.equals("head", post.headers["x-sum"])
    assert.is_nil(post.headers["x-late"])
    assert.equals("trailer", post.trailers["X-Sum"])  -- looked up in any case
    assert.equals("1, 2", post.trailers["x-late"])
    assert.is_nil(get.trailers)                       -- none on a request without them
    assert.equals("test", get.headers.host)
  end)

  it("counts trailer lines against max_headers", function()
    local calls = 0
    local srv = W.start(function()
      calls = calls + 1
      return 200, nil, "ok"
    end, {max_headers = 3})
    local c = W.connect(srv)
    c:send("POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           "1\r\na\r\n0\r\nA: 1\r\nB: 2\r\n\r\n")
    assert.equals(431, c:response().status)
    assert.equals(0, calls)
  end)
end)
