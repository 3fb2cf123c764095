-- Issue 9, defect 5: a handler's own Content-Length or Transfer-Encoding was sent as given,
-- so a handler passing an upstream response on (a gzip-decoded body with the upstream
-- length) broke the connection for every request after it; header names and values with
-- control characters other than CR and LF went out too. Now the server owns framing and
-- refuses such headers with a 500 and one line on stderr.
local H = require "spec.helpers"
local W = require "spec.http_wire"

-- Reads the next response head off c, without trusting its framing.
local function read_head(c)
  while not c.buf:find("\r\n\r\n", 1, true) do assert(c:fill(), "closed inside a head") end
  local e = c.buf:find("\r\n\r\n", 1, true)
  local head = c.buf:sub(1, e + 3)
  c.buf = c.buf:sub(e + 4)
  return head
end

describe("the HTTP server's framing", function()

  it("frames a body by its own length, whatever the handler's headers say", function()
    local srv = W.start(function(req)
      if req.path == "/upstream" then     -- an upstream response passed on, body decoded
        return 200, {["content-length"] = "1000", ["Content-Encoding"] = "identity",
                     ["transfer-encoding"] = "gzip, chunked"}, "hello"
      end
      return 200, {["Content-Length"] = "2", ["Transfer-Encoding"] = "chunked"}, "next"
    end)
    local c = W.connect(srv)
    c:send(W.get("/upstream") .. W.get("/next"))
    local head = read_head(c)
    assert.equals(1, H.count("content-length", head:lower()))
    H.has("\r\nContent-Length: 5\r\n", head)
    H.hasnt("ransfer-", head)
    assert.equals("hello", c:take(5))
    head = read_head(c)                     -- the connection still frames correctly
    H.has("\r\nContent-Length: 4\r\n", head)
    assert.equals("next", c:take(4))
  end)

  it("chunks a function body even when the handler gives a length", function()
    local srv = W.start(function()
      local parts = {"a", "bc"}
      return 200, {["Content-Length"] = "99"}, function() return table.remove(parts, 1) end
    end)
    local c = W.connect(srv)
    c:send(W.get("/"))
    local r = c:response()
    assert.equals("chunked", r.headers["transfer-encoding"])
    assert.is_nil(r.headers["content-length"])
    assert.equals("abc", r.body)
  end)

  it("answers 500 and logs one line for a name that is not a token or a value with a CTL",
     function()
    local script = [[
      local tcp = require "sluice.tcp"
      local bad = {
        {["Bad Name"] = "x"}, {["X:Y"] = "x"}, {["X\0"] = "x"}, {["\195\156ber"] = "x"},
        {[""] = "x"}, {X = "a\0b"}, {X = "a\1b"}, {X = "a\127b"}, {X = "a\rb"},
        {X = "a\nb"}, {X = {"fine", "a\27b"}},
      }
      local good = {X = "tab\tand \200\201 obs-text", ["!#$%&'*+-.^_`|~09azAZ"] = "token"}
      local srv = assert(require("sluice.http").serve{port = 0, handler = function(req)
        local i = tonumber(req.path:sub(2))
        return 200, i and bad[i] or good, "body"
      end})
      local s = assert(tcp.connect("127.0.0.1", srv.port))
      for i = 1, #bad + 1 do
        s:write("GET /" .. (i <= #bad and i or "good") .. " HTTP/1.1\r\nHost: x\r\n\r\n")
        local got = ""
        repeat got = got .. s:read() until got:find("\r\n\r\n.*\n") or got:find("body$")
        print(got:match("^HTTP/1.1 (%d+)"), got:find("\r\nX: tab\tand \200\201 obs-text\r\n",
                                                      1, true) ~= nil)
      end
      s:close()
      srv:close()
    ]]
    local r = H.run({"-e", script})
    assert.equals(0, r.code, r.err)
    assert.equals(string.rep("500\tfalse\n", 11) .. "200\ttrue\n", r.out)
    assert.equals(11, #H.lines(r.err), r.err)
    assert.equals(11, H.count("sluice: http handler failed (GET /", r.err))
    assert.equals(6, H.count("a header value holds a control character", r.err))
  end)
end)
