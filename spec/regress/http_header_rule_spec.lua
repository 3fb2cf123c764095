-- http_header_rule_spec.lua: issue 11. The client (request headers) and the server
-- (response headers) check header names and values with one rule (engine/http_header.c):
-- a name is a token, a value holds no control byte but HTAB. Both sides hand Lua header
-- tables of one kind (sluice.http.headers), whose lookups ignore case whatever the key's
-- length (the server's own lookup gave nil for a key over 128 bytes).
local http = require "sluice.http"
local H = require "spec.helpers"

describe("regress: one header rule for client and server", function()
  local srv

  after_each(function()
    if srv then srv:close() end
    srv = nil
  end)

  local BAD_VALUES = {"a\rb", "a\nb", "a\0b", "a\1b", "a\127b"}
  local BAD_NAMES = {"", "a b", "a:b", "a\rb", "\195\169"}

  it("the client refuses the names and values the server refuses", function()
    srv = assert(http.serve{port = 0, handler = function() return 200, {}, "" end})
    local url = "http://127.0.0.1:" .. srv.port .. "/"
    for _, v in ipairs(BAD_VALUES) do
      assert.has_error(function() http.get(url, {headers = {["X-V"] = v}}) end)
    end
    for _, name in ipairs(BAD_NAMES) do
      assert.has_error(function() http.get(url, {headers = {[name] = "v"}}) end)
    end
    -- (in a child: the server logs each refusal on stderr)
    local script = [[
      local http = require "sluice.http"
      local returned
      local srv = assert(http.serve{port = 0, handler = function() return 200, returned, "" end})
      local url = "http://127.0.0.1:" .. srv.port .. "/"
      for _, v in ipairs{"a\rb", "a\nb", "a\0b", "a\1b", "a\127b"} do
        returned = {["X-V"] = v}
        io.write(assert(http.get(url)).status, " ")
      end
      for _, name in ipairs{"", "a b", "a:b", "a\rb", "\195\169"} do
        returned = {[name] = "v"}
        io.write(assert(http.get(url)).status, " ")
      end
      srv:close()
    ]]
    local r = H.run({"-e", script})
    assert.equals(0, r.code)
    assert.equals(("500 "):rep(10), r.out)
    assert.equals(5, H.count("a header value holds a control character", r.err))
    assert.equals(1, H.count("a header name is empty", r.err))
    assert.equals(4, H.count("a header name holds a byte that is not allowed in a token", r.err))
  end)

  it("both sides take HTAB in values and every tchar in names", function()
    srv = assert(http.serve{port = 0, handler = function(req)
      return 200, {["X-V"] = "a\tb", ["!#$%&'*+-.^_`|~09azAZ"] = "t"}, req.headers["x-v"]
    end})
    local res = assert(http.get("http://127.0.0.1:" .. srv.port .. "/",
                                {headers = {["X-V"] = "c\td", ["!#$%&'*+-.^_`|~Az"] = "n"}}))
    assert.equals(200, res.status)
    assert.equals("c\td", res.body)
    assert.equals("a\tb", res.headers["x-v"])
    assert.equals("t", res.headers["!#$%&'*+-.^_`|~09azaz"])
  end)

  it("gives both sides' header tables one metatable, with lookups of any length", function()
    local long = ("Long-Name-"):rep(20)           -- 200 bytes
    local seen
    srv = assert(http.serve{port = 0, handler = function(req)
      seen = req.headers
      return 200, {[long] = "back"}, "ok"
    end})
    local res = assert(http.get("http://127.0.0.1:" .. srv.port .. "/",
                                {headers = {[long] = "there"}}))
    assert.equals(getmetatable(res.headers), getmetatable(seen))
    assert.equals("sluice.http.headers", getmetatable(seen).__name)
    assert.equals("there", seen[long])
    assert.equals("there", seen[long:upper()])
    assert.equals("back", res.headers[long])
    assert.is_nil(seen["x-absent"])
  end)
end)
