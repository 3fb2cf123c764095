-- Issue 9, review of the hardened server: regressions found by a hostile review.
-- send_timeout cut off slow readers still taking bytes (progress was only seen in libuv's
-- queue, which a send buffer of megabytes hides for seconds); server:close(timeout) waited
-- for a handler whose client had reset (its connection had left the server's list);
-- HEAD answered a handler's Content-Length with "Content-Length: 0"; and a head within a
-- few bytes of max_header_size was refused or not depending on how TCP split it. Also: a
-- chunked HTTP/1.0 request kept its connection open, and blank lines kept an idle one.
local sl = require "sluice"
local W = require "spec.http_wire"
local H = require "spec.helpers"

describe("the HTTP server after review", function()

  it("keeps serving a slow reader that takes bytes steadily, with send_timeout = 2", function()
    local size = 4 * 1024 * 1024
    local srv = W.start(function()
      return 200, nil, string.rep("x", size)
    end, {send_timeout = 2})
    local c = W.connect(srv)
    c:send(W.get("/big"))
    -- 64 KiB every 0.1 s: far slower than loopback, but never a second without a byte. The
    -- server sees what the reader takes only when the reader's kernel opens its window,
    -- which it does in steps of up to half its receive buffer (about 460 KiB seen here, so
    -- 0.7 s at this rate): the timeout leaves room for those steps, and the megabytes the
    -- kernels hold would still take 5 s to drain, which the pre-review server, blind to
    -- them, took for a peer taking nothing.
    local got, t0 = 0, sl.now()
    while true do
      sl.sleep(0.1)
      local d = c.sock:read(64 * 1024)
      if not d then break end
      got = got + #d
      assert.is_true(sl.now() - t0 < 25, "still reading after 25 s")
    end
    local head = ("HTTP/1.1 200 OK\r\nServer: sluice\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n" ..
                  "Content-Length: " .. size .. "\r\n\r\n")
    assert.is_true(got >= size + #head, ("got %d bytes of %d"):format(got, size + #head))
  end, {timeout = 30})

  it("still closes a peer that takes nothing, after send_timeout", function()
    local srv = W.start(function()
      return 200, nil, string.rep("y", 32 * 1024 * 1024)   -- more than loopback buffers hold
    end, {send_timeout = 1})
    local c = W.connect(srv)
    local t0 = sl.now()
    c:send(W.get("/"))
    assert.is_true(H.poll(function() return srv:stats().open == 0 end, 4), "never closed")
    local took = sl.now() - t0
    assert.is_true(took >= 0.9, "closed after " .. took .. " s, send_timeout is 1")
  end, {timeout = 10})

  it("server:close(timeout) cancels a handler whose client reset its connection", function()
    local entered, outcome = sl.event(), nil
    local srv = W.start(function(req)
      if req.path == "/fast" then return 200, nil, string.rep("f", 300 * 1024) end
      entered:set()
      local ok, e = pcall(sl.sleep, 8)
      outcome = ok and "slept" or tostring(e)
      if not ok then error(e, 0) end
      return 200, nil, "late"
    end)
    local c = W.connect(srv)
    -- The socket reads 64 KiB ahead, and the rest of /fast's answer (which the kernels'
    -- buffers hold, so /slow is dispatched) stays unread: closing resets the connection.
    c:send(W.get("/fast") .. W.get("/slow"))
    entered:wait()
    c.sock:close()
    assert.is_true(H.poll(function() return srv:stats().open == 0 end, 3), "reset not seen")
    local t0 = sl.now()
    assert.is_true(srv:close(0.5))
    local took = sl.now() - t0
    assert.is_true(took < 1.5, "close(0.5) took " .. took .. " s")
    assert.equals(0, srv:stats().workers)
    assert.is_truthy(outcome and outcome ~= "slept", "the handler was not cancelled")
  end, {timeout = 15})

  it("answers HEAD and 304 with the handler's Content-Length when it gives no body", function()
    local srv = W.start(function(req)
      local q = req.query
      if q == "bad" then return 200, {["Content-Length"] = "12x"}, nil end
      if q == "304" then return 304, {["Content-Length"] = "7"}, nil end
      if q == "204" then return 204, {["Content-Length"] = "7"}, nil end
      if q == "body" then return 200, {["Content-Length"] = "99"}, "hello" end
      return 200, {["Content-Length"] = "12345"}, nil
    end)
    local c = W.connect(srv)
    local function ask(method, query)
      c:send(("%s /?%s HTTP/1.1\r\nHost: test\r\n\r\n"):format(method, query))
      return c:response(method == "HEAD")
    end
    assert.equals("12345", ask("HEAD", "cl").headers["content-length"])
    local r = ask("GET", "cl")                       -- a GET's length is its body's
    assert.equals("0", r.headers["content-length"])
    assert.equals("", r.body)
    assert.equals("0", ask("HEAD", "bad").headers["content-length"])
    assert.equals("5", ask("HEAD", "body").headers["content-length"])
    assert.equals("7", ask("GET", "304").headers["content-length"])
    assert.is_nil(ask("GET", "204").headers["content-length"])
    -- No body went out after any of them: the next response starts right here.
    r = ask("GET", "body")
    assert.equals(200, r.status)
    assert.equals("hello", r.body)
  end)

  it("gives a head the same max_header_size verdict however TCP splits it", function()
    local srv = W.start(function() return 200, nil, "ok" end, {max_header_size = 200})
    local function head(n)
      return "GET /x HTTP/1.1\r\nHost: a\r\nX-P: " .. string.rep("p", n - 35) .. "\r\n\r\n"
    end
    -- Each piece is in the server's socket before the loop polls again: a short sleep
    -- gives it a turn, so it reads the pieces one at a time.
    local function status(h, cuts)
      local c = W.connect(srv)
      local pos = 0
      for _, cut in ipairs(cuts) do
        c:send(h:sub(pos + 1, cut))
        pos = cut
        sl.sleep(0.005)
      end
      c:send(h:sub(pos + 1))
      return c:response().status
    end
    for _, n in ipairs{198, 199, 200, 201, 202} do
      local h = head(n)
      assert.equals(n, #h)
      local want = n <= 200 and 200 or 431
      assert.equals(want, status(h, {}), n .. " bytes whole")
      for _, cuts in ipairs{{n - 1}, {n - 2}, {n - 3}, {n - 4}, {n - 3, n - 2, n - 1}} do
        assert.equals(want, status(h, cuts), n .. " bytes cut at " .. table.concat(cuts, ","))
      end
    end
  end, {timeout = 15})
  it("closes the connection after a chunked HTTP/1.0 request", function()
    local calls = 0
    local srv = W.start(function(req)
      calls = calls + 1
      return 200, nil, req.body
    end)
    local c = W.connect(srv)
    c:send("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    local r = c:response()
    assert.equals(200, r.status)
    assert.equals("hello", r.body)
    assert.equals("close", r.headers.connection)
    assert.is_nil(c:response())                      -- closed: the GET is never read
    assert.equals(1, calls)
  end)

  it("does not let blank lines keep an idle connection past keepalive_timeout", function()
    local srv = W.start(function() return 200, nil, "ok" end, {keepalive_timeout = 0.5})
    local c = W.connect(srv)
    local t0 = sl.now()
    -- A blank line every 0.1 s, until the server closes or 3 s have gone.
    while srv:stats().open > 0 and sl.now() - t0 < 3 do
      if not c.sock:write("\r\n") then break end
      sl.sleep(0.1)
    end
    local took = sl.now() - t0
    assert.equals(0, srv:stats().open)
    assert.is_true(took >= 0.45 and took < 1.5, "closed after " .. took .. " s")
  end, {timeout = 10})
end)
