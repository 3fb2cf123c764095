-- http_cookie_spec.lua: the cookie jar (engine/http_cookie*.c): RFC 6265's rules tested
-- with URLs on a jar alone (jar:set, jar:get: no network), then clients with jars against
-- http.serve servers on 127.0.0.1 (plain and TLS; "localhost" as a second site), hostile
-- input within the limits, cookies.txt files read and written by curl, and `sluice crawl
-- --cookies FILE`. curl blocks, so the server it talks to runs in a sluice process of its own.
local sl = require "sluice"
local http = require "sluice.http"
local H = require "spec.helpers"

local function sh(cmd)
  local out, code = H.sh("(" .. cmd .. ") 2>&1")
  assert(code == 0, cmd .. " failed: " .. out)
  return out
end

-- A handler for the specs' servers: /set?<Set-Cookie value> sets it (percent-decoded),
-- /redirect?<url> redirects there (303), /many?n sets n cookies, anything else echoes
-- the Cookie header it got ("-" for none).
local function decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
local function handler(req)
  if req.path == "/set" or req.path:find("^/p/set") then
    return 200, {["Set-Cookie"] = decode(req.query)}, "set"
  elseif req.path == "/redirect" then
    local to, sc = req.query:match("^([^&]*)&?(.*)$")
    return 303, {Location = decode(to), ["Set-Cookie"] = sc ~= "" and decode(sc) or nil}, ""
  elseif req.path == "/many" then
    local list = {}
    for i = 1, tonumber(req.query) do list[i] = "m" .. i .. "=" .. i end
    return 200, {["Set-Cookie"] = list}, "many"
  elseif req.path == "/huge" then
    return 200, {["Set-Cookie"] = {"big=" .. ("x"):rep(1024 * 1024), "small=1"}}, "huge"
  end
  return 200, nil, req.headers.cookie or "-"
end

