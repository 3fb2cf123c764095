-- http_server_tls_spec.lua: server TLS (engine/stream_tls.c's server side, http.serve and
-- tcp.listen with opts.tls) against real clients on loopback: curl -k, openssl s_client,
-- Python's ssl and sluice's own client, with a certificate made here by openssl. The
-- servers the blocking clients (curl, openssl, python3) talk to run in a sluice process of
-- their own, so this one may wait for those clients.
local sl = require "sluice"
local tcp = require "sluice.tcp"
local http = require "sluice.http"
local H = require "spec.helpers"

local dir                      -- the certificates, the server's script and its ports
local pid                      -- the server process
local hport, tport             -- its HTTPS port and its TLS echo port

local function sh(cmd)
  local out, code = H.sh("(" .. cmd .. ") 2>&1")
  assert(code == 0, cmd .. " failed: " .. out)
  return out
end

-- The server process: http.serve with TLS (a short keepalive_timeout, which also bounds a
-- handshake that never ends) and tcp.listen with TLS, greeting, then echoing until "bye".
local SERVER = [[
local http = require "sluice.http"
local tcp = require "sluice.tcp"
local tls = {cert = "cert.pem", key = "key.pem"}
local srv = assert(http.serve{port = 0, tls = tls, keepalive_timeout = 1,
  handler = function(req)
    return 200, {["X-Remote"] = req.remote}, req.method .. " " .. req.target .. " " .. req.body
  end})
local l = assert(tcp.listen("127.0.0.1", 0, function(sock)
  sock:settimeout(5)
  assert(sock:write("hello\n"))                 -- before the handshake is over
  while true do
    local data = sock:read()
    if not data then break end
    assert(sock:write(data))
    if data:find("bye\n", 1, true) then break end
  end
end, {tls = tls}))
local f = io.open("ports.tmp", "w")
f:write(srv.port, " ", l:port(), "\n")
f:close()
os.rename("ports.tmp", "ports")
]]

