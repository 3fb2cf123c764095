-- sluice.http.server: http.serve, the HTTP/1.1 server (re-exported by sluice.http). The
-- work is in C (sluice.http.server_core: connections, parsing, worker tasks, responses);
-- this module gives the server object its fields and documents the API.
local core = require "sluice.http.server_core"

local M = {}

local Server = {}
Server.__index = Server

--- Stops accepting, closes idle connections, lets the requests in flight finish and
--- returns true once they have (when called inside a task). After `timeout` seconds the
--- handlers still running are cancelled and every connection left is dropped, whatever
--- its client does. Idempotent.
function Server:close(timeout)
  return self._core:close(timeout)
end

Server.__close = Server.close

--- Counters: connections (accepted), open, requests, workers (tasks), idle (workers).
function Server:stats()
  return self._core:stats()
end

--- True once close() was called.
function Server:is_closed()
  return self._core:is_closed()
end

function Server:__tostring()
  return ("http server (%s://%s:%d%s)"):format(self.tls and "https" or "http", self.host,
    self.port,
    self._core:is_closed() and ", closed" or "")
end

--- Starts an HTTP/1.1 server; returns it, or nil, "ENAME: message", "ENAME".
--- opts.handler(req) runs in a task for each request and returns status, headers, body.
function M.serve(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'serve' (table expected, got " .. type(opts) .. ")", 2)
  end
  if type(opts.handler) ~= "function" then
    error("bad argument #1 to 'serve' (opts.handler must be a function)", 2)
  end
  local c, err, code = core.serve(opts)
  if not c then return nil, err, code end
  return setmetatable({port = c:port(), host = opts.host or "127.0.0.1",
                       tls = opts.tls ~= nil, _core = c}, Server)
end

return M
