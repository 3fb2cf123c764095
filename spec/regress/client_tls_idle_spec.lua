-- client_tls_idle_spec.lua: issue 11 review. idle_timeout is the time the server may send
-- nothing. Over TLS the bytes arrive as records, and one record decodes to nothing until
-- its last byte is in; since TLS moved into the stream (stream_tls.c), the client saw only
-- decoded bytes, so a server sending one record slowly but steadily (here: 8000 bytes in
-- 250-byte pieces every 40 ms) was cut off as idle after idle_timeout. Before the stream,
-- every read from the socket counted, and still does.
local sl = require "sluice"
local http = require "sluice.http"
local H = require "spec.helpers"

-- Python's ssl through memory BIOs, so that one record can be sent in pieces: the head of
-- the response goes out at once, then a body of 8000 bytes (one record) 250 bytes at a time.
local PY = [[
import socket, ssl, sys, time, os
d = sys.argv[1]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/c.pem", d + "/k.pem")
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(5)
open(d + "/port.tmp", "w").write(str(ls.getsockname()[1]))
os.rename(d + "/port.tmp", d + "/port")
conn, _ = ls.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, out, server_side=True)
def flush():
    data = out.read()
    if data:
        conn.sendall(data)
def more():
    flush()
    data = conn.recv(65536)
    if not data:
        sys.exit(0)
    inc.write(data)
while True:
    try:
        obj.do_handshake()
        break
    except ssl.SSLWantReadError:
        more()
flush()
buf = b""
while b"\r\n\r\n" not in buf:
    try:
        buf += obj.read(65536)
    except ssl.SSLWantReadError:
        more()
obj.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8000\r\nConnection: close\r\n\r\n")
flush()
obj.write(b"t" * 8000)
rec = out.read()
for i in range(0, len(rec), 250):
    conn.sendall(rec[i:i + 250])
    time.sleep(0.04)
time.sleep(2)
]]

describe("regress: idle_timeout over TLS", function()
  it("counts the bytes of a record still arriving as received", function()
    local dir = H.sh("mktemp -d"):gsub("%s+$", "")
    finally(function() os.execute("rm -rf " .. H.quote(dir)) end)
    local out, code = H.sh(("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem "
                            .. "-out c.pem -days 2 -subj '/CN=127.0.0.1' 2>&1")
                           :format(H.quote(dir)))
    assert(code == 0, out)
    H.write_file(dir .. "/srv.py", PY)
    os.execute(("timeout 20 python3 %s %s >/dev/null 2>&1 </dev/null &")
               :format(H.quote(dir .. "/srv.py"), H.quote(dir)))
    assert(H.poll(function() return H.read_file(dir .. "/port") ~= "" end, 10))
    local port = tonumber(H.read_file(dir .. "/port"))
    local client = http.client{tls_verify = false, idle_timeout = 0.4}
    finally(function() client:close() end)
    local t0 = sl.now()
    local r, err = client:get("https://127.0.0.1:" .. port .. "/")
    assert(r, err)
    assert.equals(200, r.status)
    assert.equals(("t"):rep(8000), r.body)
    assert.is_true(sl.now() - t0 >= 1)        -- it did take longer than idle_timeout
  end)
end)
