-- tcp_connect_cancel_spec.lua: issue 11 review. A task cancelled after its connect had
-- succeeded but before it ran again (another task cancels it in between) left the
-- connected socket open until the garbage collector found its record: nobody could use or
-- close it, and the peer saw a connection that never ended. Since tcp.connect moved onto
-- stream.c's connect, the cancellation skipped the code that closed it; it closes it again.
local sl = require "sluice"
local tcp = require "sluice.tcp"

describe("regress: tcp.connect cancelled once connected", function()
  it("closes the connection, with no garbage collection needed", function()
    collectgarbage("stop")
    finally(function() collectgarbage("restart") end)
    local ended, seen = sl.event(), nil
    local l <close> = assert(tcp.listen("127.0.0.1", 0, function(sock)
      sock:settimeout(2)
      seen = select(3, sock:read())   -- EOF once the connecter's socket is closed
      ended:set()
    end))
    -- The connecter and the canceller start together: the canceller's sleep(0) ends in the
    -- loop turn the connect completes in, before the connecter runs on.
    local connecter = sl.spawn(function() return tcp.connect("127.0.0.1", l:port()) end)
    local canceller = sl.spawn(function()
      sl.sleep(0)
      assert.equals("suspended", connecter:status())
      connecter:cancel()
    end)
    canceller:join()
    assert.is_false((pcall(connecter.join, connecter)))
    assert.equals("cancelled", connecter:status())
    assert.is_true(ended:wait(3))
    assert.equals("EOF", seen)        -- not ETIMEDOUT: the connection was closed
  end)
end)
