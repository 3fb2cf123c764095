-- Regression (issue 9): a NUL byte in a tag cut libxml2's reading of it. An href was cut at
-- the NUL ("/a\0b" gave "/a"); a NUL in another attribute made the tag's href vanish; and
-- the rest of a quoted value was read as markup, so a page could plant links that no
-- browser sees. A browser reads NUL as U+FFFD in attribute values.
local html = require "sluice.html"

local BASE = "http://example.com/dir/page"

-- The links of body fed whole, and fed in chunks of every size from 1 to 7 bytes.
local function links_every_way(body)
  local whole = html.links(body, BASE)
  for step = 1, 7 do
    local p = html.parser(BASE)
    for i = 1, #body, step do p:feed(body:sub(i, i + step - 1)) end
    assert.same(whole, (p:finish()))
  end
  return whole
end

describe("issue 9: NUL bytes in tags", function()
  it("keep the href whole, with U+FFFD for the NUL", function()
    assert.same({"http://example.com/a%EF%BF%BDb", "http://example.com/after"},
                links_every_way('<a href="/a\0b">x</a><a href="/after">y</a>'))
    assert.same({"http://example.com/a%EF%BF%BDb", "http://example.com/c%EF%BF%BD"},
                links_every_way("<a href='/a\0b'>x</a><a href=/c\0>y</a>"))
    assert.same({"http://example.com/dir/%EF%BF%BD"}, links_every_way('<a href="\0">x</a>'))
  end)

  it("do not lose the href of the tag", function()
    assert.same({"http://example.com/x", "http://example.com/after"},
                links_every_way('<a title="\0" href="/x">y</a><a href="/after">z</a>'))
  end)

  it("do not turn the rest of a value into markup", function()
    assert.same({"http://example.com/x%EF%BF%BD%20%3Ca%20href=/planted%3E",
                 "http://example.com/after"},
                links_every_way('<a href="/x\0 <a href=/planted>">y</a><a href="/after">z</a>'))
    assert.same({"http://example.com/x%EF%BF%BD%3Ey%3C/a%3E%3Ca%20href="},
                links_every_way('<a href="/x\0>y</a><a href="/after">z</a>'))
  end)

  it("make a name that is no longer a or href, as in a browser", function()
    assert.same({"http://example.com/after"},
                links_every_way('<a\0 href="/x">1</a><a hr\0ef="/y">2</a><\0a href="/z">3' ..
                                '<a href="/after">4</a>'))
  end)

  it("in text and titles do not cut the page", function()
    local links, info = html.links('<title>a\0b</title>\0<p>x\0y</p><a href="/after">y</a>',
                                   BASE)
    assert.same({"http://example.com/after"}, links)
    assert.equal("a\xef\xbf\xbdb", info.title)
  end)
end)
