-- http_proxy_spec.lua: the HTTP client through proxies (engine/http_client_proxy.c and
-- http_client_tunnel.c) against real ones started here on loopback: tinyproxy (forwarded
-- http://, CONNECT for https://, Basic authentication) and dante (SOCKS5, with and without
-- a user name; dante checks system users, so one is added), in front of sluice's own
-- servers (plain and TLS, with a certificate made here by openssl); and proxies that
-- refuse, close or answer garbage, made with sluice.tcp. The environment variables are
-- tried in child processes, each with its own environment.
local sl = require "sluice"
local tcp = require "sluice.tcp"
local http = require "sluice.http"
local H = require "spec.helpers"

local dir                      -- certificates, configurations, logs
local pids = {}                -- the proxies' processes
local plain, plain2, tls, other -- sluice's servers (other: a certificate for another name)
local seen = {}                -- the last request each server saw: target and Via header
local TP, TPA, TPR, SK, SKA    -- ports: tinyproxy, with auth, with CONNECT to 443 only;
                               -- dante, dante with auth
local socks_user               -- true when the system user for dante's auth exists

local function sh(cmd)
  local out, code = H.sh("(" .. cmd .. ") 2>&1")
  assert(code == 0, cmd .. " failed: " .. out)
  return out
end

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
  error("nothing listens on port " .. port .. ": " .. H.sh("cat " .. dir .. "/*.log"))
end

-- Starts a proxy (cmd run in dir, with conf written to name.conf) on a free port.
local function start(name, cmd, conf)
  local port = free_port()
  H.write_file(dir .. "/" .. name .. ".conf", conf:gsub("PORT", port))
  pids[#pids + 1] = sh(("cd %s && (exec timeout 300 %s) >%s.log 2>&1 </dev/null & echo $!")
                       :format(H.quote(dir), cmd, name)):match("%d+")
  wait_listening(port)
  return port
end

local TINYPROXY = [[
Port PORT
Listen 127.0.0.1
Timeout 30
Allow 127.0.0.1
LogLevel Critical
]]

local DANTE = [[
logoutput: stderr
internal: 127.0.0.1 port = PORT
external: 127.0.0.1
socksmethod: METHOD
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
]]

local function handler(name)
  return function(req)
    seen[name] = {target = req.target, via = req.headers.via}
    if req.target == "/redirect" then
      return 302, {Location = "http://127.0.0.1:" .. plain2.port .. "/after"}, ""
    end
    return 200, {}, name .. " " .. req.target
  end
end

local function url(srv, path, scheme)
  return (scheme or "http") .. "://127.0.0.1:" .. srv.port .. (path or "/")
end