-- A Cookie header's cookies, sorted (curl sends those of one path length in its own order).
local function sorted(h)
  local t = {}
  for c in h:gmatch("[^;%s][^;]*") do t[#t + 1] = c end
  table.sort(t)
  return table.concat(t, "; ")
end

local function enc(s)
  return (s:gsub("[^%w%-%._~/:]", function(c) return ("%%%02X"):format(c:byte()) end))
end

describe("cookie jar rules (jar:set and jar:get, no network)", function()
  local jar
  before_each(function() jar = http.cookiejar() end)

  it("keeps host-only cookies to their host, Domain cookies to the domain and below",
     function()
    assert.is_true(jar:set("http://www.example.com/", "h=1"))
    assert.is_true(jar:set("http://www.example.com/", "d=2; Domain=.Example.COM"))
    assert.equals("h=1; d=2", jar:get("http://www.example.com/"))
    assert.equals("d=2", jar:get("http://example.com/"))
    assert.equals("d=2", jar:get("http://a.b.example.com/x"))
    assert.is_nil(jar:get("http://notexample.com/"))
    assert.is_nil(jar:get("http://example.org/"))
    local ok, why = jar:set("http://www.example.com/", "x=1; Domain=other.com")
    assert.is_false(ok)
    assert.matches("does not match", why)
    assert.is_false((jar:set("http://example.com/", "x=1; Domain=www.example.com")))
    -- an address matches only itself
    assert.is_true(jar:set("http://127.0.0.1/", "ip=1"))
    assert.equals("ip=1", jar:get("http://127.0.0.1:8080/"))
    assert.is_nil(jar:get("http://127.0.0.2/"))
    assert.equals(3, #jar)
  end)

  it("matches paths as RFC 6265 5.1.4 says, with the default path of the request",
     function()
    assert.is_true(jar:set("http://h.test/", "p=1; Path=/docs"))
    for _, p in ipairs{"/docs", "/docs/", "/docs/web", "/docs?q=1"} do
      assert.equals("p=1", jar:get("http://h.test" .. p), p)
    end
    for _, p in ipairs{"/", "/docsets", "/fr/docs", "/Docs"} do
      assert.is_nil(jar:get("http://h.test" .. p), p)
    end
    jar:clear()
    assert.is_true(jar:set("http://h.test/a/b/c?x=/y/z", "dp=1"))
    assert.equals("/a/b", jar:list()[1].path)
    assert.is_true(jar:set("http://h.test/top", "root=1; Path=nope"))  -- bad Path: default
    assert.equals("/", jar:list()[2].path)
    -- longer paths first, then the older cookie first
    assert.is_true(jar:set("http://h.test/", "z=1"))
    assert.is_true(jar:set("http://h.test/", "a=1; Path=/a/b/c"))
    assert.equals("a=1; dp=1; root=1; z=1", jar:get("http://h.test/a/b/c/d"))
  end)

  it("sends Secure cookies only over https, and takes them only from https", function()
    assert.is_true(jar:set("https://s.test/", "sec=1; Secure; HttpOnly; SameSite=Lax"))
    assert.is_true(jar:set("https://s.test/", "plain=1"))
    assert.equals("sec=1; plain=1", jar:get("https://s.test/"))
    assert.equals("plain=1", jar:get("http://s.test/"))
    local ok, why = jar:set("http://s.test/", "sec2=1; Secure")
    assert.is_false(ok)
    assert.matches("insecure", why)
    local c = jar:list()[1]
    assert.same({true, true, "Lax", true}, {c.secure, c.http_only, c.samesite, c.host_only})
    assert.is_false((jar:set("https://s.test/", "__Host-x=1; Secure; Domain=s.test")))
    assert.is_true(jar:set("https://s.test/", "__Host-x=1; Secure; Path=/"))
    assert.is_false((jar:set("https://s.test/", "__Secure-y=1")))
  end)

  it("deletes with Max-Age=0, a negative Max-Age or a past Expires; Max-Age wins", function()
    for _, del in ipairs{"Max-Age=0", "Max-Age=-5", "Expires=Thu, 01 Jan 1970 00:00:01 GMT",
                         "expires=Sunday, 06-Nov-94 08:49:37 GMT"} do
      assert.is_true(jar:set("http://e.test/", "k=1"))
      assert.equals("k=1", jar:get("http://e.test/"))
      assert.is_true(jar:set("http://e.test/", "k=; " .. del), del)
      assert.is_nil(jar:get("http://e.test/"), del)
      assert.equals(0, #jar)
    end
    assert.is_true(jar:set("http://e.test/", "m=1; Max-Age=100; Expires=Thu, 01 Jan 1970 " ..
                           "00:00:01 GMT"))
    local left = jar:list()[1].expires - os.time()
    assert.truthy(left > 90 and left <= 100, left)
    assert.is_false((jar:set("http://e.test/", "gone=1; Max-Age=0")))
    jar:clear()   -- a date past year 9999 is that year's end (a number curl reads too)
    assert.is_true(jar:set("http://e.test/", "far=1; Max-Age=99999999999999999999999"))
    assert.equals(253402300799, jar:list()[1].expires)
  end)

  it("reads Expires dates by RFC 6265 5.1.1, in every format servers send", function()
    local want = 4096250880          -- 2099-10-21 07:28:00 UTC
    for _, d in ipairs{"Wed, 21 Oct 2099 07:28:00 GMT", "Wednesday, 21-Oct-99 07:28:00 GMT",
                       "Wed Oct 21 07:28:00 2099", "21 oct 2099 7:28:0", "2099 OCT 21 07:28:00"} do
      jar:clear()
      local ok, why = jar:set("http://e.test/", "d=1; Expires=" .. d)
      if d:find("-99") then          -- 99 is 1999: in the past, so nothing is stored
        assert.is_false(ok, d)
        assert.matches("expired", why)
      else
        assert.is_true(ok, d)
        assert.equals(want, jar:list()[1].expires, d)
      end
    end
    -- no date at all, Feb 30, a year before 1601: ignored (a session cookie)
    for _, d in ipairs{"tomorrow", "Sat, 30 Feb 2099 00:00:00 GMT", "1 Jan 1600 00:00:00",
                       "Wed, 21 Oct 2099 25:00:00 GMT"} do
      jar:clear()
      assert.is_true(jar:set("http://e.test/", "d=1; Expires=" .. d), d)
      assert.is_nil(jar:list()[1].expires, d)
    end
  end)

  it("rejects a Domain that is a public suffix, unless it is the host itself", function()
    for _, c in ipairs{{"http://www.example.co.uk/", "co.uk"}, {"http://example.com/", "com"},
                       {"http://me.github.io/", "github.io"}} do
      local ok, why = jar:set(c[1], "ps=1; Domain=" .. c[2])
      assert.is_false(ok, c[2])
      assert.matches("public suffix", why)
    end
    assert.is_true(jar:set("http://www.example.co.uk/", "ok=1; Domain=example.co.uk"))
    assert.equals("ok=1", jar:get("http://shop.example.co.uk/"))
    assert.is_true(jar:set("http://co.uk/", "self=1; Domain=co.uk"))   -- host-only then
    assert.is_true(jar:list()[2].host_only)
    assert.is_nil(jar:get("http://www.co.uk/"))
  end)

  it("ignores malformed cookies and replaces one of the same name, domain and path",
     function()
    for _, bad in ipairs{"novalue", "=v", " ; a=b", "a\1=b", "a=b\127", "a=b\tc"} do
      assert.is_false((jar:set("http://m.test/", bad)), bad)
    end
    assert.is_true(jar:set("http://m.test/", " a = 1 ; Path=/"))
    assert.is_true(jar:set("http://m.test/", "a=2"))
    assert.is_true(jar:set("http://m.test/", "b=3"))
    assert.is_true(jar:set("http://m.test/", "a=4; HttpOnly"))
    assert.equals("a=4; b=3", jar:get("http://m.test/"))   -- a kept its place
    assert.equals(2, #jar)
    assert.has_error(function() jar:get("ftp://m.test/") end)
    assert.has_error(function() jar:set("http://bad host/", "a=1") end)
  end)

  it("stays within its limits against a 1 MB header and 10,000 cookies, in linear time",
     function()
    local t0 = os.clock()
    local big = ("v"):rep(1024 * 1024)
    local ok, why = jar:set("http://big.test/", "a=" .. big)
    assert.is_false(ok)
    assert.matches("4096", why)
    assert.is_true(jar:set("http://big.test/", "a=" .. ("v"):rep(4000)))
    -- a megabyte of attributes: parsed once, the cookie kept
    assert.is_true(jar:set("http://big.test/", "b=1" .. ("; x"):rep(350000)))
    assert.is_true(jar:set("http://big.test/", "c=1; Path=/" .. ("p"):rep(1024 * 1024)))
    assert.equals("/", jar:list()[3].path)   -- too long a Path is ignored
    for i = 1, 10000 do jar:set("http://big.test/", "n" .. i .. "=" .. i) end
    assert.equals(50, #jar)                  -- per domain, the oldest went
    local names = {}
    for _, c in ipairs(jar:list()) do names[#names + 1] = c.name end
    assert.equals("n9951", names[1])
    assert.equals("n10000", names[50])
    for i = 1, 10000 do jar:set("http://h" .. i .. ".big.test/", "x=" .. i) end
    assert.equals(3000, #jar)                -- in all
    assert.equals("x=10000", jar:get("http://h10000.big.test/"))
    assert.is_nil(jar:get("http://h1.big.test/"))
    local small = http.cookiejar{max_cookies = 5, max_per_domain = 2}
    for i = 1, 4 do small:set("http://s" .. i .. ".test/", "a=1") small:set("http://s" .. i ..
                              ".test/", "b=1") small:set("http://s" .. i .. ".test/", "c=1") end
    assert.equals(5, #small)
    assert.equals("b=1; c=1", small:get("http://s4.test/"))
    assert.truthy(os.clock() - t0 < 5, os.clock() - t0)
  end)

  it("saves and loads cookies.txt, keeping every field", function()
    local dir = H.tmpdir()
    assert.is_true(jar:set("https://www.rt.test/a/b", "h=1; HttpOnly; Secure"))
    assert.is_true(jar:set("http://www.rt.test/", "d=2; Domain=rt.test; Path=/p; Max-Age=3600"))
    assert.is_true(jar:set("http://www.rt.test/", "empty="))
    assert.is_true(jar:save(dir .. "/c.txt"))
    local text = H.read_file(dir .. "/c.txt")
    assert.matches("^# Netscape HTTP Cookie File\n", text)
    assert.truthy(text:find("#HttpOnly_www.rt.test\tFALSE\t/a\tTRUE\t0\th\t1\n", 1, true), text)
    assert.truthy(text:find("\n.rt.test\tTRUE\t/p\tFALSE\t%d+\td\t2\n"), text)
    local back = http.cookiejar{file = dir .. "/c.txt"}
    assert.same(jar:list(), back:list())
    local other = http.cookiejar()
    assert.equals(3, other:load(dir .. "/c.txt"))
    assert.equals("d=2", other:get("http://x.rt.test/p"))
    assert.is_true(back:save())              -- to its own file
    assert.same(jar:list(), http.cookiejar{file = dir .. "/c.txt"}:list())
    assert.equals(0, #http.cookiejar{file = dir .. "/missing.txt"})
    H.fails("ENOENT", other:load(dir .. "/missing.txt"))
    H.fails("ENOENT", other:save(dir .. "/no/such/dir/c.txt"))
    -- junk lines are skipped, the good ones kept
    H.write_file(dir .. "/junk.txt", "junk\n\t\t\t\n" .. ("z"):rep(20000) .. "\n" ..
                 "j.test\tFALSE\t/\tFALSE\tsoon\tn\tv\nj.test\tFALSE\t/\tFALSE\t0\tok\tyes\n")
    assert.equals(1, other:load(dir .. "/junk.txt"))
    assert.has_error(function() jar:save() end)
    os.execute("rm -rf " .. H.quote(dir))
  end)
end)

describe("clients with cookie jars", function()
  local srv, tsrv, dir, base, lbase, tbase

  -- A server for one test, closed after it (tls: the HTTPS one too).
  local function start(tls)
    srv = assert(http.serve{port = 0, handler = handler})
    finally(function() srv:close(1) end)
    base = "http://127.0.0.1:" .. srv.port
    lbase = "http://localhost:" .. srv.port
    if tls then
      tsrv = assert(http.serve{port = 0, handler = handler,
                               tls = {cert = dir .. "/cert.pem", key = dir .. "/key.pem"}})
      finally(function() tsrv:close(1) end)
      tbase = "https://127.0.0.1:" .. tsrv.port
    end
  end

  lazy_setup(function()
    dir = H.tmpdir()
    sh(("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 " ..
        "-nodes -keyout key.pem -out cert.pem -days 2 -subj '/CN=localhost' " ..
        "-addext 'subjectAltName=IP:127.0.0.1,DNS:localhost'"):format(H.quote(dir)))
  end)

  lazy_teardown(function()
    if dir then os.execute("rm -rf " .. H.quote(dir)) end
  end)

  it("sends back what the server set; a client without a jar sends none", function()
    start()
    local c = http.client{cookies = true}
    finally(function() c:close() end)
    assert.equals("-", assert(c:get(base .. "/echo")).body)
    assert(c:get(base .. "/set?" .. enc("sid=abc; Path=/; HttpOnly")))
    assert(c:get(base .. "/set?" .. enc("lang=en")))
    assert.equals("sid=abc; lang=en", assert(c:get(base .. "/echo")).body)
    assert.equals("-", assert(http.get(base .. "/echo")).body)
    -- the user's Cookie goes first, then the jar's; false drops only the user's
    assert.equals("u=1; sid=abc; lang=en",
                  assert(c:get(base .. "/echo", {headers = {cookie = "u=1"}})).body)
    assert.equals("sid=abc; lang=en",
                  assert(c:get(base .. "/echo", {headers = {Cookie = false}})).body)
    local jar = c:cookies()
    assert.equals(2, #jar)
    assert.equals("sid=abc; lang=en", jar:get(base .. "/"))
    assert.is_nil(http.client():cookies())
    assert(c:get(base .. "/set?" .. enc("lang=; Max-Age=0")))
    assert.equals("sid=abc", assert(c:get(base .. "/echo")).body)
    -- a client's default Cookie header is the user's too
    local d = http.client{cookies = true, headers = {Cookie = "def=1"}}
    finally(function() d:close() end)
    assert(d:get(base .. "/set?" .. enc("j=2")))
    assert.equals("def=1; j=2", assert(d:get(base .. "/echo")).body)
    assert.has_error(function() http.client{cookies = "yes"} end)
  end)

  it("shares one jar between clients", function()
    start()
    local jar = http.cookiejar()
    local a, b = http.client{cookies = jar}, http.client{cookies = jar}
    finally(function() if a then a:close() end b:close() end)
    assert(a:get(base .. "/set?" .. enc("shared=1")))
    assert.equals("shared=1", assert(b:get(base .. "/echo")).body)
    assert.equals(1, #jar)
    a:close()
    a = nil
    collectgarbage()
    assert.equals("shared=1", jar:get(base .. "/"))
  end)

  it("stores each hop's cookies, and never sends them to another site on a redirect",
     function()
    start()
    local c = http.client{cookies = true}
    finally(function() c:close() end)
    -- set while redirecting, sent on the next hop of the same site
    local res = assert(c:get(base .. "/redirect?" .. enc(base .. "/echo") .. "&" ..
                             enc("hop=1")))
    assert.equals("hop=1", res.body)
    assert.equals(1, res.redirects)
    -- 127.0.0.1's cookies do not go to localhost, nor a user's Cookie header
    res = assert(c:get(base .. "/redirect?" .. enc(lbase .. "/echo") .. "&" ..
                       enc("secret=1"), {headers = {Cookie = "mine=1"}}))
    assert.equals("-", res.body)
    -- localhost's own cookies do, and coming back 127.0.0.1 gets only its own
    assert(c:get(lbase .. "/set?" .. enc("local=1")))
    res = assert(c:get(base .. "/redirect?" .. enc(lbase .. "/echo")))
    assert.equals("local=1", res.body)
    res = assert(c:get(lbase .. "/redirect?" .. enc(base .. "/echo")))
    assert.equals("hop=1; secret=1", res.body)
  end)

  it("keeps Secure cookies to https", function()
    start(true)
    local c = http.client{cookies = true, ca_file = dir .. "/cert.pem"}
    finally(function() c:close() end)
    assert(c:get(tbase .. "/set?" .. enc("tok=s; Secure")))
    assert(c:get(base .. "/set?" .. enc("insecure=1; Secure")))   -- refused over http
    assert.equals("tok=s", assert(c:get(tbase .. "/echo")).body)
    assert.equals("-", assert(c:get(base .. "/echo")).body)
    -- and not through a redirect from https to http either
    local res = assert(c:get(tbase .. "/redirect?" .. enc(base .. "/echo")))
    assert.equals("-", res.body)
  end)

  it("holds a response of 10,000 Set-Cookie headers, or of a 1 MB one, to its limits",
     function()
    start()
    local c = http.client{cookies = true, max_header = 4 * 1024 * 1024, max_headers = 20000}
    finally(function() c:close() end)
    local t0 = sl.now()
    assert.equals("many", assert(c:get(base .. "/many?10000")).body)
    local jar = c:cookies()
    assert.equals(50, #jar)
    assert.equals("m9951=9951", jar:list()[1].name .. "=" .. jar:list()[1].value)
    jar:clear()
    assert.equals("huge", assert(c:get(base .. "/huge")).body)
    assert.equals("small=1", jar:get(base .. "/"))
    assert.truthy(sl.now() - t0 < 10)
    -- with the client's default limits the response fails, the jar untouched
    local d = http.client{cookies = true}
    finally(function() d:close() end)
    assert.is_nil((d:get(base .. "/many?10000")))
    assert.equals(0, #d:cookies())
  end)
end)

describe("cookies.txt with curl", function()
  local dir, pid, base

  local SERVER = [[
local http = require "sluice.http"
local handler = dofile("handler.lua")
local srv = assert(http.serve{port = 0, handler = handler})
local f = io.open("port.tmp", "w")
f:write(srv.port, "\n")
f:close()
os.rename("port.tmp", "port")
]]

  lazy_setup(function()
    dir = H.tmpdir()
    H.write_file(dir .. "/handler.lua", "local function decode(s) return (s:gsub(" ..
      "'%%(%x%x)', function(h) return string.char(tonumber(h, 16)) end)) end\n" ..
      "return function(req)\n" ..
      "  if req.path:find('set') then return 200, {['Set-Cookie'] = " ..
      "{'c1=v1; Path=/', 'c2=v2; Path=/p; HttpOnly', 'c3=v3; Max-Age=3600; Path=/', " ..
      "'c4=; Path=/'}}, 'set' end\n" ..
      "  return 200, nil, req.headers.cookie or '-'\nend\n")
    H.write_file(dir .. "/server.lua", SERVER)
    local bin = sh("realpath " .. H.quote(H.bin)):gsub("%s+$", "")
    pid = sh(("cd %s && (exec timeout 60 %s server.lua) >server.log 2>&1 </dev/null & " ..
              "echo $!"):format(H.quote(dir), H.quote(bin))):match("%d+")
    assert(H.poll(function() return H.read_file(dir .. "/port") ~= "" end, 10),
           "the server did not start: " .. H.read_file(dir .. "/server.log"))
    base = "http://127.0.0.1:" .. H.read_file(dir .. "/port"):match("%d+")
  end)

  lazy_teardown(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    if dir then os.execute("rm -rf " .. H.quote(dir)) end
  end)

  it("loads what curl -c wrote, and sends it", function()
    sh(("cd %s && curl -s -m 10 -c curl.txt %s/p/set"):format(H.quote(dir), base))
    local jar = http.cookiejar{file = dir .. "/curl.txt"}
    assert.equals(4, #jar)
    local c = http.client{cookies = jar}
    finally(function() c:close() end)
    local got = assert(c:get(base .. "/p/echo")).body
    assert.matches("^c2=v2; ", got)          -- the longest path first
    assert.equals("c1=v1; c2=v2; c3=v3; c4=", sorted(got))
    assert.equals("c1=v1; c3=v3; c4=", sorted(assert(c:get(base .. "/echo")).body))
    local by = {}
    for _, ck in ipairs(jar:list()) do by[ck.name] = ck end
    assert.is_true(by.c2.http_only)
    assert.is_true(by.c1.host_only)
    assert.truthy(by.c3.expires > os.time() + 3500)
  end)

  it("writes what curl -b reads and sends", function()
    local c = http.client{cookies = true}
    finally(function() c:close() end)
    assert(c:get(base .. "/p/set"))
    assert.is_true(c:cookies():save(dir .. "/sluice.txt"))
    local out = sh(("cd %s && curl -s -m 10 -b sluice.txt %s/p/echo"):format(H.quote(dir),
                   base))
    assert.matches("^c2=v2; ", out)
    assert.equals("c1=v1; c2=v2; c3=v3; c4=", sorted(out))
    -- and curl's own rewrite of it loads back the same
    sh(("cd %s && curl -s -m 10 -b sluice.txt -c again.txt %s/echo >/dev/null")
       :format(H.quote(dir), base))
    local again = http.cookiejar{file = dir .. "/again.txt"}
    assert.equals(4, #again)
    assert.equals("c1=v1; c2=v2; c3=v3; c4=", sorted(again:get(base .. "/p/echo")))
  end)

  it("sluice crawl --cookies FILE loads the file, sends its cookies and saves new ones",
     function()
    H.write_file(dir .. "/crawl.txt", "# Netscape HTTP Cookie File\n\n127.0.0.1\tFALSE\t/\t" ..
                 "FALSE\t0\tpre\tloaded\n")
    local r = H.run({"crawl", "--cookies", dir .. "/crawl.txt", "--ignore-robots",
                     "--max-pages", "2", base .. "/p/set", base .. "/p/echo"})
    assert.equals(0, r.code, r.err)
    local text = H.read_file(dir .. "/crawl.txt")
    assert.truthy(text:find("\tpre\tloaded\n", 1, true), text)
    assert.truthy(text:find("\tc3\tv3\n", 1, true), text)
    assert.truthy(r.out:find('"url":"' .. base .. '/p/set"', 1, true), r.out)
    -- the second run sends what the first saved
    local out = sh(("cd %s && curl -s -m 10 -b crawl.txt %s/p/echo"):format(H.quote(dir),
                   base))
    assert.truthy(out:find("pre=loaded", 1, true) and out:find("c1=v1", 1, true), out)
    r = H.run({"crawl", "--cookies", "--ignore-robots", base .. "/p/set"})
    assert.equals(0, r.code, r.err)
  end)
end)
