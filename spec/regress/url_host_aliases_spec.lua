-- Regression (issue 9, defect 8): URL hosts are parsed as the WHATWG URL standard does, so
-- one host has one origin. 127.1, 2130706433, 0x7f000001 and 0177.0.0.1 were four origins
-- (four robots.txt, four per-host limits, four fingerprints), invalid IPv6 literals were
-- accepted, and port 0 was kept by url.normalize while the client connected to port 80.
local url = require "sluice.url"
local http = require "sluice.http"

local ALIASES = {"http://127.0.0.1/x", "http://127.1/x", "http://2130706433/x",
                 "http://0x7f000001/x", "http://0177.0.0.1/x", "http://0X7F.0.0.1/x",
                 "http://0177.1/x", "http://127.0.0.1./x", "http://%31%32%37.1/x"}

describe("issue 9 #8: host aliases", function()
  it("normalize, origin, parse and fingerprint see one host", function()
    local seen = url.seen_set()
    for i, u in ipairs(ALIASES) do
      assert.equal("http://127.0.0.1/x", url.normalize(u))
      assert.equal("http://127.0.0.1:80", url.origin(u))
      assert.equal("127.0.0.1", url.parse(u).host)
      assert.equal(i == 1, seen:add(url.normalize(u)))
    end
    assert.equal(1, seen:count())
    assert.equal(url.fingerprint("http://127.0.0.1/x"), url.fingerprint(url.normalize(ALIASES[5])))
  end)

  it("writes IPv6 literals canonically", function()
    assert.equal("http://[::1]/", url.normalize("http://[0:0:0:0:0:0:0:1]/"))
    assert.equal("http://[::ffff:7f00:1]:8080/", url.normalize("http://[::FFFF:127.0.0.1]:8080/"))
    assert.equal("http://[2001:db8::1:0:0:1]:80", url.origin("http://[2001:DB8:0:0:1:0:0:1]/"))
  end)

  it("refuses invalid IPv6 literals, invalid IPv4 numbers and port 0", function()
    for _, u in ipairs{"http://[12345::]/", "http://[1:2:3:4:5:6:7:8:9]/",
                       "http://[:::::::::]/", "http://[1::2::3]/", "http://[::1.2.3.256]/"} do
      assert.same({nil, "EINVAL: bad IPv6 address", "EINVAL"}, {url.normalize(u)})
      assert.same({nil, "EINVAL: bad IPv6 address", "EINVAL"}, {url.origin(u)})
    end
    for _, u in ipairs{"http://256.0.0.1/", "http://1.2.3.4.5/", "http://foo.0x1/"} do
      assert.same({nil, "EINVAL: bad IPv4 address", "EINVAL"}, {url.normalize(u)})
    end
    for _, f in ipairs{url.normalize, url.origin, url.parse} do
      assert.same({nil, "EINVAL: port out of range", "EINVAL"}, {f("http://h:0/")})
    end
  end)

  it("the client connects to the address the origin names and refuses port 0", function()
    local srv = assert(http.serve{port = 0, handler = function(req)
      return 200, nil, req.headers.host
    end})
    finally(function() srv:close(1) end)
    for _, host in ipairs{"127.1", "2130706433", "0x7f000001", "0177.0.0.1"} do
      local res = assert(http.get(("http://%s:%d/"):format(host, srv.port)))
      assert.equal(200, res.status)
      assert.equal("127.0.0.1:" .. srv.port, res.body)
    end
    assert.same({nil, "EINVAL: port out of range in URL: http://127.0.0.1:0/", "EINVAL"},
                {http.get("http://127.0.0.1:0/")})
    assert.same({nil, "EINVAL: bad IPv6 address in URL: http://[1::2::3]/", "EINVAL"},
                {http.get("http://[1::2::3]/")})
  end)
end)