-- A TLS client on Python's ssl with memory BIOs: the handshake's last flight and the first
-- request go out in one write, so the server reads them in one go. Prints the ALPN
-- protocol chosen, then each response (several requests on one connection).
local PY_CLIENT = [[
import socket, ssl, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations("cert.pem")
ctx.set_alpn_protocols(["h2", "http/1.1"])
sock = socket.create_connection(("127.0.0.1", port), timeout=5)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
while True:
    try:
        obj.do_handshake()
        break
    except ssl.SSLWantReadError:
        sock.sendall(out.read())
        data = sock.recv(65536)
        if not data:
            sys.exit("closed in the handshake")
        inc.write(data)
print(obj.selected_alpn_protocol())
for i in range(n):
    obj.write(b"GET /py%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
    sock.sendall(out.read())            # with the Finished the first time
    got = b""
    while not got.endswith(b"GET /py%d " % i):
        try:
            got += obj.read(65536)
        except ssl.SSLWantReadError:
            data = sock.recv(65536)
            if not data:
                sys.exit("closed after " + repr(got))
            inc.write(data)
    print(got.split(b"\r\n")[0].decode(), got.split(b"\r\n\r\n", 1)[1].decode())
]]

local function py(script, ...)
  local args = table.concat({...}, " ")
  return sh(("cd %s && timeout 4 python3 %s %s"):format(H.quote(dir), script, args))
end

describe("server TLS", function()
  lazy_setup(function()
    dir = H.sh("mktemp -d"):gsub("%s+$", "")
    local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    sh(("cd %s && openssl req -x509 " .. ec .. " -keyout key.pem -out cert.pem " ..
        "-days 2 -subj '/CN=localhost' -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' " ..
        "&& openssl req -x509 " .. ec .. " -keyout other.key -out other.pem " ..
        "-days 2 -subj '/CN=other'"):format(H.quote(dir)))
    H.write_file(dir .. "/server.lua", SERVER)
    H.write_file(dir .. "/client.py", PY_CLIENT)
    local bin = sh("realpath " .. H.quote(H.bin)):gsub("%s+$", "")
    pid = sh(("cd %s && (exec timeout 120 %s server.lua) >server.log 2>&1 </dev/null & " ..
              "echo $!"):format(H.quote(dir), H.quote(bin))):match("%d+")
    assert(H.poll(function() return H.read_file(dir .. "/ports") ~= "" end, 10),
           "the server did not start: " .. H.read_file(dir .. "/server.log"))
    local h, t = H.read_file(dir .. "/ports"):match("(%d+) (%d+)")
    hport, tport = tonumber(h), tonumber(t)
  end)

  lazy_teardown(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    if dir then os.execute("rm -rf " .. H.quote(dir)) end
  end)

  local function url(path) return "https://127.0.0.1:" .. hport .. path end

  it("answers curl -k: a GET and a POST with a body on one kept-alive connection", function()
    local w = "-sk -w ' %{num_connects}\\n'"
    local out = sh(("cd %s && curl %s %s --next %s -d 'a body' %s -v 2>curl.err")
                   :format(H.quote(dir), w, H.quote(url("/get")), w, H.quote(url("/post"))))
    assert.equals("GET /get  1\nPOST /post a body 0\n", out)   -- 0: no new connection
    local err = H.read_file(dir .. "/curl.err")
    assert.truthy(err:find("ALPN: server accepted http/1.1", 1, true), err)
    assert.truthy(err:find("Re-using existing connection", 1, true), err)
  end)

  it("negotiates ALPN http/1.1 with openssl s_client, TLS 1.2 too", function()
    for _, v in ipairs{"-tls1_3", "-tls1_2"} do
      local out = sh(("printf 'GET /s HTTP/1.1\\r\\nHost: x\\r\\nConnection: close" ..
                      "\\r\\n\\r\\n' | timeout 10 openssl s_client %s -alpn h2,http/1.1 " ..
                      "-ign_eof -connect 127.0.0.1:%d"):format(v, hport))
      assert.truthy(out:find("ALPN protocol: http/1.1", 1, true), out)
      assert.truthy(out:find("GET /s ", 1, true), out)
    end
    -- TLS 1.1 (which this client would offer at security level 0) is refused
    local out = H.sh(("timeout 10 openssl s_client -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' " ..
                      "-connect 127.0.0.1:%d </dev/null 2>&1"):format(hport))
    assert.truthy(out:find("no peer certificate available", 1, true), out)
  end)

  it("resumes sessions with tickets (openssl s_client -sess_out, -sess_in)", function()
    local req = "printf 'GET /t HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | "
    sh(("cd %s && %s timeout 10 openssl s_client -ign_eof -sess_out sess.pem " ..
        "-connect 127.0.0.1:%d"):format(H.quote(dir), req, hport))
    local out = sh(("cd %s && %s timeout 10 openssl s_client -ign_eof -sess_in sess.pem " ..
                    "-connect 127.0.0.1:%d"):format(H.quote(dir), req, hport))
    assert.truthy(out:find("Reused, TLSv1.3", 1, true), out)
  end)

  it("hands over a request that came in one read with the handshake's end (Python ssl)",
     function()
    local out = py("client.py", hport, 3)
    assert.equals("http/1.1\n" ..
                  "HTTP/1.1 200 OK GET /py0 \nHTTP/1.1 200 OK GET /py1 \n" ..
                  "HTTP/1.1 200 OK GET /py2 \n", out)
  end)

  it("is reached by sluice's own client, verified with the certificate as ca_file", function()
    local client = http.client{ca_file = dir .. "/cert.pem"}
    local a = assert(client:get(url("/own")))
    local b = assert(client:request{method = "POST", url = url("/own"), body = "xyz"})
    assert.equals("GET /own ", a.body)
    assert.equals("POST /own xyz", b.body)
    assert.equals("127.0.0.1", b.headers["x-remote"])
    assert.equals(1, client:stats().connects)
    client:close()
    client = http.client{tls_verify = false}
    finally(function() client:close() end)
    assert.equals("GET /noverify ", assert(client:get(url("/noverify"))).body)
    -- and a server in this process
    local srv = assert(http.serve{port = 0, tls = {cert = dir .. "/cert.pem",
      key = dir .. "/key.pem"}, handler = function(req) return 200, nil, "in " .. req.body end})
    finally(function() srv:close(1) end)
    assert.matches("^http server %(https://127%.0%.0%.1:%d+%)$", tostring(srv))
    local c2 = http.client{ca_file = dir .. "/cert.pem"}
    finally(function() c2:close() end)
    for i = 1, 3 do
      local res = assert(c2:request{method = "POST", url = "https://127.0.0.1:" .. srv.port ..
                                    "/", body = ("b"):rep(i * 30000)})
      assert.equals("in " .. ("b"):rep(i * 30000), res.body)
    end
    assert.equals(1, c2:stats().connects)
  end)

  it("closes plain HTTP and garbage quietly, and serves on", function()
    local plain, garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ("\22\3\1\0\5junk"):rep(50)
    for _, junk in ipairs{plain, garbage} do
      local sock = assert(tcp.connect("127.0.0.1", hport))
      sock:settimeout(5)
      assert(sock:write(junk))
      local data, err = sock:read()
      assert.is_nil(data)
      assert.truthy(err:find("^EOF") or err:find("^ECONNRESET"), err)
      sock:close()
    end
    local out = sh(("curl -sk %s"):format(H.quote(url("/after"))))
    assert.equals("GET /after ", out)
  end)

  it("ends a handshake that never finishes with keepalive_timeout", function()
    local sock = assert(tcp.connect("127.0.0.1", hport))
    sock:settimeout(5)
    assert(sock:write("\22\3\1\2\0\1"))          -- the start of a ClientHello, no more
    local t0 = sl.now()
    local data, err = sock:read()
    assert.is_nil(data)
    assert.truthy(err:find("^EOF") or err:find("^ECONNRESET"), err)
    assert.is_true(sl.now() - t0 < 4)
    sock:close()
  end)

  it("gives tcp.listen sockets over TLS: a greeting written early, then an echo", function()
    -- the server closes after "bye" (with close_notify, or s_client would fail)
    local out = sh(("printf 'one\\ntwo\\nbye\\n' | timeout 10 openssl s_client -quiet " ..
                    "-connect 127.0.0.1:%d 2>/dev/null"):format(tport))
    assert.equals("hello\none\ntwo\nbye\n", out)
    local py_echo = [[
import socket, ssl, sys
ctx = ssl.create_default_context(cafile="cert.pem")
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        f = s.makefile("rwb")
        print(f.readline().decode().strip())
        f.write(b"x" * 100000 + b"\n"); f.flush()
        print(len(f.readline()))
]]
    H.write_file(dir .. "/echo.py", py_echo)
    assert.equals("hello\n100001\n", py("echo.py", tport))
  end)

  it("gives a tcp.listen handler ETLS when the handshake fails", function()
    local got
    local l = assert(tcp.listen("127.0.0.1", 0, function(sock)
      local data, err, code = sock:read()
      local ok, werr = sock:write("late")
      got = {data, err, code, ok, werr}
    end, {tls = {cert = dir .. "/cert.pem", key = dir .. "/key.pem"}}))
    finally(function() l:close() end)
    local sock = assert(tcp.connect("127.0.0.1", l:port()))
    finally(function() sock:close() end)
    sock:settimeout(5)
    assert(sock:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert.is_nil(sock:read())                  -- no answer: the handler closed it
    assert.is_nil(got[1])
    assert.equals("ETLS", got[3])
    assert.matches("^ETLS: handshake failed: ", got[2])
    assert.is_nil(got[4])
    assert.matches("^ETLS: ", got[5])
  end)

  it("fails at serve and listen time for a key of another certificate or a bad file",
     function()
    local function check(tls, code_err)
      local ok, err, code = http.serve{port = 0, tls = tls, handler = function() end}
      assert.is_nil(ok)
      assert.equals("ETLS", code)
      assert.truthy(err:find(code_err, 1, true), err)
      ok, err, code = tcp.listen("127.0.0.1", 0, function() end, {tls = tls})
      assert.is_nil(ok)
      assert.equals("ETLS", code)
      assert.truthy(err:find(code_err, 1, true), err)
    end
    local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
    check({cert = cert, key = dir .. "/other.key"},
          "ETLS: key '" .. dir .. "/other.key' does not match cert '" .. cert .. "'")
    check({cert = dir .. "/missing.pem", key = key},
          "ETLS: cannot read cert '" .. dir .. "/missing.pem': No such file or directory")
    check({cert = key, key = key}, "ETLS: cannot load cert '" .. key .. "'")
    check({cert = cert, key = cert}, "ETLS: cannot load key '" .. cert .. "'")
    assert.has_error(function()
      http.serve{port = 0, tls = {cert = cert}, handler = function() end}
    end, "http.serve: tls.cert and tls.key must be file names")
    assert.has_error(function()
      http.serve{port = 0, tls = "cert.pem", handler = function() end}
    end)
    assert.has_error(function() tcp.listen("127.0.0.1", 0, function() end, {tls = {}}) end)
  end)
end)
