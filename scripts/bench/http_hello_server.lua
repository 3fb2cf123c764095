-- Benchmark server: sluice's HTTP server with a Lua handler that answers "Hello, World!",
-- the same answer as the nginx in http_nginx.conf.in; run.sh points wrk at both.
--[[ usage: sluice http_hello_server.lua [PORT=0]

Prints "listening on http://127.0.0.1:PORT" once it accepts connections (PORT 0: a free
port) and serves until it is stopped (Ctrl-C or SIGTERM).
]]
local http = require "sluice.http"

local HEADERS = {["content-type"] = "text/plain"}

local server = assert(http.serve{
  host = "127.0.0.1",
  port = tonumber(arg[1]) or 0,
  backlog = 4096,
  handler = function(req)
    return 200, HEADERS, "Hello, World!"
  end,
})
print(("listening on http://127.0.0.1:%d"):format(server.port))
io.stdout:flush()
-- The server goes on serving after the script's end, until the process is stopped.
