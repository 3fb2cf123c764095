-- Specs of the bundled JSON codec: `require "cjson"` is lua-cjson, linked into the binary
-- and registered in package.preload by engine/main.c.
local cjson = require "cjson"

describe("cjson", function()
  it("is preloaded in the binary", function()
    assert.is_function(package.preload.cjson)
    assert.is_function(cjson.encode)
    assert.is_function(cjson.decode)
  end)

  it("encodes arrays, strings and scalars exactly", function()
    assert.are.equal("[1,2,\"x\",true,false]", cjson.encode({1, 2, "x", true, false}))
    assert.are.equal("{\"a\":1}", cjson.encode({a = 1}))
    assert.are.equal("\"a\\\"b\\n\\/\"", cjson.encode("a\"b\n/"))
    assert.are.equal("1.5", cjson.encode(1.5))
    assert.are.equal("{}", cjson.encode({}))
  end)

  it("round-trips nested values", function()
    local value = {
      name = "sluice", tags = {"lua", "libuv"}, n = 42, ratio = 0.25, ok = true,
      nested = {deep = {list = {1, {x = "y"}, 3}}}, unicode = "é ✓",
    }
    assert.are.same(value, cjson.decode(cjson.encode(value)))
  end)

  it("decodes numbers as floats that compare equal to the integers", function()
    local n = cjson.decode("3")
    assert.are.equal(3, n)
    assert.are.equal("float", math.type(n))
    assert.are.equal(1.5, cjson.decode("1.5"))
  end)

  it("decodes \\u escapes to UTF-8", function()
    assert.are.equal("é", cjson.decode("\"\\u00e9\""))
  end)

  it("maps JSON null to cjson.null both ways", function()
    local t = cjson.decode("[1,null,3]")
    assert.are.equal(3, #t)
    assert.are.equal(cjson.null, t[2])
    assert.are.equal("null", cjson.encode(cjson.null))
    assert.are.equal("[1,null,3]", cjson.encode(t))
    assert.are.equal(cjson.null, cjson.decode("{\"k\":null}").k)
  end)

  it("raises on invalid JSON, naming the position", function()
    local cases = {
      {"{bad", "Expected object key string but found invalid token at character 2"},
      {"[1,2", "Expected comma or array end but found T_END at character 5"},
      {"", "Expected value but found T_END at character 1"},
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(cjson.decode, c[1])
      assert.is_false(ok)
      assert.are.equal(c[2], err)
    end
  end)

  it("raises on values JSON cannot hold", function()
    assert.has_error(function() cjson.encode(function() end) end,
                     "Cannot serialise function: type not supported")
    assert.has_error(function() cjson.encode(0 / 0) end,
                     "Cannot serialise number: must not be NaN or Inf")
    local loop = {}
    loop.self = loop
    assert.has_error(function() cjson.encode(loop) end,
                     "Cannot serialise, excessive nesting (1001)")
  end)
end)
