-- Specs of sluice.url (engine/url.c, engine/seen.c): normalization and RFC 3986 resolution,
-- parse, origin, fingerprints, and the exact and Bloom seen sets.
local url = require "sluice.url"

-- Every normalization rule, one row each: input, expected output.
local NORMALIZE = {
  -- case of scheme and host; path, query and escapes keep theirs
  {"HTTP://Example.COM/A/B", "http://example.com/A/B"},
  {"hTTpS://WWW.Example.org/", "https://www.example.org/"},
  -- default ports, empty port, other ports
  {"http://h:80/x", "http://h/x"},
  {"https://h:443/x", "https://h/x"},
  {"http://h:/x", "http://h/x"},
  {"http://h:0080/x", "http://h/x"},
  {"http://h:443/x", "http://h:443/x"},
  {"https://h:80/x", "https://h:80/x"},
  {"http://h:8080", "http://h:8080/"},
  -- fragment dropped, empty path, empty query dropped, query order kept
  {"http://h/a#frag", "http://h/a"},
  {"http://h/a?b=1#frag", "http://h/a?b=1"},
  {"http://h", "http://h/"},
  {"http://h?q", "http://h/?q"},
  {"http://h/a?", "http://h/a"},
  {"http://h/a?#f", "http://h/a"},
  {"http://h/?z=1&a=2&z=0", "http://h/?z=1&a=2&z=0"},
  -- dot segments
  {"http://h/a/./b/../c", "http://h/a/c"},
  {"http://h/a/b/..", "http://h/a/"},
  {"http://h/a/b/.", "http://h/a/b/"},
  {"http://h/../../x", "http://h/x"},
  {"http://h/a/%2E%2E/b", "http://h/b"},
  {"http://h/a/%2e/b", "http://h/a/b"},
  {"http://h//a/../b", "http://h//b"},
  {"http://h/a?x=/../y", "http://h/a?x=/../y"},
  -- percent-encoding
  {"http://h/%7euser/%41%62", "http://h/~user/Ab"},
  {"http://h/a%2fb%3f", "http://h/a%2Fb%3F"},
  {"http://h/a%zzb%", "http://h/a%25zzb%25"},
  {"http://h/a%4", "http://h/a%254"},
  {"http://h/a b\"<>\\^`{|}", "http://h/a%20b%22%3C%3E%5C%5E%60%7B%7C%7D"},
  {"http://h/caf\xc3\xa9", "http://h/caf%C3%A9"},
  {"http://h/\x01\x7fa", "http://h/%01%7Fa"},
  {"http://h/?q=a b&r=%c3%a9&s=%2d", "http://h/?q=a%20b&r=%C3%A9&s=-"},
  {"http://h/:@!$&'()*+,;=[]", "http://h/:@!$&'()*+,;=[]"},
  -- hosts: escapes decoded, trailing dot kept on names
  {"http://%45x%61mple.com/", "http://example.com/"},
  {"http://ex%2Dample.com/", "http://ex-ample.com/"},
  {"http://Ex_a~mple.com./", "http://ex_a~mple.com./"},
  {"http://1.2.3.foo/", "http://1.2.3.foo/"},
  {"http://a..b/", "http://a..b/"},
  -- IPv4 as the WHATWG URL standard reads it: up to four parts, each decimal, 0x hex or
  -- 0-led octal, the last filling the bytes left
  {"http://127.0.0.1:8080/", "http://127.0.0.1:8080/"},
  {"http://127.1/", "http://127.0.0.1/"},
  {"http://2130706433/", "http://127.0.0.1/"},
  {"http://0x7f000001/", "http://127.0.0.1/"},
  {"http://0X7F.0.0.1/", "http://127.0.0.1/"},
  {"http://0177.0.0.1/", "http://127.0.0.1/"},
  {"http://0177.1:8080/", "http://127.0.0.1:8080/"},
  {"http://127.0.0.1./", "http://127.0.0.1/"},
  {"http://%31%32%37.1/", "http://127.0.0.1/"},
  {"http://1.256/", "http://1.0.1.0/"},
  {"http://1.2.65535/", "http://1.2.255.255/"},
  {"http://0x/", "http://0.0.0.0/"},
  {"http://0/", "http://0.0.0.0/"},
  {"http://00.0x0.000.0/", "http://0.0.0.0/"},
  {"http://4294967295/", "http://255.255.255.255/"},
  {"http://0xffffffff/", "http://255.255.255.255/"},
  {"http://037777777777/", "http://255.255.255.255/"},
  {"http://1.2.3.0x/", "http://1.2.3.0/"},
  {"http://0x" .. ("0"):rep(200) .. "7f000001/", "http://127.0.0.1/"},
  {"http://1.0x1g/", "http://1.0x1g/"},   -- not a number: a domain name
  -- IPv6: lower-case hex, no leading zeros, the first longest zero run (two or more) as
  -- "::", an embedded IPv4 address as two hex pieces
  {"http://[::1]/", "http://[::1]/"},
  {"http://[2001:DB8::A]:80/x", "http://[2001:db8::a]/x"},
  {"http://[::FFFF:1.2.3.4]:81/", "http://[::ffff:102:304]:81/"},
  {"http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"},
  {"http://[0000:00::0001]/", "http://[::1]/"},
  {"http://[::]/", "http://[::]/"},
  {"http://[1::]/", "http://[1::]/"},
  {"http://[2001:db8:0:0:1:0:0:1]/", "http://[2001:db8::1:0:0:1]/"},
  {"http://[1:0:0:2:0:0:0:3]/", "http://[1:0:0:2::3]/"},
  {"http://[1:2:3:4:5:6:7::]/", "http://[1:2:3:4:5:6:7:0]/"},
  {"http://[::2:3:4:5:6:7:8]/", "http://[0:2:3:4:5:6:7:8]/"},
  {"http://[1:2:3:4:5:6:1.2.3.4]/", "http://[1:2:3:4:5:6:102:304]/"},
  {"http://[::0.0.0.0]/", "http://[::]/"},
  -- whitespace as browsers treat href
  {"  http://h/a  ", "http://h/a"},
  {"\thttp://h/a\r\n", "http://h/a"},
  {"ht\ntp://h/a\tb/c\r", "http://h/ab/c"},
  {"http://h/a b", "http://h/a%20b"},
}

