-- http_server_spec.lua: http.serve (engine/http_server*.c, lua/sluice/http/server.lua) driven
-- by raw sockets from sluice.tcp on loopback, so every byte on the wire is the spec's own:
-- keep-alive, pipelining, chunked bodies, limits, errors, streaming and graceful close.
local sl = require "sluice"
local tcp = require "sluice.tcp"
local http = require "sluice.http.server"
local H = require "spec.helpers"

local W = require "spec.http_wire"
local start, connect, get = W.start, W.connect, W.get

describe("http.serve", function()
  it("is sluice.http's serve, and binds a free port when given port 0", function()
    assert.equals(http.serve, require("sluice.http").serve)
    local srv = start(function() return 200, nil, "ok" end)
    assert.is_true(srv.port > 0)
    assert.matches("^http server %(http://127%.0%.0%.1:%d+%)$", tostring(srv))
  end)

  it("answers a GET with the handler's status, headers and body", function()
    local seen
    local srv = start(function(req)
      seen = req
      return 201, {["X-Answer"] = "42", ["Content-Type"] = "text/plain"}, "created"
    end)
    local c = connect(srv)
    c:send(get("/a/b?x=1&y=2", "User-Agent: spec\r\n"))
    local r = c:response()
    assert.equals(201, r.status)
    assert.matches("^HTTP/1%.1 201 Created\r\n", r.head)
    assert.equals("42", r.headers["x-answer"])
    assert.equals("text/plain", r.headers["content-type"])
    assert.equals("7", r.headers["content-length"])
    assert.equals("sluice", r.headers["server"])
    assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", r.headers["date"])
    assert.equals("created", r.body)
    assert.equals("GET", seen.method)
    assert.equals("/a/b?x=1&y=2", seen.target)
    assert.equals("/a/b", seen.path)
    assert.equals("x=1&y=2", seen.query)
    assert.equals("1.1", seen.version)
    assert.equals("", seen.body)
    assert.equals("127.0.0.1", seen.remote)
    assert.is_true(seen.remote_port > 0)
    assert.equals("spec", seen.headers["user-agent"])
    assert.equals("spec", seen.headers["User-Agent"])   -- any case
    assert.equals("test", seen.headers.Host)
  end)

  it("gives the body of a POST and keeps repeated headers", function()
    local seen
    local srv = start(function(req)
      seen = req
      return 200, nil, "got " .. #req.body
    end)
    local c = connect(srv)
    c:send("POST /form HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\nAccept: a\r\n" ..
           "accept: b\r\nCookie: x=1\r\nCookie: y=2\r\n\r\nhello world")
    local r = c:response()
    assert.equals("got 11", r.body)
    assert.equals("POST", seen.method)
    assert.equals("hello world", seen.body)
    assert.equals("a, b", seen.headers.accept)
    assert.equals("x=1; y=2", seen.headers.cookie)
    assert.equals("", seen.query)
  end)

  it("keeps a connection alive across requests", function()
    local srv = start(function(req) return 200, nil, req.path end)
    local c = connect(srv)
    for i = 1, 5 do
      c:send(get("/" .. i))
      local r = c:response()
      assert.equals("/" .. i, r.body)
      assert.is_nil(r.headers.connection)
    end
    local st = srv:stats()
    assert.equals(1, st.connections)
    assert.equals(5, st.requests)
    assert.equals(1, st.workers)   -- one worker task served them all, one after the other
  end)

  it("decodes a chunked request body", function()
    local srv = start(function(req) return 200, nil, req.body end)
    local c = connect(srv)
    c:send("POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           "5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\n\r\n")
    assert.equals("hello, world", c:response().body)
  end)

  it("answers pipelined requests in order, even when later ones are quicker", function()
    local srv = start(function(req)
      local n = tonumber(req.path:sub(2))
      sl.sleep((4 - n) * 0.01)     -- the first request takes the longest
      return 200, nil, "response " .. n
    end)
    local c = connect(srv)
    c:send(get("/1") .. get("/2") .. get("/3"))
    for n = 1, 3 do assert.equals("response " .. n, c:response().body) end
    assert.equals(3, srv:stats().requests)
  end)

  it("handles requests of different connections concurrently", function()
    local srv = start(function()
      sl.sleep(0.1)
      return 200, nil, "slow"
    end)
    local t0 = sl.now()
    local n = 30
    local fs = {}
    for i = 1, n do
      fs[i] = function()
        local c = connect(srv)
        c:send(get("/"))
        return c:response().body
      end
    end
    local bodies = sl.gather(fs)
    for i = 1, n do assert.equals("slow", bodies[i]) end
    assert.is_true(sl.now() - t0 < 1, "the requests did not run side by side")
    assert.equals(n, srv:stats().workers)
  end)

  it("honours Connection: close and closes after the answer", function()
    local srv = start(function() return 200, nil, "bye" end)
    local c = connect(srv)
    c:send(get("/", "Connection: close\r\n"))
    local r = c:response()
    assert.equals("bye", r.body)
    assert.equals("close", r.headers.connection)
    assert.is_true(c:closed())
  end)

  it("closes an HTTP/1.0 connection unless it asks for keep-alive", function()
    local srv = start(function(req) return 200, nil, req.version end)
    local c = connect(srv)
    c:send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    local r = c:response()
    assert.equals("1.0", r.body)
    assert.equals("keep-alive", r.headers.connection)
    c:send("GET / HTTP/1.0\r\n\r\n")
    r = c:response()
    assert.equals("close", r.headers.connection)
    assert.is_true(c:closed())
  end)

  it("answers HEAD with the length of the body but no body", function()
    local srv = start(function() return 200, nil, "twelve bytes" end)
    local c = connect(srv)
    c:send("HEAD / HTTP/1.1\r\nHost: test\r\n\r\n")
    local r = c:response(true)
    assert.equals(200, r.status)
    assert.equals("12", r.headers["content-length"])
    c:send(get("/"))               -- nothing was sent after the head
    assert.equals("twelve bytes", c:response().body)
  end)

  it("streams a body function as chunks, and as a close-delimited body to HTTP/1.0", function()
    local srv = start(function()
      local i = 0
      return 200, {["Content-Type"] = "text/plain"}, function()
        i = i + 1
        if i > 3 then return nil end
        sl.sleep(0)                -- a body function may wait
        return "part" .. i .. ";"
      end
    end)
    local c = connect(srv)
    c:send(get("/"))
    local r = c:response()
    assert.equals("chunked", r.headers["transfer-encoding"])
    assert.same({"part1;", "part2;", "part3;"}, r.chunked)
    c:send(get("/"))               -- the connection is still usable
    assert.equals("part1;part2;part3;", c:response().body)
    local old = connect(srv)
    old:send("GET / HTTP/1.0\r\n\r\n")
    r = old:response()
    assert.is_nil(r.headers["transfer-encoding"])
    assert.equals("part1;part2;part3;", r.body)
  end)

  it("streams a large body with back-pressure", function()
    local chunk = string.rep("x", 256 * 1024)
    local srv = start(function()
      local n = 0
      return 200, nil, function()
        n = n + 1
        if n <= 16 then return chunk end
      end
    end)
    local c = connect(srv)
    c:send(get("/"))
    assert.equals(16 * #chunk, #c:response().body)
  end)

  it("closes a streamed response its client stops reading after send_timeout", function()
    local chunk, pieces, ended = string.rep("s", 64 * 1024), 0, sl.event()
    local srv = start(function()
      return 200, nil, function()
        pieces = pieces + 1
        return chunk
      end
    end, {send_timeout = 0.3})
    local c = connect(srv)
    c:send(get("/"))
    local t0 = sl.now()
    sl.spawn(function()
      while srv:stats().open > 0 do sl.sleep(0.02) end
      ended:set()
    end)
    assert.is_true(ended:wait(5))
    local took = sl.now() - t0
    assert.is_true(took >= 0.3 and took < 2, "closed after " .. took .. " s")
    assert.is_true(pieces < 200, pieces .. " pieces made for a client that reads none")
    assert.equals(0, srv:stats().workers - srv:stats().idle)   -- the worker went on
  end)

  it("sends 204 and 304 without a body or length", function()
    local srv = start(function(req) return tonumber(req.path:sub(2)), nil, "ignored" end)
    local c = connect(srv)
    c:send(get("/204") .. get("/304") .. get("/200"))
    local r = c:response()
    assert.equals(204, r.status)
    assert.is_nil(r.headers["content-length"])
    assert.equals(304, c:response().status)
    assert.equals("ignored", c:response().body)
  end)

  it("sends a header once per value of a list", function()
    local srv = start(function()
      return 200, {["Set-Cookie"] = {"a=1", "b=2"}}, ""
    end)
    local c = connect(srv)
    c:send(get("/"))
    local r = c:response()
    assert.equals(2, H.count("Set-Cookie: ", r.head))
    assert.equals("0", r.headers["content-length"])
  end)

  it("answers 500 when the handler raises, logs it, and keeps serving", function()
    local script = [[
      local tcp = require "sluice.tcp"
      local srv = assert(require("sluice.http").serve{port = 0, handler = function(req)
        if req.path == "/boom" then error("kaboom") end
        if req.path == "/bad" then return "not a status" end
        return 200, nil, "fine"
      end})
      local s = assert(tcp.connect("127.0.0.1", srv.port))
      s:write("GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
      local got = ""
      repeat got = got .. s:read() until got:find("\r\n\r\n.*\n")
      print((got:match("^HTTP/1.1 (%d+)")))
      s:close()
      s = assert(tcp.connect("127.0.0.1", srv.port))
      s:write("GET /bad HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
      got = ""
      repeat got = got .. s:read() until got:find("fine")
      for status in got:gmatch("HTTP/1.1 (%d+)") do print(status) end
      s:close()
      srv:close()
    ]]
    local r = H.run({"-e", script})
    assert.equals(0, r.code)
    assert.equals("500\n500\n200\n", r.out)
    assert.equals(1, H.count("sluice: http handler failed (GET /boom): ", r.err))
    H.has("kaboom", r.err)
    H.has("stack traceback", r.err)
    assert.equals(1, H.count("sluice: http handler failed (GET /bad): it returned no status",
                             r.err))
  end)

  it("answers 431 to headers over max_header_size, then closes", function()
    local srv = start(function() return 200, nil, "no" end, {max_header_size = 1024})
    local c = connect(srv)
    c:send(get("/", "X-Big: " .. string.rep("a", 2000) .. "\r\n"))
    local r = c:response()
    assert.equals(431, r.status)
    assert.equals("close", r.headers.connection)
    assert.is_true(c:closed())
    assert.equals(0, srv:stats().requests)
  end)

  it("answers 413 to a body over max_body_size, declared or chunked, then closes", function()
    local srv = start(function() return 200, nil, "no" end, {max_body_size = 100})
    local c = connect(srv)
    c:send("POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 101\r\n\r\n" ..
           string.rep("b", 101))
    assert.equals(413, c:response().status)
    assert.is_true(c:closed())
    c = connect(srv)
    c:send("POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           "40\r\n" .. string.rep("c", 64) .. "\r\n40\r\n" .. string.rep("c", 64) .. "\r\n")
    assert.equals(413, c:response().status)
    assert.is_true(c:closed())
    c = connect(srv)               -- exactly the limit is fine
    c:send("POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n" ..
           string.rep("b", 100))
    assert.equals(200, c:response().status)
  end)

  it("answers 400 to garbage, then closes", function()
    local srv = start(function() return 200, nil, "no" end)
    local c = connect(srv)
    c:send("THIS IS NOT HTTP\r\n\r\n")
    local r = c:response()
    assert.equals(400, r.status)
    assert.is_true(c:closed())
    c = connect(srv)               -- a good request, then garbage: answer, then 400
    c:send(get("/") .. "\1\2\3 nonsense\r\n\r\n")
    assert.equals(200, c:response().status)
    assert.equals(400, c:response().status)
    assert.is_true(c:closed())
  end)

  it("answers Expect: 100-continue before the body arrives", function()
    local srv = start(function(req) return 200, nil, req.body end)
    local c = connect(srv)
    c:send("PUT / HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert.equals(100, c:response().status)
    c:send("data")
    assert.equals("data", c:response().body)
  end)

  it("closes keep-alive connections idle longer than keepalive_timeout", function()
    local srv = start(function() return 200, nil, "ok" end, {keepalive_timeout = 0.1})
    local c = connect(srv)
    c:send(get("/"))
    assert.equals("ok", c:response().body)
    local t0 = sl.now()
    assert.is_true(c:closed())
    local idle = sl.now() - t0
    assert.is_true(idle >= 0.09 and idle < 1, "closed after " .. idle .. " s")
  end)

  it("closes gracefully: refuses new connections, finishes the request in flight", function()
    local entered, release = sl.event(), sl.event()
    local srv = start(function()
      entered:set()
      release:wait()
      return 200, nil, "finished"
    end)
    local port = srv.port
    local busy, idle = connect(srv), connect(srv)
    busy:send(get("/"))
    idle:send(get("/quick"))
    entered:wait()
    release:clear()
    local closer = sl.spawn(function() return srv:close() end)
    sl.sleep(0.01)
    assert.equals("suspended", closer:status())        -- waits for the request in flight
    assert.is_true(srv:is_closed())
    assert.equals("ECONNREFUSED", select(3, tcp.connect("127.0.0.1", port)))
    release:set()
    local r = busy:response()
    assert.equals("finished", r.body)
    assert.equals("close", r.headers.connection)
    assert.is_true(busy:closed())
    assert.is_true(closer:join())
    assert.equals("finished", idle:response().body)    -- it was in flight too
    assert.is_true(idle:closed())
    assert.equals(0, srv:stats().workers)
  end)

  it("close(timeout) cancels handlers that do not finish", function()
    local cancelled = false
    local entered = sl.event()
    local srv = start(function()
      entered:set()
      local ok, err = pcall(sl.sleep, 60)
      cancelled = not ok and sl.is_cancelled(err)
      error(err, 0)
    end)
    local c = connect(srv)
    c:send(get("/"))
    entered:wait()
    local t0 = sl.now()
    assert.is_true(srv:close(0.05))
    assert.is_true(sl.now() - t0 < 1)
    assert.is_true(cancelled)
    assert.is_true(c:closed())
    assert.equals(0, srv:stats().workers)
  end)

  it("closes idle connections and lets idle workers go at once", function()
    local srv = start(function() return 200, nil, "ok" end)
    local c = connect(srv)
    c:send(get("/"))
    c:response()
    assert.equals(1, srv:stats().idle)
    assert.is_true(srv:close())
    assert.is_true(c:closed())
    local st = srv:stats()
    assert.equals(0, st.workers)
    assert.equals(0, st.open)
  end)

  it("fails with the triple when the port is taken, and raises on misuse", function()
    local srv = start(function() return 200 end)
    assert.same({nil, "EADDRINUSE: address already in use", "EADDRINUSE"},
                {http.serve{port = srv.port, handler = function() end}})
    assert.has_error(function() http.serve{port = 0} end)
    assert.has_error(function() http.serve() end)
  end)
end)
