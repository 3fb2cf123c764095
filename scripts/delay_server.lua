-- delay_server.lua: the seeds' test server on sluice's own HTTP server. Each request gets
-- "Hello, World!" after a random whole number of seconds from 0 to max_delay, each handler
-- a task that sleeps, so thousands of requests wait side by side.
--[[ usage: sluice scripts/delay_server.lua [port=8080] [max_delay=3]

Prints "listening on http://127.0.0.1:PORT" once it accepts connections (port 0 picks a
free port) and serves until Ctrl-C, which closes it and ends the process.
]]
local sl = require "sluice"
local http = require "sluice.http"

local port = tonumber(arg[1] or 8080)
local max_delay = tonumber(arg[2] or 3)
if not port or not max_delay or max_delay < 0 then
  io.stderr:write("usage: sluice scripts/delay_server.lua [port=8080] [max_delay=3]\n")
  os.exit(2)
end

local server = assert(http.serve{
  host = "127.0.0.1",
  port = port,
  backlog = 4096,        -- a client opening a thousand connections at once is not refused
  handler = function(req)
    sl.sleep(math.random(0, max_delay))
    return 200, {["Content-Type"] = "text/plain"}, "Hello, World!"
  end,
})
print(("listening on http://127.0.0.1:%d"):format(server.port))
io.stdout:flush()
-- The server keeps running after this script's end, until Ctrl-C cancels its task.
