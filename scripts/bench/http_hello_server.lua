-- Benchmark server: sluice's HTTP server with a Lua handler that answers "Hello, World!",
-- the same answer as the nginx in http_nginx.conf.in; run.sh points wrk at both.
--[[ usage: sluice http_hello_server.lua [PORT=0]

Prints "listening on http://127.0.0.1:PORT" once it accepts connections (PORT 0: a free
port) and serves until it is stopped (Ctrl-C or SIGTERM).
]]
local sl = require "sluice"
local http = require "sluice.http"

local HEADERS = {["content-type"] = "text/plain"}

local server = http.serve{
  host = "127.0.0.1",
  port = tonumber(arg[1]) or 0,
  handler = function(req)
    return 200, HEADERS, "Hello, World!"
  end,
}
print(("listening on http://127.0.0.1:%d"):format(server.port))
io.stdout:flush()

-- Serve until stopped: the server's own tasks keep the loop busy; this keeps the main task.
sl.event():wait()
