-- http_client_tls_spec.lua: https:// in the HTTP client (engine/http_client_tls.c and the
-- TLS path of http_client_conn.c) against real TLS servers on loopback: `openssl s_server`
-- with a throwaway CA made here, Python's ssl for keep-alive, and sluice.tcp servers that
-- do not speak TLS.
local sl = require "sluice"
local tcp = require "sluice.tcp"
local http = require "sluice.http"
local H = require "spec.helpers"

local dir                      -- the CA, the certificates and the servers' scripts
local servers = {}             -- name -> {port, pid}

local function sh(cmd)
  local out, code = H.sh("(" .. cmd .. ") 2>&1")
  assert(code == 0, cmd .. " failed: " .. out)
  return out
end

-- A free port: bound on port 0, then given back.
local function free_port()
  local l = assert(tcp.listen("127.0.0.1", 0, function() end))
  local port = l:port()
  l:close()
  return port
end

-- Waits until something accepts on port (at most ~10 s, polling).
local function wait_listening(port)
  for _ = 1, 200 do
    local sock = tcp.connect("127.0.0.1", port)
    if sock then sock:close() return end
    sl.sleep(0.05)
  end
  error("nothing listens on port " .. port)
end

-- Starts a shell command in the background on a free port ("%d" in cmd); returns the port.
local function start(name, cmd)
  local port = free_port()
  local pid = sh(("cd %s && (%s) >/dev/null 2>&1 </dev/null & echo $!")
                 :format(H.quote(dir), cmd:format(port))):match("%d+")
  servers[name] = {port = port, pid = pid}
  wait_listening(port)
  return port
end

-- Makes a CA (name.pem, name.key), or a certificate signed by ca for the SAN list.
local function make_ca(name)
  sh(("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout %s.key -out %s.pem " ..
      "-days 2 -subj '/CN=sluice test %s'"):format(H.quote(dir), name, name, name))
end

local function make_cert(name, ca, san)
  sh(("cd %s && openssl req -newkey rsa:2048 -nodes -keyout %s.key -out %s.csr " ..
      "-subj '/CN=%s' && printf 'subjectAltName=%s\\n' > %s.ext && openssl x509 -req " ..
      "-in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -days 2 -out %s.pem " ..
      "-extfile %s.ext"):format(H.quote(dir), name, name, name, san, name, name, ca, ca,
                                name, name))
end