-- RFC 3986 §5.4 against base http://a/b/c/d;p?q, with the fragment dropped and "//g"
-- getting its "/" path; "g:h" is a scheme sluice does not take.
local RFC_BASE = "http://a/b/c/d;p?q"
local RFC = {
  -- §5.4.1 normal examples
  {"g", "http://a/b/c/g"}, {"./g", "http://a/b/c/g"}, {"g/", "http://a/b/c/g/"},
  {"/g", "http://a/g"}, {"//g", "http://g/"}, {"?y", "http://a/b/c/d;p?y"},
  {"g?y", "http://a/b/c/g?y"}, {"#s", "http://a/b/c/d;p?q"}, {"g#s", "http://a/b/c/g"},
  {"g?y#s", "http://a/b/c/g?y"}, {";x", "http://a/b/c/;x"}, {"g;x", "http://a/b/c/g;x"},
  {"g;x?y#s", "http://a/b/c/g;x?y"}, {"", "http://a/b/c/d;p?q"}, {".", "http://a/b/c/"},
  {"./", "http://a/b/c/"}, {"..", "http://a/b/"}, {"../", "http://a/b/"},
  {"../g", "http://a/b/g"}, {"../..", "http://a/"}, {"../../", "http://a/"},
  {"../../g", "http://a/g"},
  -- §5.4.2 abnormal examples
  {"../../../g", "http://a/g"}, {"../../../../g", "http://a/g"}, {"/./g", "http://a/g"},
  {"/../g", "http://a/g"}, {"g.", "http://a/b/c/g."}, {".g", "http://a/b/c/.g"},
  {"g..", "http://a/b/c/g.."}, {"..g", "http://a/b/c/..g"}, {"./../g", "http://a/b/g"},
  {"./g/.", "http://a/b/c/g/"}, {"g/./h", "http://a/b/c/g/h"},
  {"g/../h", "http://a/b/c/h"}, {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
  {"g;x=1/../y", "http://a/b/c/y"}, {"g?y/./x", "http://a/b/c/g?y/./x"},
  {"g?y/../x", "http://a/b/c/g?y/../x"}, {"g#s/./x", "http://a/b/c/g"},
  {"g#s/../x", "http://a/b/c/g"},
  {"http:g", "http://a/b/c/g"},   -- the "backward compatible" reading, as browsers do
}

-- Inputs refused: input, base or false, code, message.
local ERRORS = {
  {"mailto:a@b.c", false, "ENOTSUP", "ENOTSUP: unsupported scheme 'mailto'"},
  {"javascript:void(0)", "http://h/", "ENOTSUP", "ENOTSUP: unsupported scheme 'javascript'"},
  {"data:text/plain,hi", false, "ENOTSUP", "ENOTSUP: unsupported scheme 'data'"},
  {"FTP://h/x", false, "ENOTSUP", "ENOTSUP: unsupported scheme 'FTP'"},
  {"g:h", RFC_BASE, "ENOTSUP", "ENOTSUP: unsupported scheme 'g'"},
  {"/relative", false, "EINVAL", "EINVAL: relative URL without a base"},
  {"", false, "EINVAL", "EINVAL: relative URL without a base"},
  {"http:/x", false, "EINVAL", "EINVAL: no host"},
  {"https:g", "http://a/b", "EINVAL", "EINVAL: no host"},
  {"http:///x", false, "EINVAL", "EINVAL: empty host"},
  {"http://:80/", false, "EINVAL", "EINVAL: empty host"},
  {"http://user:pw@h/", false, "EINVAL", "EINVAL: credentials in URL"},
  {"http://@h/", false, "EINVAL", "EINVAL: credentials in URL"},
  {"http://h:8x/", false, "EINVAL", "EINVAL: bad port"},
  {"http://h:-1/", false, "EINVAL", "EINVAL: bad port"},
  {"http://h:65536/", false, "EINVAL", "EINVAL: port out of range"},
  {"http://h:99999999999999999999/", false, "EINVAL", "EINVAL: port out of range"},
  {"http://h:0/", false, "EINVAL", "EINVAL: port out of range"},
  {"http://h:000/", false, "EINVAL", "EINVAL: port out of range"},
  {"http://h o/", false, "EINVAL", "EINVAL: invalid character in host"},
  {"http://h%zz/", false, "EINVAL", "EINVAL: bad percent-escape in host"},
  {"http://caf\xc3\xa9.fr/", false, "EINVAL", "EINVAL: invalid character in host"},
  -- an escape decodes to what the host would hold raw
  {"http://caf%C3%A9.fr/", false, "EINVAL", "EINVAL: invalid character in host"},
  {"http://ex%2fample/", false, "EINVAL", "EINVAL: invalid character in host"},
  {"http://h%20o/", false, "EINVAL", "EINVAL: invalid character in host"},
  {"http://h%00/", false, "EINVAL", "EINVAL: invalid character in host"},
  -- a host whose last label is a number is an IPv4 address or nothing
  {"http://foo.1/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://foo.0x1/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://1.2.3.4.5/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://256.0.0.1/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://1.16777216/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://4294967296/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://0x100000000/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://0x" .. ("f"):rep(200) .. "/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://99999999999999999999/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://09/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://1.2.3.08/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://1..2/", false, "EINVAL", "EINVAL: bad IPv4 address"},
  {"http://[::1/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[::1]x/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[g::1]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[fe80::1%25eth0]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[12345::]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[1:2:3:4:5:6:7:8:9]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[1:2:3:4:5:6:7]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[:::::::::]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[1::2::3]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[:1::]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[1:]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[::1.2.3]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[::1.2.3.4.5]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[::1.2.3.256]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[::01.2.3.4]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[::.1.2.3]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[1:2:3:4:5:6:7:1.2.3.4]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[::ffff:1.2.3.4:5]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://[1.2.3.4]/", false, "EINVAL", "EINVAL: bad IPv6 address"},
  {"http://" .. ("a"):rep(256) .. "/", false, "EINVAL", "EINVAL: host name too long"},
  {"g", "/not/absolute", "EINVAL", "EINVAL: base is not an absolute http(s) URL"},
  {"g", "mailto:x@y", "EINVAL", "EINVAL: base is not an absolute http(s) URL"},
}

describe("url.normalize", function()
  it("applies every normalization rule", function()
    for _, c in ipairs(NORMALIZE) do
      local got, err = url.normalize(c[1])
      assert(got == c[2], ("normalize(%q) = %s, want %q"):format(c[1], tostring(got or err), c[2]))
    end
  end)

  it("resolves RFC 3986 §5.4's normal and abnormal examples", function()
    for _, c in ipairs(RFC) do
      local got, err = url.normalize(c[1], RFC_BASE)
      assert(got == c[2], ("resolve(%q) = %s, want %q"):format(c[1], tostring(got or err), c[2]))
    end
  end)

  it("resolves against bases with no path, a port, https, and an absolute reference", function()
    assert.equal("http://h/g", url.normalize("g", "http://h"))
    assert.equal("http://h:8080/a/g", url.normalize("g", "http://h:8080/a/b"))
    assert.equal("https://h/x?y", url.normalize("/x?y", "https://h/a#f"))
    assert.equal("https://cdn.h/s.css", url.normalize("//cdn.h/s.css", "https://h/a"))
    assert.equal("http://other/", url.normalize("http://OTHER", "https://h/a"))
    assert.equal("http://h/a?q", url.normalize("  #x ", "http://h/a?q#f"))
  end)

  it("is idempotent", function()
    for _, list in ipairs{NORMALIZE, RFC} do
      for _, c in ipairs(list) do
        local once = url.normalize(c[2])
        assert.equal(c[2], once)
        assert.equal(once, url.normalize(once))
      end
    end
    -- and on random bytes after an http prefix, whatever they hold
    math.randomseed(7)
    for _ = 1, 2000 do
      local t = {}
      for i = 1, math.random(0, 30) do t[i] = string.char(math.random(0, 255)) end
      local once = url.normalize("http://h/" .. table.concat(t))
      if once then assert.equal(once, url.normalize(once)) end
    end
  end)

  it("is idempotent on random hosts, IPv4 and IPv6 spellings among them", function()
    local alphabet = {"0", "1", "7", "9", "f", "x", "X", ".", ":", "::", "%30", "[", "]", "a",
                      "255", "0x", "01", "ffff", "1.2.3.4"}
    math.randomseed(13)
    local ok = 0
    for _ = 1, 20000 do
      local t = {}
      for i = 1, math.random(1, 10) do t[i] = alphabet[math.random(#alphabet)] end
      local host = table.concat(t)
      if math.random(3) == 1 then host = "[" .. host .. "]" end
      local once = url.normalize("http://" .. host .. "/")
      if once then
        ok = ok + 1
        assert.equal(once, url.normalize(once))
        assert.equal(url.origin(once), url.origin("http://" .. host .. "/"))
      end
    end
    assert(ok > 1000, "only " .. ok .. " hosts normalized")
  end)

  it("returns nil, message, code for what it refuses", function()
    for _, c in ipairs(ERRORS) do
      local v, msg, code = url.normalize(c[1], c[2] or nil)
      assert(v == nil, ("normalize(%q) should fail, got %s"):format(c[1], tostring(v)))
      assert.equal(c[4], msg)
      assert.equal(c[3], code)
    end
  end)

  it("raises only on arguments of the wrong type", function()
    assert.has_error(function() url.normalize() end)
    assert.has_error(function() url.normalize({}) end)
    assert.has_error(function() url.normalize("http://h/", {}) end)
  end)

  it("handles long URLs", function()
    local long = "http://h/" .. ("a/"):rep(5000) .. ("%7e"):rep(1000) .. "?" .. (" x"):rep(1000)
    local got = assert(url.normalize(long))
    assert.equal(9 + 10000 + 1000 + 1 + 4000, #got)
    local rel = assert(url.normalize(("../"):rep(3000) .. "x", "http://h/a/b/c"))
    assert.equal("http://h/x", rel)
  end)
end)

describe("url.parse", function()
  it("returns the parts as written, scheme and host lower-cased", function()
    assert.same({scheme = "http", host = "example.com", port = 8080, path = "/A/./b",
                 query = "x=%7e", fragment = "Top"},
                url.parse("HTTP://Example.COM:8080/A/./b?x=%7e#Top"))
    assert.same({scheme = "https", host = "h", port = 443, path = ""}, url.parse("https://h"))
    assert.same({scheme = "http", host = "h", port = 80, path = "/", query = ""},
                url.parse("http://h:/?"))
    assert.same({scheme = "http", host = "::1", port = 81, path = "/x"},
                url.parse("http://[::1]:81/x"))
  end)

  it("returns the host normalized as normalize writes it", function()
    assert.same({scheme = "http", host = "127.0.0.1", port = 8080, path = "/a/../b"},
                url.parse("http://0x7F.1:8080/a/../b"))
    assert.same({scheme = "https", host = "::ffff:102:304", port = 443, path = "/"},
                url.parse("https://[::FFFF:1.2.3.4]/"))
    assert.same({scheme = "http", host = "example.com", port = 80, path = "/"},
                url.parse("http://ex%61mple.COM/"))
    assert.same({nil, "EINVAL: port out of range", "EINVAL"}, {url.parse("http://h:0/")})
    assert.same({nil, "EINVAL: bad IPv4 address", "EINVAL"}, {url.parse("http://1.2.3.4.5/")})
  end)

  it("returns the triple for what is not an absolute http(s) URL", function()
    assert.same({nil, "EINVAL: not an absolute URL", "EINVAL"}, {url.parse("/x")})
    assert.same({nil, "ENOTSUP: unsupported scheme 'ftp'", "ENOTSUP"}, {url.parse("ftp://h/")})
    assert.same({nil, "EINVAL: credentials in URL", "EINVAL"}, {url.parse("http://u@h/")})
    assert.same({nil, "EINVAL: no host", "EINVAL"}, {url.parse("http:x")})
  end)
end)

describe("url.origin", function()
  it("returns scheme://host:port with the port always written", function()
    assert.equal("http://127.0.0.1:80", url.origin("http://127.0.0.1/a?b#c"))
    assert.equal("https://example.com:443", url.origin("HTTPS://Example.com"))
    assert.equal("http://example.com:8080", url.origin(" http://EXAMPLE.com:8080/x "))
    assert.equal("http://[::1]:80", url.origin("http://[::1]/"))
    assert.equal("http://h:1", url.origin("http://h:1/"))
  end)

  it("gives one origin for every spelling of a host", function()
    for _, u in ipairs{"http://127.0.0.1/", "http://127.1/", "http://2130706433/",
                       "http://0x7f000001/", "http://0177.0.0.1/", "HTTP://0x7F.0.0.1:80/x",
                       "http://127.0.0.1./", "http://%31%32%37.1/"} do
      assert.equal("http://127.0.0.1:80", url.origin(u))
    end
    assert.equal("https://[::ffff:7f00:1]:443", url.origin("https://[::FFFF:127.0.0.1]/"))
    assert.equal(url.origin("http://[0:0::1]:8080/"), url.origin("http://[::1]:8080/"))
    assert.same({nil, "EINVAL: port out of range", "EINVAL"}, {url.origin("http://h:0/")})
    assert.same({nil, "EINVAL: bad IPv6 address", "EINVAL"}, {url.origin("http://[1::2::3]/")})
  end)

  it("agrees with normalize", function()
    for _, c in ipairs(NORMALIZE) do
      assert.equal(url.origin(c[1]), url.origin(c[2]))
    end
  end)

  it("returns the triple for relative and unsupported URLs", function()
    assert.same({nil, "EINVAL: not an absolute URL", "EINVAL"}, {url.origin("a/b")})
    assert.same({nil, "ENOTSUP: unsupported scheme 'mailto'", "ENOTSUP"},
                {url.origin("mailto:x")})
    assert.same({nil, "EINVAL: bad port", "EINVAL"}, {url.origin("http://h:x/")})
  end)
end)

describe("url.fingerprint", function()
  it("is stable: pinned values", function()
    -- Stored in resume journals: these must never change.
    assert.equal(8848935107335307795, url.fingerprint(""))
    assert.equal(8063880624224784089, url.fingerprint("http://example.com/"))
    assert.equal(-1224436859147166441, url.fingerprint("http://h/"))
    assert.equal(6183201225586195834, url.fingerprint("a"))
    assert.equal(3241246147811260078, url.fingerprint("http://example.com/some/longer/path?q=1"))
  end)

  it("tells apart close strings", function()
    local seen, n = {}, 0
    for i = 1, 20000 do
      for _, s in ipairs{"http://h/" .. i, "http://h/" .. i .. "\0", ("x"):rep(i % 40) .. i} do
        local f = url.fingerprint(s)
        if not seen[f] then n = n + 1 end
        seen[f] = true
      end
    end
    assert.equal(60000, n)
    assert.not_equal(url.fingerprint("a"), url.fingerprint("a\0"))
    assert.not_equal(url.fingerprint("ab"), url.fingerprint("ba"))
  end)

  it("hashes the string as given", function()
    assert.not_equal(url.fingerprint("http://h"), url.fingerprint("http://h/"))
    assert.equal(url.fingerprint(url.normalize("HTTP://H")), url.fingerprint("http://h/"))
  end)
end)

describe("url.seen_set (exact)", function()
  it("adds, finds and counts strings and integers", function()
    local s = url.seen_set()
    assert.equal("exact", s:kind())
    assert.equal(0, s:count())
    assert.equal(0, s:bytes())
    assert.is_true(s:add("http://h/"))
    assert.is_false(s:add("http://h/"))
    assert.is_true(s:has("http://h/"))
    assert.is_false(s:has("http://h/x"))
    assert.is_true(s:has(url.fingerprint("http://h/")))   -- a string is its fingerprint
    assert.is_true(s:add(0))
    assert.is_false(s:add(1))                             -- 0 is stored as 1
    assert.is_true(s:add(-5))
    assert.is_true(s:has(-5))
    assert.equal(3, s:count())
    assert.equal(3, #s)
  end)

  it("raises on elements that are neither integers nor strings", function()
    local s = url.seen_set()
    assert.has_error(function() s:add({}) end)
    assert.has_error(function() s:add(1.5) end)
    assert.has_error(function() s:has(nil) end)
    assert.has_error(function() url.seen_set{kind = "cuckoo"} end)
    assert.has_error(function() url.seen_set{capacity = 0} end)
    assert.has_error(function() url.seen_set{kind = "bloom", fp_rate = 1} end)
  end)

  it("grows through many resizes at 16 bytes an element or less", function()
    local s = url.seen_set()
    local growths, last_bytes = 0, 0
    for i = 1, 2000000 do
      assert(s:add(i))
      local b = s:bytes()
      if b ~= last_bytes then
        growths = growths + 1
        assert(b <= 16 * i, "bytes per element right after a growth at " .. i)
        last_bytes = b
      end
      if i % 997 == 0 then
        assert(b / i <= 16 and b / i >= 8 / 0.75 - 1e-9, "bytes per element at " .. i)
      end
    end
    assert(growths > 20 * 64, "only " .. growths .. " growths")   -- each segment grows alone
    assert.equal(2000000, s:count())
    assert(s:bytes() / s:count() <= 16)
    for i = 1, 2000000, 1013 do assert(s:has(i)) end
    for i = 2000001, 2100000, 101 do assert(not s:has(i)) end
    assert.is_false(s:add(123456))
  end, {timeout = 60})

  it("grows one segment at a time, never by more than 1/32 of its size at once", function()
    -- bytes() counts the arrays held after each add; a growth holds one segment's old and
    -- new arrays for a moment, so a small step here means a small transient in memory.
    local s = url.seen_set()
    local last, steps, big = 0, 0, 0
    for i = 1, 1000000 do
      s:add(url.fingerprint("http://h/" .. i))
      local b = s:bytes()
      if b ~= last then
        assert(b - last <= last / 32 + 8192,
               ("a growth from %d to %d bytes at %d elements"):format(last, b, i))
        steps = steps + 1
        if last >= 1000000 then big = big + 1 end
        last = b
      end
    end
    assert(big >= 64, "only " .. big .. " growths past 1 MB")
    assert(steps >= 64 * 10)
  end, {timeout = 60})

  it("presizes with opts.capacity", function()
    -- Each of the 64 segments gets its share plus a margin for the unevenness of shares:
    -- large for a small capacity, a few percent for a large one.
    for _, n in ipairs{1000, 100000} do
      local s = url.seen_set{capacity = n}
      local b = s:bytes()
      assert(b >= 8 * n / 0.75 and b <= (n < 10000 and 8 * 4 * n or 8 * 1.5 * n), "bytes " .. b)
      for i = 1, n do s:add("u" .. i) end
      assert.equal(b, s:bytes())
      assert.equal(n, s:count())
    end
  end)
end)

describe("url.seen_set (bloom)", function()
  it("sizes itself from capacity and fp_rate", function()
    local s = url.seen_set{kind = "bloom", capacity = 1000000, fp_rate = 1e-6}
    assert.equal("bloom", s:kind())
    -- m = -n ln p / (ln 2)^2 = 28,755,176 bits
    local m = math.ceil(-1e6 * math.log(1e-6) / math.log(2) ^ 2)
    assert.equal(math.ceil(m / 64) * 8, s:bytes())
    assert.equal(s:bytes(), url.seen_set{kind = "bloom"}:bytes())
  end)

  it("has no false negatives and about the configured false-positive rate", function()
    for _, rate in ipairs{0.01, 0.001} do
      local s = url.seen_set{kind = "bloom", capacity = 100000, fp_rate = rate}
      local fresh = 0
      for i = 1, 100000 do
        if s:add("http://site/" .. i) then fresh = fresh + 1 end
      end
      assert.equal(fresh, s:count())
      assert(fresh >= 100000 - 100000 * rate * 3)
      for i = 1, 100000 do assert(s:has("http://site/" .. i)) end
      local fp = 0
      for i = 1, 100000 do
        if s:has("http://other/" .. i) then fp = fp + 1 end
      end
      local measured = fp / 100000
      assert(measured <= rate * 3 and measured >= rate / 3,
             ("rate %g measured %g"):format(rate, measured))
    end
  end, {timeout = 60})

  it("answers false to add for what it has", function()
    local s = url.seen_set{kind = "bloom", capacity = 10}
    assert.is_true(s:add(42))
    assert.is_false(s:add(42))
    assert.is_true(s:has(42))
    assert.equal(1, #s)
  end)
end)