describe("HTTP client through proxies", function()
  lazy_setup(function()
    dir = H.sh("mktemp -d"):gsub("%s+$", "")
    local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    sh(("cd %s && openssl req -x509 " .. ec .. " -keyout key.pem -out cert.pem " ..
        "-days 2 -subj '/CN=localhost' -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' " ..
        "&& openssl req -x509 " .. ec .. " -keyout other.key -out other.pem " ..
        "-days 2 -subj '/CN=other' -addext 'subjectAltName=DNS:other'"):format(H.quote(dir)))
    TP = start("tp", "tinyproxy -d -c tp.conf", TINYPROXY)
    TPA = start("tpa", "tinyproxy -d -c tpa.conf", TINYPROXY .. "BasicAuth alice s3cret\n")
    TPR = start("tpr", "tinyproxy -d -c tpr.conf", TINYPROXY .. "ConnectPort 443\n")
    SK = start("sk", "danted -f sk.conf", (DANTE:gsub("METHOD", "none")))
    socks_user = os.execute("id sluiceproxy >/dev/null 2>&1 || " ..
      "(useradd -M -s /usr/sbin/nologin sluiceproxy && " ..
      "echo 'sluiceproxy:pw0rd' | chpasswd) >/dev/null 2>&1")
    if socks_user then
      SKA = start("ska", "danted -f ska.conf", (DANTE:gsub("METHOD", "username")))
    end
  end)

  lazy_teardown(function()
    for _, pid in ipairs(pids) do os.execute("kill " .. pid .. " 2>/dev/null") end
    if dir then os.execute("rm -rf " .. H.quote(dir)) end
  end)

  -- sluice's servers for one test, closed when it ends.
  before_each(function()
    seen = {}
    plain = assert(http.serve{host = "127.0.0.1", port = 0, handler = handler("plain")})
    plain2 = assert(http.serve{host = "127.0.0.1", port = 0, handler = handler("plain2")})
    tls = assert(http.serve{host = "127.0.0.1", port = 0, handler = handler("tls"),
                            tls = {cert = dir .. "/cert.pem", key = dir .. "/key.pem"}})
    other = assert(http.serve{host = "127.0.0.1", port = 0, handler = handler("other"),
                              tls = {cert = dir .. "/other.pem", key = dir .. "/other.key"}})
  end)

  after_each(function()
    for _, s in ipairs{plain, plain2, tls, other} do s:close() end
  end)

  describe("an HTTP proxy", function()
    it("forwards http:// requests in absolute form over one pool shared by all hosts", function()
      local c <close> = http.client{proxy = "http://127.0.0.1:" .. TP}
      for i = 1, 2 do
        local res = assert(c:get(url(plain, "/a?x=" .. i)))
        assert.equals("plain /a?x=" .. i, res.body)
        assert.matches("tinyproxy", seen.plain.via)
        res = assert(c:get(url(plain2, "/b")))
        assert.equals("plain2 /b", res.body)
        assert.matches("tinyproxy", seen.plain2.via)
      end
      -- tinyproxy closes each connection after its response, though it said keep-alive:
      -- the client retries, then stops keeping that proxy's connections
      for _ = 1, 6 do assert(c:get(url(plain, "/c"))) end
      local st = c:stats()
      assert.equals(4, st.retries)
      assert.equals(10, st.connects)
      assert.equals(0, st.idle)
    end)

    it("keeps one pool of connections to the proxy for every http:// host", function()
      -- a forwarding proxy that keeps its connections and answers with what it got
      local accepted = 0
      local l = assert(tcp.listen("127.0.0.1", 0, function(sock)
        accepted = accepted + 1
        sock:settimeout(5)
        local buf = ""
        while true do
          local data = sock:read()
          if not data then break end
          buf = buf .. data
          local e = buf:find("\r\n\r\n", 1, true)
          while e do
            local head = buf:sub(1, e + 3)
            buf = buf:sub(e + 4)
            local body = head:match("^[^\r]*") .. "|" ..
                         (head:match("\r\nProxy%-Authorization: ([^\r]*)") or "-")
            sock:write(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"):format(#body, body))
            e = buf:find("\r\n\r\n", 1, true)
          end
        end
        sock:close()
      end))
      finally(function() l:close() end)
      local c <close> = http.client{proxy = "http://u%20x:p%40ss@127.0.0.1:" .. l:port()}
      local auth = "|Basic dSB4OnBAc3M="
      assert.equals("GET http://a.example:81/p?q=1 HTTP/1.1" .. auth,
                    assert(c:get("http://a.example:81/p?q=1#frag")).body)
      assert.equals("GET http://[::1]:8080/ HTTP/1.1" .. auth,
                    assert(c:get("http://[::1]:8080")).body)
      assert.equals("DELETE http://b.example/x HTTP/1.1" .. auth,
                    assert(c:request{method = "DELETE", url = "http://B.example:80/x"}).body)
      assert.equals("POST http://b.example/y HTTP/1.1" .. auth,
                    assert(c:request{method = "POST", url = "http://b.example/y", body = "z"}).body)
      local st = c:stats()
      assert.equals(1, accepted)
      assert.equals(1, st.connects)
      assert.equals(3, st.reused)
      assert.equals(1, st.origins)
      -- a request's own proxy option wins over the client's, and proxy = false goes direct
      H.fails("ECONNREFUSED", c:get("http://127.0.0.1:" .. free_port() .. "/", {proxy = false}))
    end)

    it("tunnels https:// through CONNECT and verifies the origin's name", function()
      local c <close> = http.client{proxy = "http://127.0.0.1:" .. TP,
                                    ca_file = dir .. "/cert.pem"}
      local res = assert(c:get(url(tls, "/s", "https")))
      assert.equals("tls /s", res.body)
      assert.is_nil(seen.tls.via)              -- a tunnel: the proxy did not see it
      res = assert(c:get("https://localhost:" .. tls.port .. "/n"))
      assert.equals("tls /n", res.body)
      assert.equals(2, c:stats().tls_handshakes)
      assert.equals(2, c:stats().origins)      -- a tunnel per origin
      -- the certificate checked is the origin's: one for "other" does not name 127.0.0.1
      local err = H.fails("ETLS", c:get(url(other, "/", "https"),
                                        {ca_file = dir .. "/other.pem"}))
      assert.matches("mismatch", err)
    end)

    it("gives the proxy's refusal of a CONNECT as EPROXY", function()
      local err = H.fails("EPROXY", http.get(url(tls, "/", "https"),
                                             {proxy = "http://127.0.0.1:" .. TPR}))
      assert.matches("^EPROXY: proxy answered 403 ", err)
      assert.matches("CONNECT 127.0.0.1:" .. tls.port, err, 1, true)
    end)

    it("sends Basic credentials from the proxy URL, percent-decoded", function()
      local px = "http://127.0.0.1:" .. TPA
      local err = H.fails("EPROXY", http.get(url(tls, "/", "https"), {proxy = px}))
      assert.matches("^EPROXY: proxy answered 407 Proxy Authentication Required", err)
      -- forwarded: the proxy's 407 is the response, as curl and aiohttp give it
      assert.equals(407, assert(http.get(url(plain), {proxy = px})).status)
      local c <close> = http.client{proxy = "http://%61lice:s3cret@127.0.0.1:" .. TPA,
                                    ca_file = dir .. "/cert.pem"}
      assert.equals("plain /p", assert(c:get(url(plain, "/p"))).body)
      assert.equals("tls /t", assert(c:get(url(tls, "/t", "https"))).body)
      H.fails("EPROXY", http.get(url(tls, "/", "https"),
                                 {proxy = "http://alice:wrong@127.0.0.1:" .. TPA}))
    end)

    it("follows redirects through the proxy chosen for the new URL", function()
      local c <close> = http.client{proxy = "http://127.0.0.1:" .. TP}
      local res = assert(c:get(url(plain, "/redirect")))
      assert.equals("plain2 /after", res.body)
      assert.equals(1, res.redirects)
      assert.matches("tinyproxy", seen.plain2.via)
      seen.plain2 = nil
      res = assert(http.get(url(plain, "/redirect"), {proxy = "http://127.0.0.1:" .. TP}))
      assert.equals("plain2 /after", res.body)
      assert.matches("tinyproxy", seen.plain2.via)
    end)
  end)

  describe("a SOCKS5 proxy", function()
    it("carries http:// and https:// (socks5 resolves here, socks5h at the proxy)", function()
      for _, scheme in ipairs{"socks5", "socks5h"} do
        local c <close> = http.client{proxy = scheme .. "://127.0.0.1:" .. SK,
                                      ca_file = dir .. "/cert.pem"}
        assert.equals("plain /x", assert(c:get("http://localhost:" .. plain.port .. "/x")).body)
        assert.is_nil(seen.plain.via)
        assert.equals("tls /y", assert(c:get("https://localhost:" .. tls.port .. "/y")).body)
        assert.equals("tls /z", assert(c:get(url(tls, "/z", "https"))).body)
        assert.equals("tls /z", assert(c:get(url(tls, "/z", "https"))).body)
        assert.equals(1, c:stats().reused)
        assert.equals(3, c:stats().origins)
      end
      -- a name only the proxy would have to resolve
      local res, err, code = http.get("http://nowhere.invalid/",
                                      {proxy = "socks5://127.0.0.1:" .. SK})
      assert.is_nil(res)
      assert.equals("EAI_NONAME", code, err)
      err = H.fails("EPROXY", http.get("http://nowhere.invalid/",
                                             {proxy = "socks5h://127.0.0.1:" .. SK}))
      assert.matches("^EPROXY: SOCKS5: ", err)
    end)

    it("gives the SOCKS reason when the proxy cannot connect", function()
      local err = H.fails("EPROXY", http.get("http://127.0.0.1:" .. free_port() .. "/",
                                             {proxy = "socks5://127.0.0.1:" .. SK}))
      assert.matches("^EPROXY: SOCKS5: connection refused by destination host", err)
    end)

    it("authenticates with a user name and password (RFC 1929)", function()
      if not socks_user then
        pending("no system user for dante's username method")
        return
      end
      local err = H.fails("EPROXY", http.get(url(plain), {proxy = "socks5://127.0.0.1:" .. SKA}))
      assert.matches("accepts none of the authentication methods", err)
      err = H.fails("EPROXY", http.get(url(plain),
                                       {proxy = "socks5://sluiceproxy:bad@127.0.0.1:" .. SKA}))
      assert.matches("refused the user name and password", err)
      local c <close> = http.client{proxy = "socks5h://sluiceproxy:pw0rd@127.0.0.1:" .. SKA}
      local res = assert(c:get(url(plain, "/auth")))
      assert.equals("plain /auth", res.body)
    end)
  end)

  describe("bad proxies", function()
    -- A proxy that accepts and then does what act says with what it reads.
    local function fake(act)
      local l = assert(tcp.listen("127.0.0.1", 0, function(sock)
        sock:settimeout(5)
        if act == "garbage" then
          sock:read()
          sock:write("SSH-2.0-OpenSSH_9.2\r\n\r\n")
          sock:read()
        end
        sock:close()
      end))
      finally(function() l:close() end)
      return l:port()
    end

    it("gives EPROXY for a proxy that refuses the connection", function()
      local port = free_port()
      for _, scheme in ipairs{"http", "socks5"} do
        for _, u in ipairs{url(plain), url(tls, "/", "https")} do
          local err = H.fails("EPROXY", http.get(u, {proxy = scheme .. "://127.0.0.1:" .. port}))
          assert.equals("EPROXY: cannot connect to proxy 127.0.0.1:" .. port ..
                        ": connection refused", err)
        end
      end
    end)

    it("gives EPROXY for a proxy that closes at once or answers garbage", function()
      for _, act in ipairs{"close", "garbage"} do
        local port = fake(act)
        for _, scheme in ipairs{"http", "socks5"} do
          for _, u in ipairs{url(plain), url(tls, "/", "https")} do
            local err = H.fails("EPROXY", http.get(u, {proxy = scheme .. "://127.0.0.1:" .. port,
                                                       timeout = 5}))
            assert.matches("127.0.0.1:" .. port, err, 1, true)
          end
        end
        local err = H.fails("EPROXY", http.get(url(tls, "/", "https"),
                                               {proxy = "http://127.0.0.1:" .. port}))
        assert.matches(act == "close" and "during the CONNECT handshake" or
                       "answered CONNECT with garbage: \"SSH%-2.0", err)
      end
    end)

    it("raises on a bad proxy option", function()
      assert.has_error(function() http.get(url(plain), {proxy = 1}) end,
                       "bad option 'proxy' (a proxy URL or false expected, got number)")
      local ok, err = pcall(http.client, {proxy = "ftp://127.0.0.1:1"})
      assert.is_false(ok)
      assert.matches("unsupported proxy scheme 'ftp'", err)
      ok, err = pcall(http.get, url(plain), {proxy = "http://127.0.0.1:0"})
      assert.is_false(ok)
      assert.matches("bad option 'proxy'", err)
    end)
  end)

  describe("choosing", function()
    it("proxy = false in a request goes direct, and pools are kept per proxy", function()
      local c <close> = http.client{proxy = "http://127.0.0.1:" .. free_port()}
      local ways = {false, "socks5://127.0.0.1:" .. SK, "socks5h://127.0.0.1:" .. SK}
      for _ = 1, 2 do
        for i, px in ipairs(ways) do
          assert.equals("plain /" .. i, assert(c:get(url(plain, "/" .. i), {proxy = px})).body)
        end
      end
      assert.equals("plain /e",
                    assert(c:get(url(plain, "/e"), {proxy = "http://127.0.0.1:" .. TP})).body)
      assert.matches("tinyproxy", seen.plain.via)
      local st = c:stats()
      assert.equals(4, st.connects)            -- one connection per way of reaching it
      assert.equals(3, st.reused)
    end)

    -- Runs a child sluice with env (a shell assignment list) that tries a few URLs
    -- against closed ports: EPROXY means the dead proxy was used, ECONNREFUSED direct.
    local CHILD = [[
local http = require "sluice.http"
local p = os.getenv("SPEC_PORT")
local out = {}
local function try(name, res, err, code) out[#out + 1] = name .. "=" .. (code or "ok") end
try("http", http.get("http://127.0.0.1:" .. p .. "/"))
try("https", http.get("https://127.0.0.1:" .. p .. "/"))
try("localhost", http.get("http://localhost:" .. p .. "/"))
try("req_false", http.get("http://127.0.0.1:" .. p .. "/", {proxy = false}))
try("client_false", http.client{proxy = false}:get("http://127.0.0.1:" .. p .. "/"))
local res, err = http.get("http://127.0.0.1:" .. p .. "/")
print(table.concat(out, " "))
print(err)
]]
    local function child(env, port)
      H.write_file(dir .. "/child.lua", CHILD)
      local out = sh(("env -u http_proxy -u https_proxy -u HTTPS_PROXY -u all_proxy " ..
                      "-u ALL_PROXY -u no_proxy -u NO_PROXY SPEC_PORT=%d %s timeout 10 %s %s")
                     :format(port, env, H.quote(H.bin), H.quote(dir .. "/child.lua")))
      local t = {}
      for k, v in out:gmatch("(%w+_?%w*)=(%u+)") do t[k] = v end
      t.err = H.lines(out)[2]
      return t
    end

    it("reads http_proxy, https_proxy, all_proxy and no_proxy as curl does", function()
      local port, dead = free_port(), "http://127.0.0.1:" .. free_port()
      local D, P = "ECONNREFUSED", "EPROXY"
      local function check(env, want)
        local got = child(env, port)
        for k, v in pairs(want) do assert.equals(v, got[k], env .. ": " .. k) end
        return got
      end
      check("http_proxy=" .. dead, {http = P, https = D, localhost = P, req_false = D,
                                    client_false = D})
      check("HTTP_PROXY=" .. dead, {http = D, localhost = D})       -- ignored, as curl does
      check("HTTPS_PROXY=" .. dead, {http = D, https = P})
      check("ALL_PROXY=" .. dead, {http = P, https = P})
      check("all_proxy=" .. dead .. " no_proxy=127.0.0.1", {http = D, https = D, localhost = P})
      check("all_proxy=" .. dead .. " NO_PROXY=' localhost , example.com'",
            {http = P, localhost = D})
      check("all_proxy=" .. dead .. " no_proxy=.localhost", {localhost = D})
      check("all_proxy=" .. dead .. " no_proxy=calhost", {localhost = P})
      check("all_proxy=" .. dead .. " no_proxy='*'", {http = D, https = D, localhost = D})
      check("all_proxy=" .. dead .. " no_proxy=127.0.0.0/8", {http = D, localhost = P})
      check("all_proxy=" .. dead .. " no_proxy=127.0.0.1:" .. port, {http = D})
      check("all_proxy=" .. dead .. " no_proxy=127.0.0.1:" .. (port == 1 and 2 or port - 1),
            {http = P})
      local got = check("http_proxy=ftp://127.0.0.1:1", {http = P, https = D})
      assert.equals("EPROXY: bad proxy in http_proxy: unsupported proxy scheme 'ftp' " ..
                    "(http, socks5 and socks5h are)", got.err)
    end)

    it("sluice crawl --proxy sends the crawl through the proxy", function()
      seen.plain = nil
      local p = H.spawn{"crawl", "--proxy", "http://127.0.0.1:" .. TP, "--ignore-robots",
                        "--max-pages", "1", url(plain, "/crawled")}
      assert.equals(0, H.wait(p, 10))
      assert.equals("/crawled", seen.plain.target)
      assert.matches("tinyproxy", seen.plain.via)
      assert.matches('"status":200', H.read_file(p.out))
    end)
  end)
end)
