-- Regression (issue 9): <meta charset> labels browsers refuse were followed. UTF-7 let a
-- page hide markup in text ("+ADw-a href=..." read as a link); UTF-32 and EBCDIC labels
-- turned an ASCII page to garbage (no links at all); and windows-1252 went through iconv,
-- which refuses five of its bytes, and libxml2 stops at the first refused byte.
local html = require "sluice.html"

local BASE = "http://example.com/"

describe("issue 9: <meta charset>", function()
  it("UTF-7 is not followed", function()
    local hidden = "<p>+ADw-a href=+ACI-/hidden+ACI-+AD4-x+ADw-/a+AD4-</p><a href=/shown>s</a>"
    for _, meta in ipairs{'<meta charset="utf-7">', "<meta charset=UTF-7>",
                          '<meta http-equiv="Content-Type" content="text/html; charset=utf-7">'} do
      local links, info = html.links(meta .. "<title>+AGE-</title>" .. hidden .. "\xe9", BASE)
      assert.same({"http://example.com/shown"}, links)
      assert.equal("+AGE-", info.title)
    end
  end)

  it("labels browsers do not know are ignored, and a later known one is followed", function()
    for _, label in ipairs{"utf-32", "ibm037", "ucs-4", "x-unknown"} do
      local links, info = html.links(('<meta charset="%s"><title>T</title><a href="/x">x</a>')
                                     :format(label), BASE)
      assert.same({"http://example.com/x"}, links)
      assert.equal("T", info.title)
    end
    local _, info = html.links('<meta charset="utf-7"><meta charset="iso-8859-15">' ..
                               '<title>\xa4</title>', BASE)
    assert.equal("\xe2\x82\xac", info.title)   -- the euro sign of ISO-8859-15
  end)

  it("windows-1252 reads every byte, as the Encoding standard maps it", function()
    local links, info = html.links('<meta charset="windows-1252"><title>a\x81b\x80</title>' ..
                                   '<a href="/x\x80">x</a><a href="/y">y</a>', BASE)
    assert.same({"http://example.com/x%E2%82%AC", "http://example.com/y"}, links)
    assert.equal("a\xc2\x81b\xe2\x82\xac", info.title)
    links, info = html.links('<meta charset="latin1"><title>\x80\xe9</title>', BASE)
    assert.equal("\xe2\x82\xac\xc3\xa9", info.title)
  end)

  it("a UTF-16 label means UTF-8, and the replacement encoding gives nothing", function()
    local links, info = html.links('<meta charset="utf-16"><title>caf\xc3\xa9</title>' ..
                                   '<a href="/x">x</a>', BASE)
    assert.same({"http://example.com/x"}, links)
    assert.equal("caf\xc3\xa9", info.title)
    links, info = html.links('<meta charset="iso-2022-kr"><title>T</title><a href="/x">x</a>',
                             BASE)
    assert.same({}, links)
    assert.is_nil(info.title)
  end)
end)
