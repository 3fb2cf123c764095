-- Issue 9, defect 2: after a request with Connection: Upgrade + Upgrade (or a CONNECT)
-- followed by any byte, llhttp stops with HPE_PAUSED_UPGRADE and the server took that for
-- a new request: the previous one ran again (a POST twice, a later request answered with
-- the POST's reply). Now each request reaches the handler once; an Upgrade request is
-- answered and the connection closed, CONNECT gets 501, and the bytes after are dropped.
local W = require "spec.http_wire"

-- Sends data on a new connection to a server that records the requests its handler sees;
-- returns the connection, that record and the server.
local function send(data)
  local seen = {}
  local srv = W.start(function(req)
    seen[#seen + 1] = req.method .. " " .. req.target .. " " .. req.body
    return 200, nil, "answer " .. #seen
  end)
  local c = W.connect(srv)
  c:send(data)
  return c, seen, srv
end

describe("the HTTP server and Upgrade or CONNECT requests", function()
  it("runs an Upgrade POST once, answers it, closes, and never parses what follows", function()
    local c, seen = send("POST /up HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\n" ..
                         "Upgrade: websocket\r\nContent-Length: 4\r\n\r\ndata" .. W.get("/next"))
    local r = c:response()
    assert.equals(200, r.status)
    assert.equals("answer 1", r.body)
    assert.equals("close", r.headers.connection)
    assert.is_nil(c:response())                      -- nothing else: the connection ends
    assert.same({"POST /up data"}, seen)
  end)

  it("answers an Upgrade GET followed by one stray byte once", function()
    local c, seen = send(W.get("/ws", "Connection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n") .. "x")
    assert.equals("answer 1", c:response().body)
    assert.is_nil(c:response())
    assert.same({"GET /ws "}, seen)
  end)

  it("answers the requests before an Upgrade one, in order, each once", function()
    local c, seen = send(W.get("/a") .. W.get("/b", "Connection: Upgrade\r\nUpgrade: x\r\n") ..
                         W.get("/c"))
    assert.equals("answer 1", c:response().body)
    assert.equals("answer 2", c:response().body)
    assert.is_nil(c:response())
    assert.same({"GET /a ", "GET /b "}, seen)
  end)

  it("answers CONNECT with 501 without calling the handler, and closes", function()
    local c, seen, srv = send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n" ..
                              "\r\n\22\3\1 tunnel bytes" .. W.get("/after"))
    local r = c:response()
    assert.equals(501, r.status)
    assert.equals("close", r.headers.connection)
    assert.is_nil(c:response())
    assert.same({}, seen)
    assert.equals(0, srv:stats().requests)
  end)
end)
