-- Specs of sluice.html (engine/html.c): links, base, title and meta robots from libxml2's
-- SAX parser, on good pages, broken ones and pages fed in arbitrary chunks.
local html = require "sluice.html"

local BASE = "http://example.com/dir/page.html"

-- A page with a bit of everything: head, base-less links, entities, comments, scripts,
-- UTF-8 text and hrefs, forms, tables, an image map.
local RICH = [[<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8">
<title>  Caf&eacute; &amp; cr&egrave;me — menu  </title>
<meta name="ROBOTS" content="NoIndex, Follow">
<link rel="stylesheet" href="/css/site.css?v=3">
<link rel="icon" href="//static.example.com/favicon.ico">
<script>var s = "<a href='/not-a-link'>"; if (a < b && c > d) {}</script>
<style>a[href="/x"] { color: red }</style>
</head><body>
<!-- <a href="/commented-out">no</a> -->
<h1>Caf&eacute; — à la carte</h1>
<p>Intro <a href="menu.html">menu</a>, <a href='./menu.html#drinks'>drinks</a>,
<a href=/abs/path?q=1&amp;r=2>abs</a> and <A HREF="HTTP://Other.Example.ORG:80/">other</A>.
<a href="caf&#xe9;/cr%C3%A8me">UTF-8 path</a> <a href="../up?x=%7e">up</a>
<a href="mailto:chef@example.com">mail</a> <a href="javascript:alert(1)">js</a>
<a href="">empty</a> <a href="#top">top</a> <a>no href</a> <a href="  spaced.html  ">s</a>
<map name="m"><area shape="rect" coords="0,0,1,1" href="/area/1" alt=""></map>
<table><tr><td><a href="/in/table">t</td></tr></table>
<form action="/not/a/link"><input name="q"></form>
<a href="menu.html">menu again</a>
</body></html>
]]

local RICH_LINKS = {
  "http://example.com/css/site.css?v=3",
  "http://static.example.com/favicon.ico",
  "http://example.com/dir/menu.html",
  "http://example.com/abs/path?q=1&r=2",
  "http://other.example.org/",
  "http://example.com/dir/caf%C3%A9/cr%C3%A8me",
  "http://example.com/up?x=~",
  "http://example.com/dir/spaced.html",
  "http://example.com/area/1",
  "http://example.com/in/table",
}

-- Feeds page to a new parser in chunks cut at the given positions.
local function chunked(page, base, cuts)
  local p = html.parser(base)
  local from = 1
  for _, at in ipairs(cuts) do
    p:feed(page:sub(from, at))
    from = at + 1
  end
  p:feed(page:sub(from))
  return p:finish()
end

