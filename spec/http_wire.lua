-- http_wire.lua: raw HTTP/1.1 on loopback, so every byte on the wire is the spec's own
-- (`local W = require "spec.http_wire"`). For the server's specs (http_server_spec.lua and
-- spec/regress/server_*): a server per test and a client that writes and reads the bytes
-- itself. For the client's (spec/regress/client_*): a server that writes the bytes itself.
local sl = require "sluice"
local tcp = require "sluice.tcp"
local http = require "sluice.http.server"

local W = {}

--- Starts a server for one test; it is closed after the test even when the test fails.
function W.start(handler, opts)
  opts = opts or {}
  opts.handler = handler
  opts.port = opts.port or 0
  local srv = assert(http.serve(opts))
  finally(function() srv:close(1) end)
  return srv
end

-- A client connection that reads responses off a raw socket.
local Conn = {}
Conn.__index = Conn

--- Connects to srv (a server or a port); the socket is closed after the test.
function W.connect(srv)
  local sock = assert(tcp.connect("127.0.0.1", type(srv) == "table" and srv.port or srv))
  finally(function() sock:close() end)
  return setmetatable({sock = sock, buf = ""}, Conn)
end

function Conn:send(data)
  assert(self.sock:write(data))
end

-- Reads more bytes into the buffer; false at the end of the stream.
function Conn:fill()
  local data = self.sock:read()
  if not data then return false end
  self.buf = self.buf .. data
  return true
end

function Conn:take(n)
  while #self.buf < n do assert(self:fill(), "connection closed inside a response body") end
  local s = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return s
end

function Conn:line()
  while not self.buf:find("\r\n", 1, true) do assert(self:fill(), "connection closed") end
  local i = self.buf:find("\r\n", 1, true)
  local s = self.buf:sub(1, i - 1)
  self.buf = self.buf:sub(i + 2)
  return s
end

--- Reads one response: {status, headers (lower-case names), body, head}; nil at EOF.
--- `no_body` is for answers to HEAD.
function Conn:response(no_body)
  while not self.buf:find("\r\n\r\n", 1, true) do
    if not self:fill() then
      assert(self.buf == "", "connection closed inside a response head")
      return nil
    end
  end
  local e = self.buf:find("\r\n\r\n", 1, true)
  local head = self.buf:sub(1, e - 1)
  self.buf = self.buf:sub(e + 4)
  local r = {head = head, headers = {}, status = tonumber(head:match("^HTTP/1%.1 (%d%d%d) "))}
  for name, value in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do
    r.headers[name:lower()] = value
  end
  if no_body or r.status < 200 or r.status == 204 or r.status == 304 then
    r.body = ""
  elseif r.headers["content-length"] then
    r.body = self:take(tonumber(r.headers["content-length"]))
  elseif r.headers["transfer-encoding"] == "chunked" then
    local parts = {}
    while true do
      local size = tonumber(self:line(), 16)
      if size == 0 then assert(self:line() == "") break end
      parts[#parts + 1] = self:take(size)
      assert(self:take(2) == "\r\n")
    end
    r.body, r.chunked = table.concat(parts), parts
  else
    while self:fill() do end
    r.body = self.buf
    self.buf = ""
  end
  return r
end

--- True once the server has closed the connection (after any bytes still buffered).
function Conn:closed()
  while self:fill() do end
  return true
end

--- A GET request for path with the extra header lines given ("Name: value\r\n"...).
function W.get(path, extra)
  return ("GET %s HTTP/1.1\r\nHost: test\r\n%s\r\n"):format(path, extra or "")
end

-- A raw server for the client's specs.
local Raw = {}
Raw.__index = Raw

--- A server whose connections each read a request head, then fn(sock, head) writes the
--- answer and the socket is closed (at once if the peer closes before a whole head). It
--- has listener, port, url ("http://127.0.0.1:PORT/"), heads (every head read, in order)
--- and conns (connections accepted); it is closed after the test.
function W.raw_server(fn)
  local s = setmetatable({heads = {}, conns = 0}, Raw)
  s.listener = assert(tcp.listen("127.0.0.1", 0, function(sock)
    s.conns = s.conns + 1
    local head = s:read_head(sock)
    if head then fn(sock, head) end
    sock:close()
  end))
  finally(function() s.listener:close() end)
  s.port = s.listener:port()
  s.url = "http://127.0.0.1:" .. s.port .. "/"
  return s
end

--- Reads the next request head off sock, through its blank line, and adds it to heads;
--- nil when the peer closes first. Bytes read past the head (a body) are dropped.
function Raw:read_head(sock)
  local buf = ""
  while not buf:find("\r\n\r\n", 1, true) do
    local data = sock:read()
    if not data then return nil end
    buf = buf .. data
  end
  local head = buf:sub(1, buf:find("\r\n\r\n", 1, true) + 3)
  self.heads[#self.heads + 1] = head
  return head
end

--- Writes a chunked 200 with the extra header lines given ("Name: value\r\n"...) and
--- Connection: close: each piece a chunk in a write of its own, then a short pause (most
--- often a read of its own for the client: not needed for correctness), then the last
--- chunk. Stops at a write that fails.
function W.write_chunked(sock, pieces, extra)
  sock:write("HTTP/1.1 200 OK\r\n" .. (extra or "")
             .. "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
  for _, p in ipairs(pieces) do
    if not sock:write(("%x\r\n%s\r\n"):format(#p, p)) then return end
    sl.sleep(0.005)
  end
  sock:write("0\r\n\r\n")
end

return W
