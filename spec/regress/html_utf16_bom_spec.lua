-- Regression (issue 9): a page in UTF-16 with a byte order mark gave no links: libxml2's
-- push parser does not look for the mark. Browsers decode by the mark, whatever a <meta>
-- says.
local html = require "sluice.html"

local BASE = "http://example.com/"

-- s (ASCII or UTF-8 without 4-byte characters) in UTF-16, little- or big-endian.
local function utf16(s, big)
  local out = {}
  for _, cp in utf8.codes(s) do
    local hi, lo = cp >> 8, cp & 0xff
    out[#out + 1] = big and string.char(hi, lo) or string.char(lo, hi)
  end
  return table.concat(out)
end

local PAGE = '<html><head><meta charset="iso-8859-1"><title>Caf\xc3\xa9</title></head>' ..
             '<body><a href="/caf\xc3\xa9">x</a><a href="/b">y</a></body></html>'
local WANT = {"http://example.com/caf%C3%A9", "http://example.com/b"}

describe("issue 9: UTF-16 with a byte order mark", function()
  for _, case in ipairs{{"little-endian", "\xff\xfe", false}, {"big-endian", "\xfe\xff", true}} do
    it("gives the links and title of a " .. case[1] .. " page, whole and in chunks", function()
      local body = case[2] .. utf16(PAGE, case[3])
      local links, info = html.links(body, BASE)
      assert.same(WANT, links)
      assert.equal("Caf\xc3\xa9", info.title)
      for step = 1, 5 do
        local p = html.parser(BASE)
        for i = 1, #body, step do p:feed(body:sub(i, i + step - 1)) end
        local l2, i2 = p:finish()
        assert.same(WANT, l2)
        assert.equal("Caf\xc3\xa9", i2.title)
      end
    end)
  end

  it("decodes surrogate pairs, and a lone surrogate or odd byte as U+FFFD", function()
    -- U+1F600 is D83D DE00; D800 alone is a lone surrogate.
    local body = "\xff\xfe" .. utf16('<a href="/') .. "\x3d\xd8\x00\xde" ..
                 utf16('"></a><a href="/') .. "\x00\xd8" .. utf16('x"></a><title>t</title>') .. "A"
    local links, info = html.links(body, BASE)
    assert.same({"http://example.com/%F0%9F%98%80", "http://example.com/%EF%BF%BDx"}, links)
    assert.equal("t", info.title)
  end)

  it("drops a UTF-8 byte order mark and then ignores a <meta> charset", function()
    local links, info = html.links('\xef\xbb\xbf<meta charset="iso-8859-1"><title>\xc3\xa9</title>' ..
                                   '<a href="/\xc3\xa9">x</a>', BASE)
    assert.same({"http://example.com/%C3%A9"}, links)
    assert.equal("\xc3\xa9", info.title)
  end)
end)
