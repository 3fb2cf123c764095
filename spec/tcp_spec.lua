-- tcp_spec.lua: require "sluice.tcp" (engine/tcp.c) on loopback: round trips, end of
-- stream, failures as triples, timeouts, cancellation of blocked reads and writes, listeners.
local sl = require "sluice"
local tcp = require "sluice.tcp"

-- Starts a listener on an ephemeral port whose connections run `handler`. Returns the
-- listener and a function that waits until every connection accepted so far has ended,
-- so that no test leaves a handler task behind. The listener is closed after the test even
-- when it fails.
local function serve(handler)
  local active, idle = 0, sl.event()
  idle:set()
  local l = assert(tcp.listen("127.0.0.1", 0, function(sock)
    active = active + 1
    idle:clear()
    local ok, err = pcall(handler, sock)
    active = active - 1
    if active == 0 then idle:set() end
    if not ok then error(err, 0) end
  end))
  finally(function() l:close() end)   -- an open listener would keep the run alive
  local function drained()
    assert(idle:wait(2))
  end
  return l, drained
end

local function echo(sock)
  while true do
    local data = sock:read()
    if not data then return end
    assert(sock:write(data))
  end
end

-- Reads until the peer closes; returns everything read and the code that ended it.
local function read_all(sock)
  local parts = {}
  while true do
    local data, _, code = sock:read()
    if not data then return table.concat(parts), code end
    parts[#parts + 1] = data
  end
end

describe("tcp", function()
  it("echoes through a listener and reports the port it bound", function()
    local l, drained = serve(echo)
    assert.is_true(l:port() > 0)
    local s = assert(tcp.connect("127.0.0.1", l:port()))
    assert.is_true(s:write("hello"))
    assert.equals("hello", s:read())
    local addr, port = s:peer()
    assert.equals("127.0.0.1", addr)
    assert.equals(l:port(), port)
    s:close()
    drained()
    l:close()
    assert.is_true(l:is_closed())
  end)

  it("connects to a name through the resolver", function()
    local l, drained = serve(echo)
    local s = assert(tcp.connect("localhost", l:port()))
    assert.is_true(s:write("x"))
    assert.equals("x", s:read())
    s:close()
    drained()
    l:close()
  end)

  it("resolves names through the engine's DNS cache, whatever their case", function()
    local http = require "sluice.http"
    local l, drained = serve(echo)
    local stats = http.client()     -- only for the engine-wide DNS counters
    local before = stats:stats()
    for _, name in ipairs({"localhost", "LocalHost"}) do
      local s = assert(tcp.connect(name, l:port()))
      assert.is_true(s:write(name))
      assert.equals(name, s:read())
      s:close()
    end
    local after = stats:stats()
    stats:close()
    assert.is_true(after.dns_lookups - before.dns_lookups <= 1)
    assert.is_true(after.dns_hits > before.dns_hits)
    drained()
    l:close()
  end)

  it("returns what is buffered, at most max bytes", function()
    local l, drained = serve(function(sock) sock:write("abcdef") end)
    local s <close> = assert(tcp.connect("127.0.0.1", l:port()))
    assert.equals("ab", s:read(2))
    local rest = ""
    while #rest < 4 do rest = rest .. s:read() end
    assert.equals("cdef", rest)
    drained()
    l:close()
  end)

  it("gives nil, 'EOF: end of stream', 'EOF' at the end, and again after", function()
    local l, drained = serve(function(sock) sock:write("bye") end)
    local s <close> = assert(tcp.connect("127.0.0.1", l:port()))
    assert.same({"bye", "EOF"}, {read_all(s)})
    assert.same({nil, "EOF: end of stream", "EOF"}, {s:read()})
    drained()
    l:close()
  end)

  it("fails with the ECONNREFUSED triple when nobody listens", function()
    local l = assert(tcp.listen("127.0.0.1", 0, function() end))
    local port = l:port()
    l:close()
    sl.sleep(0)   -- the listener's handle closes on the next loop pass
    assert.same({nil, "ECONNREFUSED: connection refused", "ECONNREFUSED"},
                {tcp.connect("127.0.0.1", port)})
  end)

  it("fails with an EAI_ code for a name that does not resolve", function()
    local s, err, code = tcp.connect("no-such-host.invalid", 80, {timeout = 3})
    assert.is_nil(s)
    assert.is_truthy(code == "ETIMEDOUT" or code:find("^EAI_"), err)
  end)

  it("fails with ETIMEDOUT when connect runs out of time", function()
    local l <close> = assert(tcp.listen("127.0.0.1", 0, function() end))
    local s, err, code = tcp.connect("127.0.0.1", l:port(), {timeout = 0})
    assert.is_nil(s)
    assert.equals("ETIMEDOUT", code)
    assert.matches("^ETIMEDOUT: ", err)
    l:close()
  end)

  it("times a read out with settimeout, and the socket stays usable", function()
    local go = sl.event()
    local l, drained = serve(function(sock)
      go:wait()
      sock:write("late")
    end)
    local s <close> = assert(tcp.connect("127.0.0.1", l:port()))
    s:settimeout(0.05)
    local t0 = sl.now()
    assert.same({nil, "ETIMEDOUT: read timed out", "ETIMEDOUT"}, {s:read()})
    assert.is_true(sl.now() - t0 >= 0.04)
    s:settimeout(nil)
    go:set()
    assert.equals("late", s:read())
    drained()
    l:close()
  end)

  it("cancels a blocked read, and the next read gets the data", function()
    local go = sl.event()
    local l, drained = serve(function(sock)
      go:wait()
      sock:write("data")
    end)
    local s <close> = assert(tcp.connect("127.0.0.1", l:port()))
    local reader = sl.spawn(function() return s:read() end)
    sl.sleep(0)
    assert.equals("suspended", reader:status())
    reader:cancel()
    assert.is_true(reader:wait())
    assert.equals("cancelled", reader:status())
    go:set()
    assert.equals("data", s:read())
    drained()
    l:close()
  end)

  it("wakes a reader with ECANCELED when another task closes the socket", function()
    local l, drained = serve(function(sock) sock:read() end)
    local s = assert(tcp.connect("127.0.0.1", l:port()))
    local reader = sl.spawn(function() return s:read() end)
    sl.sleep(0)
    s:close()
    assert.same({nil, "ECANCELED: the socket was closed while reading", "ECANCELED"},
                {reader:join()})
    assert.is_true(s:is_closed())
    assert.has_error(function() s:read() end, "attempt to use a closed socket")
    s:close()   -- idempotent
    drained()
    l:close()
  end)

  it("applies back-pressure: write waits until the peer has taken the bytes", function()
    local size = 8 * 1024 * 1024
    local got = 0
    local l, drained = serve(function(sock)
      while true do
        local d = sock:read()
        if not d then return end
        got = got + #d
      end
    end)
    local s = assert(tcp.connect("127.0.0.1", l:port()))
    local chunk = string.rep("x", 1024 * 1024)
    for _ = 1, size // #chunk do assert.is_true(s:write(chunk)) end
    s:close()
    drained()
    assert.equals(size, got)
    l:close()
  end)

  it("cancels a write blocked on a peer that does not read", function()
    local stop = sl.event()
    local l, drained = serve(function() stop:wait() end)
    local s <close> = assert(tcp.connect("127.0.0.1", l:port()))
    local big = string.rep("y", 64 * 1024 * 1024)
    local writer = sl.spawn(function() return s:write(big) end)
    sl.sleep(0.05)
    assert.equals("suspended", writer:status())
    writer:cancel()
    assert.is_true(writer:wait())
    assert.equals("cancelled", writer:status())
    s:close()
    stop:set()
    drained()
    l:close()
  end)

  it("times a write out", function()
    local stop = sl.event()
    local l, drained = serve(function() stop:wait() end)
    local s <close> = assert(tcp.connect("127.0.0.1", l:port()))
    s:settimeout(0.05)
    local big = string.rep("z", 64 * 1024 * 1024)
    assert.same({nil, "ETIMEDOUT: write timed out", "ETIMEDOUT"}, {s:write(big)})
    s:close()
    stop:set()
    drained()
    l:close()
  end)

  it("fails with a triple, not SIGPIPE, when writing to a closed peer", function()
    local l, drained = serve(function() end)     -- closes at once
    local s <close> = assert(tcp.connect("127.0.0.1", l:port()))
    assert.same({nil, "EOF: end of stream", "EOF"}, {s:read()})
    local ok, err, code
    for _ = 1, 100 do                            -- the first writes may still be taken
      ok, err, code = s:write("into the void")
      if not ok then break end
      sl.sleep(0)
    end
    assert.is_nil(ok)
    assert.is_truthy(code == "EPIPE" or code == "ECONNRESET", err)
    drained()
    l:close()
  end)

  it("shutdown sends end of stream and keeps reading", function()
    local l, drained = serve(function(sock)
      local all = read_all(sock)
      sock:write("got " .. all)
    end)
    local s <close> = assert(tcp.connect("127.0.0.1", l:port()))
    s:write("ping")
    assert.is_true(s:shutdown())
    assert.same({"got ping", "EOF"}, {read_all(s)})
    drained()
    l:close()
  end)

  it("stops accepting once the listener is closed; accepted connections go on", function()
    local release = sl.event()
    local l, drained = serve(function(sock)
      release:wait()
      sock:write("still here")
    end)
    local port = l:port()
    local s <close> = assert(tcp.connect("127.0.0.1", port))
    sl.sleep(0.01)
    l:close()
    l:close()   -- idempotent
    sl.sleep(0)
    assert.equals("ECONNREFUSED", select(3, tcp.connect("127.0.0.1", port)))
    release:set()
    assert.equals("still here", s:read())
    drained()
  end)

  it("serves many concurrent connections, each in its own task", function()
    local l, drained = serve(echo)
    local n = 200
    local results = sl.gather((function()
      local fs = {}
      for i = 1, n do
        fs[i] = function()
          local s <close> = assert(tcp.connect("127.0.0.1", l:port()))
          local msg = ("message %d"):format(i)
          assert(s:write(msg))
          local got = ""
          while #got < #msg do got = got .. assert(s:read()) end
          return got
        end
      end
      return fs
    end)())
    for i = 1, n do assert.equals(("message %d"):format(i), results[i]) end
    drained()
    l:close()
  end)

  it("raises on misuse", function()
    assert.has_error(function() tcp.connect("127.0.0.1", 0) end)
    assert.has_error(function() tcp.listen("127.0.0.1", 0) end)
    assert.same({nil, "EADDRINUSE: address already in use", "EADDRINUSE"}, (function()
      local l = assert(tcp.listen("127.0.0.1", 0, function() end))
      local r = {tcp.listen("127.0.0.1", l:port(), function() end)}
      l:close()
      return r
    end)())
  end)
end)