-- Random cut positions in n bytes, each at most step bytes after the one before.
local function random_cuts(n, step)
  local cuts, at = {}, 0
  while true do
    at = at + math.random(1, step)
    if at >= n then return cuts end
    cuts[#cuts + 1] = at
  end
end

-- Asserts that page cut at random, rounds times (step_of(round): the longest chunk), gives
-- what html.links gives for it whole; returns those links.
local function chunks_agree(page, rounds, step_of)
  local want_links, want_info = html.links(page, BASE)
  for round = 1, rounds do
    local links, info = chunked(page, BASE, random_cuts(#page, step_of(round)))
    assert.same(want_links, links)
    assert.same(want_info, info)
  end
  return want_links
end

describe("html.links", function()
  it("finds a, area and link hrefs in document order, resolved and normalized", function()
    local links, info = html.links(RICH, BASE)
    assert.same(RICH_LINKS, links)
    assert.equal("http://example.com/dir/page.html", info.base)
    assert.equal("Café & crème — menu", info.title)
    assert.equal("noindex, follow", info.robots)
  end)

  it("removes duplicates after normalization, keeping the first", function()
    local links = html.links([[<a href="/b">1</a><a href="/a">2</a><a href="/b#x">3</a>
      <a href="HTTP://EXAMPLE.COM:80/a">4</a><a href="/./b">5</a><a href="/c">6</a>]], BASE)
    assert.same({"http://example.com/b", "http://example.com/a", "http://example.com/c"}, links)
  end)

  it("skips mailto:, javascript:, data:, malformed, empty and fragment-only hrefs", function()
    local links = html.links([[<a href="mailto:x@y">a</a><a href="javascript:void(0)">b</a>
      <a href="data:text/html,hi">c</a><a href="http://u:p@h/">d</a><a href="http://h:99999/">e</a>
      <a href="">f</a><a href="   ">g</a><a href="#frag">h</a><a href="tel:+1">i</a>
      <a href>j</a><a href="ok">k</a>]], BASE)
    assert.same({"http://example.com/dir/ok"}, links)
  end)

  it("decodes entities in hrefs", function()
    local links = html.links([[<a href="/s?a=1&amp;b=2&#38;c=3&lt;">x</a>
      <a href="/t?a=1&b=2">y</a>]], BASE)
    assert.same({"http://example.com/s?a=1&b=2&c=3%3C", "http://example.com/t?a=1&b=2"}, links)
  end)

  it("skips relative hrefs without a base, keeping absolute ones", function()
    local links, info = html.links([[<a href="rel">r</a><a href="/abs">a</a>
      <a href="https://h.example/x">x</a><a href="//proto.rel/">p</a>]])
    assert.same({"https://h.example/x"}, links)
    assert.is_nil(info.base)
  end)

  it("applies the first <base href> to every link, those before it too", function()
    local links, info = html.links([[<a href="early">e</a>
      <base href="/other/dir/"><base href="http://ignored.example/">
      <a href="late">l</a><a href="/root">r</a>]], BASE)
    assert.same({"http://example.com/other/dir/early", "http://example.com/other/dir/late",
                 "http://example.com/root"}, links)
    assert.equal("http://example.com/other/dir/", info.base)
  end)

  it("takes an absolute <base href> even without a base, and ignores one that fails", function()
    local links, info = html.links([[<base href="HTTPS://B.example/x/"><a href="y">y</a>]])
    assert.same({"https://b.example/x/y"}, links)
    assert.equal("https://b.example/x/", info.base)
    links, info = html.links([[<base href="mailto:x@y"><a href="y">y</a>]], BASE)
    assert.same({"http://example.com/dir/y"}, links)
    assert.equal(BASE, info.base)
    links = html.links([[<base target="_blank"><base href="/b/"><a href="y">y</a>]], BASE)
    assert.same({"http://example.com/b/y"}, links)
    links, info = html.links([[<base href=""><a href="y">y</a>]], BASE)
    assert.same({"http://example.com/dir/y"}, links)
    assert.equal(BASE, info.base)
  end)

  it("reports title and robots only when present", function()
    local links, info = html.links("<p>no head</p>", BASE)
    assert.same({}, links)
    assert.is_nil(info.title)
    assert.is_nil(info.robots)
    links, info = html.links("<title></title>", BASE)
    assert.equal("", info.title)
    links, info = html.links([[<title>First</title><title>Second</title>
      <meta name="robots" content="NOFOLLOW"><meta name="googlebot" content="noarchive">
      <meta name="robots" content="noindex">]], BASE)
    assert.equal("First", info.title)
    assert.equal("nofollow, noindex", info.robots)
    links, info = html.links([[<meta name="robots" content=""><meta name=robots content=X>]])
    assert.equal("x", info.robots)
  end)

  it("survives malformed pages", function()
    local cases = {
      {"", {}},
      {"<", {}},
      {"<a href=", {}},
      {"<a href='/x", nil},
      {"<<<>>><a href=/ok>>>", {"http://example.com/ok"}},
      {"<a href=/one><a href=/two><div><span></p></b></a>", {"http://example.com/one",
                                                         "http://example.com/two"}},
      {"<p>x</body></html><a href=/after-end>x", {"http://example.com/after-end"}},
      {"<html><body><a href=/1></a></body></html>\n<script>t()</script><a href=/2>",
       {"http://example.com/1", "http://example.com/2"}},
      {"<!-- never closed <a href=/c>", {}},
      {"<a href=/q title='unclosed>x</a><a href=/r>", nil},
      {"<svg><a href=/in-svg></a></svg><table><a href=/t></table>", nil},
      {"<title>unclosed <a href=/x>", nil},
    }
    for _, c in ipairs(cases) do
      local links, info = html.links(c[1], BASE)
      assert.equal("table", type(links))
      assert.equal("table", type(info))
      if c[2] then assert.same(c[2], links) end
    end
  end)

  it("survives binary bytes and random garbage", function()
    math.randomseed(11)
    local links = html.links("\0\1\2\255\254<a href=/bin>\0\0</a>\255", BASE)
    assert.same({"http://example.com/bin"}, links)
    for _ = 1, 200 do
      local t = {}
      for i = 1, math.random(0, 600) do t[i] = string.char(math.random(0, 255)) end
      local body = table.concat(t)
      local a = html.links(body, BASE)
      assert.equal("table", type(a))
      -- garbage around a link leaves it findable
      local b = html.links(body:gsub("[<>]", "") .. "<a href=/found>x</a>", BASE)
      assert.equal("http://example.com/found", b[#b])
    end
  end)

  it("reads a Latin-1 page", function()
    local page = "<html><head><title>Caf\xe9</title></head><body>\xe9t\xe9 " ..
                 "<a href=\"/ascii\">\xe0</a> <a href=\"/caf\xe9\">x</a></body></html>"
    local links, info = html.links(page, BASE)
    assert.same({"http://example.com/ascii", "http://example.com/caf%C3%A9"}, links)
    assert.equal("Caf\xc3\xa9", info.title)
    page = '<meta charset="iso-8859-1"><title>\xe9</title><a href="/l">x</a>'
    links, info = html.links(page, BASE)
    assert.same({"http://example.com/l"}, links)
    assert.equal("\xc3\xa9", info.title)
  end)

  it("reads UTF-8 without a <meta>, and Latin-1 from the first byte that is not UTF-8", function()
    local links, info = html.links("<title>Caf\xc3\xa9 \xe2\x80\x94</title><a href='/caf\xc3\xa9'>" ..
                                   "<a href='/\xe9t\xe9'>", BASE)
    assert.same({"http://example.com/caf%C3%A9", "http://example.com/%C3%A9t%C3%A9"}, links)
    assert.equal("Caf\xc3\xa9 \xe2\x80\x94", info.title)
  end)

  it("reads tags as a browser's tokenizer does", function()
    local cases = {
      {"<a/href=/slash>x</a>", {"http://example.com/slash"}},
      {'<a href="/q"title=t>x</a>', {"http://example.com/q"}},
      {"<a =href=/eq>x</a>", {}},
      {"<a<a href=/lt>>x</a>", {}},
      {"</ <a href=/bogus>><a href=/after>", {"http://example.com/after"}},
      {"<!x <a href=/bogus>><a href=/after>", {"http://example.com/after"}},
      {"<?x > <a href=/after-pi> ?>", {"http://example.com/after-pi"}},
      {"<!--><a href=/after-comment>", {"http://example.com/after-comment"}},
      {"<!---><a href=/after-comment>", {"http://example.com/after-comment"}},
      {"<p>x</p <a href=/in-end-tag>><a href=/after>", {"http://example.com/after"}},
      {"</table><a href=/after-stray-end>", {"http://example.com/after-stray-end"}},
      {"<svg><![CDATA[<a href=/cdata>]]></svg><a href=/after>", {"http://example.com/after"}},
      {"<![CDATA[<a href=/html-cdata>]]><a href=/after>", {"http://example.com/after"}},
    }
    for _, c in ipairs(cases) do
      assert.same(c[2], (html.links(c[1], BASE)), c[1])
    end
  end)

  it("handles a page with 50,000 links", function()
    local t = {"<html><body>"}
    for i = 1, 50000 do t[#t + 1] = ('<a href="/p/%d">link %d</a>\n'):format(i, i) end
    t[#t + 1] = '<a href="/p/1">again</a></body></html>'
    local links = html.links(table.concat(t), BASE)
    assert.equal(50000, #links)
    assert.equal("http://example.com/p/1", links[1])
    assert.equal("http://example.com/p/50000", links[50000])
  end, {timeout = 30})

  it("raises on bad arguments", function()
    assert.has_error(function() html.links() end)
    assert.has_error(function() html.links({}) end)
    assert.has_error(function() html.links("", "not a url") end,
                     "bad argument #2 to 'links' (EINVAL: relative URL without a base)")
    assert.has_error(function() html.parser("mailto:x") end)
  end)
end)

describe("html.parser", function()
  it("gives the same result in chunks as at once, wherever the page is cut", function()
    math.randomseed(3)
    local steps = {3, 40, 400}
    local want = chunks_agree(RICH, 300, function(round) return steps[round % 3 + 1] end)
    assert.same(RICH_LINKS, want)
  end, {timeout = 60})

  it("gives the same result in chunks on Latin-1 and broken pages", function()
    local pages = {
      "<title>Caf\xe9</title>\xe9t\xe9 <a href=\"/caf\xe9\">x</a><a href=/b>\xff</a>",
      "<p>x</body></html>\n<a href='/late'>l</a><script>a</scr + ipt</script><a href=/z>",
      "<a href=/1 <a href=/2> <<< </ </a <!-- x --> <a href=\"/3\"></a><style></style",
      "<title>t<a href=/no></title><textarea>\0</textarea><svg><title><a href=/s></title>" ..
        "<base href=/nb/></svg><a href='/n\0l'><a/href=/sl><!--><a href=/c><xmp></xmp>" ..
        "<a href=/end>",
      "\xff\xfe<\0a\0 \0h\0r\0e\0f\0=\0/\0u\0>\0",
      "<meta charset=windows-1252><a href=/\x80\x81>x</a><plaintext><a href=/no>",
    }
    math.randomseed(5)
    for _, page in ipairs(pages) do
      assert(#chunks_agree(page, 200, function() return 8 end) > 0)
    end
  end, {timeout = 60})

  it("takes the page one byte at a time", function()
    local cuts = {}
    for i = 1, #RICH - 1 do cuts[i] = i end
    local links, info = chunked(RICH, BASE, cuts)
    assert.same(RICH_LINKS, links)
    assert.equal("Café & crème — menu", info.title)
  end)

  it("accepts empty chunks and no chunks", function()
    local p = html.parser(BASE)
    p:feed("")
    p:feed('<a href="x">')
    p:feed("")
    assert.same({"http://example.com/dir/x"}, (p:finish()))
    local links, info = html.parser():finish()
    assert.same({}, links)
    assert.same({}, info)
  end)

  it("refuses use after finish or close; close is idempotent", function()
    local p = html.parser(BASE)
    p:feed("<a href=x>")
    p:finish()
    assert.has_error(function() p:finish() end,
                     "attempt to use a finished or closed HTML parser")
    assert.has_error(function() p:feed("x") end,
                     "attempt to use a finished or closed HTML parser")
    p:close()
    local q = html.parser()
    q:feed("<a href=/x>")
    q:close()
    q:close()
    assert.has_error(function() q:feed("x") end)
    do
      local r <close> = html.parser()
      r:feed("<title>t")
    end
    assert.has_error(function() p:feed(42) end)
  end)
end)