-- A keep-alive HTTP/1.1 server over TLS (Python's http.server and ssl).
local PY_SERVER = [[
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        b = ("hello " + self.path).encode()
        if self.path == "/big":
            b = bytes(i % 251 for i in range(300000))
        self.answer(b)
    def do_POST(self):
        got = 0
        if self.headers.get("Transfer-Encoding") == "chunked":
            while True:
                size = int(self.rfile.readline(), 16)
                got += len(self.rfile.read(size + 2)) - 2
                if size == 0:
                    break
        else:
            got = len(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.answer(("got %d" % got).encode())
    def answer(self, b):
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("srv.pem", "srv.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
]]

local has_python = H.sh("command -v python3 >/dev/null && echo yes"):find("yes") ~= nil

local fails = H.fails

describe("http client over TLS", function()
  local ca, www, other, client

  lazy_setup(function()
    dir = H.sh("mktemp -d"):gsub("%s+$", "")
    make_ca("ca")
    make_ca("wrong")
    make_cert("srv", "ca", "IP:127.0.0.1,DNS:localhost")
    make_cert("other", "ca", "DNS:other.example")
    ca = dir .. "/ca.pem"
    local port = start("www", "exec openssl s_server -quiet -accept %d -cert srv.pem " ..
                       "-key srv.key -www")
    www = "https://127.0.0.1:" .. port .. "/"
    port = start("other", "exec openssl s_server -quiet -accept %d -cert other.pem " ..
                 "-key other.key -www")
    other = port
  end)

  lazy_teardown(function()
    for _, s in pairs(servers) do os.execute("kill " .. s.pid .. " 2>/dev/null") end
    if dir then os.execute("rm -rf " .. H.quote(dir)) end
  end)

  after_each(function()
    if client then client:close() client = nil end
  end)

  it("GETs a page with ca_file, the handshake timed", function()
    client = http.client{ca_file = ca}
    local res = assert(client:get(www))
    assert.equals(200, res.status)
    assert.truthy(res.body:find("s_server", 1, true))
    assert.is_true(res.timings.tls > 0)
    assert.is_false(res.tls_resumed)
    assert.equals(www, res.url)
  end)

  it("verifies names: localhost and 127.0.0.1 are in the certificate", function()
    client = http.client{ca_file = ca}
    local port = servers.www.port
    assert.equals(200, assert(client:get("https://localhost:" .. port .. "/")).status)
    assert.equals(200, assert(client:request{url = www}).status)
  end)

  it("resumes the origin's TLS session on a new connection", function()
    client = http.client{ca_file = ca}
    local a = assert(client:get(www))       -- s_server -www closes after each response
    local b = assert(client:get(www))
    assert.is_false(a.tls_resumed)
    assert.is_true(b.tls_resumed)
    local st = client:stats()
    assert.equals(2, st.tls_handshakes)
    assert.equals(1, st.tls_resumed)
    assert.equals(2, st.connects)
  end)

  it("fails with ETLS for a CA it does not trust", function()
    client = http.client{ca_file = dir .. "/wrong.pem"}
    local err = fails("ETLS", client:get(www))
    assert.equals("ETLS: certificate verify failed: unable to get local issuer certificate " ..
                  "(host 127.0.0.1)", err)
    -- the system's store does not know the throwaway CA either
    fails("ETLS", http.get(www))
  end)

  it("fails with ETLS for a certificate of another name, unless tls_verify is false", function()
    client = http.client{ca_file = ca}
    local url = "https://localhost:" .. other .. "/"
    local err = fails("ETLS", client:get(url))
    assert.equals("ETLS: certificate verify failed: hostname mismatch (host localhost)", err)
    err = fails("ETLS", client:get("https://127.0.0.1:" .. other .. "/"))
    assert.truthy(err:find("IP address mismatch", 1, true), err)
    local res = assert(client:get(url, {tls_verify = false}))
    assert.equals(200, res.status)
    res = assert(http.get(www, {tls_verify = false}))
    assert.equals(200, res.status)
  end)

  it("raises for a ca_file it cannot load", function()
    assert.has_error(function() http.client{ca_file = dir .. "/missing.pem"} end)
    assert.has_error(function() http.get(www, {ca_file = 42}) end)
  end)

  it("fails with ETLS when the server does not speak TLS", function()
    local l = assert(tcp.listen("127.0.0.1", 0, function(sock)
      sock:read()
      sock:write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
      sock:close()
    end))
    client = http.client{ca_file = ca}
    local err = fails("ETLS", client:get("https://127.0.0.1:" .. l:port() .. "/"))
    assert.truthy(err:find("^ETLS: handshake failed: "), err)
    l:close()
  end)

  it("bounds a silent server's handshake by connect_timeout", function()
    local l = assert(tcp.listen("127.0.0.1", 0, function(sock)
      while sock:read() do end
      sock:close()
    end))
    client = http.client{ca_file = ca, connect_timeout = 0.3}
    local t0 = sl.now()
    local err = fails("ETIMEDOUT", client:get("https://127.0.0.1:" .. l:port() .. "/"))
    assert.truthy(err:find("connecting to", 1, true), err)
    assert.is_true(sl.now() - t0 < 2)
    client:close()
    client = nil
    l:close()
  end)

  it("lets go of everything when cancelled during the handshake", function()
    local seen = sl.event()
    local l = assert(tcp.listen("127.0.0.1", 0, function(sock)
      seen:set()
      while sock:read() do end
      sock:close()
    end))
    client = http.client{ca_file = ca}
    local t = sl.spawn(function() return client:get("https://127.0.0.1:" .. l:port() .. "/") end)
    assert.is_true(seen:wait(5))
    t:cancel()
    assert.is_false((pcall(t.join, t)))
    assert.equals("cancelled", t:status())
    assert.equals(0, client:stats().open)
    client:close()
    client = nil
    l:close()
  end)

  it("follows a redirect from http to https and back", function()
    local plain
    plain = assert(http.serve{handler = function(req)
      if req.path == "/go" then return 302, {Location = www}, "" end
      return 200, nil, "plain " .. req.path
    end})
    client = http.client{ca_file = ca}
    local res = assert(client:get("http://127.0.0.1:" .. plain.port .. "/go"))
    assert.equals(200, res.status)
    assert.equals(1, res.redirects)
    assert.equals(www, res.url)
    assert.is_true(res.timings.tls > 0)
    plain:close()
  end)

  it("runs 50 requests at a limit of 10", function()
    client = http.client{ca_file = ca}
    local n = 0
    for ok, res in sl.limited_as_completed(function()
      n = n + 1
      if n > 50 then return nil end
      return function() return assert(client:get(www)) end
    end, 10) do
      assert.is_true(ok, tostring(res))
      assert.equals(200, res.status)
    end
    assert.equals(50, client:stats().tls_handshakes)
  end)

  describe("keep-alive", function()
    local ka

    lazy_setup(function()
      if not has_python then return end
      H.write_file(dir .. "/ka.py", PY_SERVER)
      ka = "https://127.0.0.1:" .. start("ka", "exec python3 ka.py %d") .. "/"
    end)

    it("reuses a kept-alive TLS connection with no new handshake", function()
      if not ka then pending("python3 is not installed") end
      client = http.client{ca_file = ca}
      local a = assert(client:get(ka .. "a"))
      local b = assert(client:get(ka .. "b"))
      assert.equals("hello /a", a.body)
      assert.equals("hello /b", b.body)
      assert.is_true(a.timings.tls > 0)
      assert.equals(0, b.timings.tls)
      assert.equals(0, b.timings.connect)
      local st = client:stats()
      assert.equals(1, st.connects)
      assert.equals(1, st.reused)
      assert.equals(1, st.tls_handshakes)
    end)

    it("reads a large body, into a sink too, and sends a body", function()
      if not ka then pending("python3 is not installed") end
      client = http.client{ca_file = ca}
      local want = {}
      for i = 0, 299999 do want[#want + 1] = string.char(i % 251) end
      want = table.concat(want)
      local res = assert(client:get(ka .. "big"))
      assert.equals(#want, #res.body)
      assert.is_true(res.body == want)
      local parts = {}
      res = assert(client:get(ka .. "big", {sink = function(piece)
        parts[#parts + 1] = piece
        sl.sleep(0)
      end}))
      assert.is_nil(res.body)
      assert.is_true(table.concat(parts) == want)
      assert.is_true(#parts > 1)
      res = assert(client:request{method = "POST", url = ka, body = string.rep("x", 100000)})
      assert.equals("got 100000", res.body)
      local chunks = 0
      res = assert(client:request{method = "POST", url = ka, body = function()
        chunks = chunks + 1
        if chunks > 3 then return nil end
        sl.sleep(0)
        return string.rep("y", 30000)
      end})
      assert.equals("got 90000", res.body)
      assert.equals(1, client:stats().connects)
    end)

    it("keeps http and https to the same port apart", function()
      if not ka then pending("python3 is not installed") end
      client = http.client{ca_file = ca}
      assert(client:get(ka .. "x"))
      local port = ka:match(":(%d+)/")
      local res, err = client:get("http://127.0.0.1:" .. port .. "/x", {first_byte_timeout = 2})
      assert.is_true(res == nil or res.status == 400, err)
      assert.equals(2, client:stats().connects)
    end)
  end)
end)
