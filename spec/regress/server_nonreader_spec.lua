-- Issue 9, defect 1: a client that pipelines requests and never reads made the server queue
-- every response (RSS from 9 MB to 1 GB from 30 KB of requests), was never timed out (the
-- sweep skipped connections with writes pending), and kept server:close() and Ctrl-C
-- waiting. Now a connection takes its next request only once the last response has gone
-- out, send_timeout closes a peer that takes nothing, and closing is bounded.
local sl = require "sluice"
local H = require "spec.helpers"
local W = require "spec.http_wire"

local REQ = "GET / HTTP/1.1\r\nHost: test\r\n\r\n"

-- A script that serves `body` to a non-reading client of its own: 200 pipelined requests
-- are written and the socket is never read (it reads ahead 64 KiB, then stops). The socket
-- is a global, so nothing collects it.
local function nonreader_script(serve_opts, after)
  return ([[
    local sl = require "sluice"
    local tcp = require "sluice.tcp"
    local http = require "sluice.http"
    local function rss_mb()
      local f = assert(io.open("/proc/self/status"))
      local s = f:read("a")
      f:close()
      return tonumber(s:match("VmRSS:%%s*(%%d+)")) / 1024
    end
    local body = string.rep("x", 1024 * 1024)
    calls = 0
    local called = sl.event()
    srv = assert(http.serve{port = 0, handler = function()
      calls = calls + 1
      called:set()
      return 200, nil, body
    end, %s})
    collectgarbage()
    before = rss_mb()
    sock = assert(tcp.connect("127.0.0.1", srv.port))
    t0 = sl.now()
    sock:write(string.rep(%q, 200))
    called:wait()
    %s
  ]]):format(serve_opts, REQ, after)
end

describe("the HTTP server and a client that never reads", function()

  it("queues one response, not 200, and send_timeout closes the connection", function()
    local r = H.run({"-e", nonreader_script("send_timeout = 12", [[
      sl.sleep(10)
      print("held", srv:stats().open, calls, rss_mb() - before)
      while srv:stats().open > 0 and sl.now() - t0 < 16 do sl.sleep(0.05) end
      print("closed", srv:stats().open, sl.now() - t0)
      srv:close(1)
      sock:close()
    ]])})
    assert.equals(0, r.code, r.err)
    local open, calls, growth = r.out:match("^held\t(%d+)\t(%d+)\t([%d.]+)\n")
    assert.is_not_nil(open, r.out)
    assert.equals("1", open)                         -- still open after 10 s: not idle
    assert.is_true(tonumber(calls) <= 8, calls .. " responses were made for a peer that reads none")
    assert.is_true(tonumber(growth) < 64, "RSS grew by " .. growth .. " MB")
    local left, at = r.out:match("\nclosed\t(%d+)\t([%d.]+)\n")
    assert.equals("0", left)
    at = tonumber(at)
    assert.is_true(at >= 11.9 and at < 14, "closed after " .. at .. " s, send_timeout is 12")
  end, {timeout = 30})

  it("server:close(timeout) returns within it while the peer takes nothing", function()
    local body = string.rep("y", 32 * 1024 * 1024)   -- more than loopback buffers hold
    local calls, called = 0, sl.event()
    local srv = W.start(function()
      calls = calls + 1
      called:set()
      return 200, nil, body
    end)
    local c = W.connect(srv)
    c:send(REQ .. REQ .. REQ)
    called:wait()                                    -- its response is queued by now
    local t0 = sl.now()
    assert.is_true(srv:close(0.3))
    local took = sl.now() - t0
    assert.is_true(took >= 0.29 and took < 1, "close(0.3) took " .. took .. " s")
    assert.equals(0, srv:stats().open)
    assert.equals(1, calls)                          -- the next requests waited
    assert.is_true(c:closed())
  end, {timeout = 10})

  -- Ctrl-C cancels the server's task; its close must not wait for the peer.
  for _, case in ipairs{
    {"while the script has ended and the server runs on", ""},
    {"while main waits in server:close() without a timeout", "srv:close() print('closed')"},
  } do
    it("ends the process within 5 s of Ctrl-C " .. case[1], function()
      local path = H.tmpfile(nonreader_script("", "print('ready') io.stdout:flush() " .. case[2]))
      finally(function() os.remove(path) end)
      local r = H.interrupt(path)
      assert.equals(130, r.code, r.err)
      assert.equals("ready\n", r.out)
      assert.is_true(r.ms < 5000, "took " .. tostring(r.ms) .. " ms")
    end, {timeout = 25})
  end
end)
