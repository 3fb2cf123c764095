-- Regression (issue 9): links that no browser would follow. libxml2 reads markup inside the
-- elements whose content browsers take as text (title, textarea, xmp, iframe, noembed,
-- noframes, and everything after plaintext), and took an SVG <base> for the page's base.
local html = require "sluice.html"

local BASE = "http://example.com/dir/page"

local function links_every_way(body)
  local whole, info = html.links(body, BASE)
  for step = 1, 7 do
    local p = html.parser(BASE)
    for i = 1, #body, step do p:feed(body:sub(i, i + step - 1)) end
    local links, info2 = p:finish()
    assert.same(whole, links)
    assert.same(info, info2)
  end
  return whole, info
end

describe("issue 9: raw-text elements", function()
  it("hold no links", function()
    for _, name in ipairs{"textarea", "title", "xmp", "iframe", "noembed", "noframes",
                          "TEXTAREA", "Title"} do
      local links = links_every_way(("<a href=/before>b</a><%s><a href=/inside>x</a>" ..
                                     "<base href=/base/></%s ><a href=/after>a</a>")
                                    :format(name, name))
      assert.same({"http://example.com/before", "http://example.com/after"}, links)
    end
  end)

  it("end only at their own end tag", function()
    assert.same({"http://example.com/after"},
                links_every_way("<textarea></textareax><a href=/in></div></TEXTAREA>" ..
                                "<a href=/after>"))
    assert.same({"http://example.com/after"},
                links_every_way("<script>x = '</scriptx><a href=/in>'</script><a href=/after>"))
  end)

  it("keep the title's text as a browser shows it", function()
    local links, info = links_every_way('<title>A <a href="/x">b</a> &amp; c</title>')
    assert.same({}, links)
    assert.equal('A <a href="/x">b</a> & c', info.title)
  end)

  it("plaintext makes the rest of the page text", function()
    assert.same({"http://example.com/before"},
                links_every_way("<a href=/before>b</a><plaintext><a href=/x></plaintext>" ..
                                "<a href=/y>"))
  end)
end)

describe("issue 9: SVG and MathML", function()
  it("an SVG or MathML <base> is not the page's base", function()
    local links, info = links_every_way('<svg><base href="http://evil.example/"/></svg>' ..
                                        '<math><base href="http://evil2.example/"></math>' ..
                                        '<a href="rel">r</a>')
    assert.same({"http://example.com/dir/rel"}, links)
    assert.equal(BASE, info.base)
  end)

  it("the first HTML <base> is, after an SVG one", function()
    local links, info = links_every_way('<svg><base href="http://evil.example/"/></svg>' ..
                                        '<base href="/good/"><a href="rel">r</a>')
    assert.same({"http://example.com/good/rel"}, links)
    assert.equal("http://example.com/good/", info.base)
  end)

  it("an SVG <title> is not the page's title, and holds HTML", function()
    local links, info = links_every_way('<svg><title>icon <a href="/in-svg-title">x</a>' ..
                                        '</title></svg><title>Page</title>')
    assert.same({"http://example.com/in-svg-title"}, links)
    assert.equal("Page", info.title)
  end)

  it("raw-text names inside SVG are SVG elements; HTML comes back after it", function()
    local links = links_every_way('<svg><textarea><a href="/svg-a">x</a></textarea></svg>' ..
                                  '<textarea><a href="/no">y</a></textarea>' ..
                                  '<svg><p><textarea><a href="/no2"></textarea>')
    assert.same({"http://example.com/svg-a"}, links)
  end)
end)
