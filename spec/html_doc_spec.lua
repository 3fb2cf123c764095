-- Specs of html.parse and its selections (engine/html_doc.c): libxml2's HTML tree, XPath and
-- CSS in parsel's model. Expected values are what parsel 1.7 (python3-parsel) returns.
local html = require "sluice.html"
local url = require "sluice.url"

local BASE = "http://example.com/dir/page.html"

local PAGE = [[<html><head><title>T &amp; x</title></head><body>
<p class="a b" id=x>Hi <b>there</b> caf&eacute; &lt;</p><p>two</p><!-- c -->
<a href="/x y?a=1&amp;b">l</a><br><img src=a.png>
<ul><li>1</li><li class=odd>2</li><li>3</li></ul></body></html>]]

-- RSS of this process in bytes.
local function rss()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4096
end

-- The links html.links would give, from a document: hrefs of a, area and link, trimmed,
-- without empty and fragment-only ones, resolved against doc.base, each once.
local function doc_links(doc)
  local out, seen = {}, {}
  for _, href in ipairs(doc:xpath("//a/@href | //area/@href | //link/@href"):getall()) do
    href = href:match("^[%z\1- ]*(.-)[%z\1- ]*$")
    if href ~= "" and href:sub(1, 1) ~= "#" then
      local u = url.normalize(href, doc.base)
      if u and not seen[u] then
        seen[u] = true
        out[#out + 1] = u
      end
    end
  end
  return out
end

describe("html.parse", function()
  it("serializes elements as lxml does, and gives text and attribute values as strings", function()
    local doc = html.parse(PAGE)
    assert.equal('<p class="a b" id="x">Hi <b>there</b> café &lt;</p>', doc:xpath("//p"):get())
    assert.same({"Hi ", " café <", "two"}, doc:xpath("//p/text()"):getall())
    assert.equal("/x y?a=1&b", doc:xpath("//a/@href"):get())
    assert.equal('<a href="/x%20y?a=1&amp;b">l</a>', doc:xpath("//a"):get())
    assert.equal("<!-- c -->", doc:xpath("//comment()"):get())
    assert.equal("<br>", doc:xpath("//br"):get())
    assert.equal('<img src="a.png">', doc:xpath("//img"):get())
  end)

  it("gives XPath numbers, strings and booleans as one Lua value", function()
    local doc = html.parse(PAGE)
    assert.equal(2, doc:xpath("count(//p)"):get())
    assert.equal("integer", math.type(doc:xpath("count(//p)"):get()))
    assert.equal(0.5, doc:xpath("1 div 2"):get())
    assert.equal("T & x", doc:xpath("string(//title)"):get())
    assert.is_true(doc:xpath("1 = 1"):get())
    assert.is_false(doc:xpath("count(//p) > 5"):get())
    assert.same({2}, doc:xpath("count(//p)"):getall())
    assert.equal(1, #doc:xpath("count(//p)"))
  end)

  it("evaluates relative to the root element, as parsel does", function()
    local doc = html.parse(PAGE)
    assert.equal("<body>", doc:xpath("body"):get():sub(1, 6))
    assert.equal("html", doc:xpath(".")[1].tag)
    assert.equal(0, #doc:xpath("/"))
  end)

  it("runs sel:xpath relative to each node, results concatenated", function()
    local doc = html.parse(PAGE)
    local ps = doc:xpath("//p")
    assert.same({"Hi ", " café <", "two"}, ps:xpath("text()"):getall())
    assert.same({"<b>there</b>"}, ps:xpath(".//b"):getall())
    assert.same({1, 0}, ps:xpath("count(b)"):getall())
    -- text and attribute results are strings in parsel: they select nothing
    assert.equal(0, #doc:xpath("//p/text()"):xpath(".."))
    assert.equal(0, #doc:xpath("//a/@href"):css("a"))
  end)

  it("indexes, counts and iterates a selection", function()
    local doc = html.parse(PAGE)
    local lis = doc:xpath("//li")
    assert.equal(3, #lis)
    assert.equal("<li>3</li>", lis[3]:get())
    assert.equal(1, #lis[2])
    assert.is_nil(lis[4])
    assert.is_nil(lis[0])
    local texts = {}
    for i, li in ipairs(lis) do texts[i] = li:text() end
    assert.same({"1", "2", "3"}, texts)
    local vals = doc:xpath("count(//li)")
    assert.equal(3, vals[1]:get())
  end)

  it("gives nil and {} for a selection of nothing", function()
    local doc = html.parse(PAGE)
    local none = doc:xpath("//table")
    assert.equal(0, #none)
    assert.is_nil(none:get())
    assert.equal("dflt", none:get("dflt"))
    assert.same({}, none:getall())
    assert.is_nil(none:attr("href"))
    assert.same({}, none:attrib())
    assert.same({}, none:re("."))
    assert.is_nil(none:re_first("."))
    assert.equal("d", none:re_first(".", "d"))
    assert.is_nil(none.tag)
    assert.is_nil(none:text())
    assert.is_nil(none:html())
    assert.equal(0, #none:parent())
    assert.equal(0, #none:children())
    assert.equal(0, #none:xpath("*"))
  end)

  it("reads the first node's attributes", function()
    local doc = html.parse(PAGE)
    local ps = doc:xpath("//p")
    assert.equal("a b", ps:attr("class"))
    assert.is_nil(ps:attr("nope"))
    assert.same({class = "a b", id = "x"}, ps:attrib())
    assert.same({class = "a b", id = "x"}, ps:attrs())
    assert.same({}, doc:xpath("//p/text()"):attrib())
    assert.equal("odd", doc:xpath("//li")[2]:attr("class"))
  end)

  it("matches Lua patterns over the results, with captures", function()
    local doc = html.parse(PAGE)
    assert.same({"Hi"}, doc:xpath("//p"):re("(%w+) <b>"))
    assert.same({"1", "2", "3"}, doc:xpath("//li/text()"):re("%d"))
    assert.same({"li", "1", "li", "2", "li", "3"}, doc:xpath("//li"):re("<(%a+)[^>]*>(%d)"))
    assert.equal("2", doc:xpath("//li/text()"):re_first("[2-9]"))
    assert.equal("none", doc:xpath("//li/text()"):re_first("x", "none"))
    assert.same({"2"}, doc:xpath("count(//p)"):re("%d"))
  end)

  it("gives a node's tag, text, html, parent and children", function()
    local doc = html.parse(PAGE)
    local p = doc:xpath("//p")[1]
    assert.equal("p", p.tag)
    assert.equal("Hi there café <", p:text())
    assert.equal('<p class="a b" id="x">Hi <b>there</b> café &lt;</p>', p:html())
    assert.equal("body", p:parent().tag)
    assert.equal("b", p:children().tag)
    assert.same({"<li>1</li>", '<li class="odd">2</li>', "<li>3</li>"},
                doc:xpath("//ul"):children():getall())
    assert.equal(0, #doc:xpath("/html"):parent())
    assert.equal("p", doc:xpath("//b/text()"):parent():parent().tag)
    assert.equal("a", doc:xpath("//a/@href"):parent().tag)
    assert.is_nil(doc:xpath("//p/text()").tag)
    assert.equal("Hi ", doc:xpath("//p/text()"):text())
    assert.equal("caf&eacute; &lt;", html.parse("<p>café <"):xpath("//p/text()"):html()
                                        :gsub("é", "&eacute;"))
  end)

  it("prints a selection as its count, query and first results", function()
    local doc = html.parse(PAGE)
    local s = tostring(doc:xpath("//li/text()"))
    assert.equal('selection of 3 for \'//li/text()\'\n  [1] "1"\n  [2] "2"\n  [3] "3"', s)
    s = tostring(html.parse(("<p>" .. ("x"):rep(200) .. "</p>"):rep(8)):xpath("//p"))
    assert.truthy(s:find('^selection of 8 for \'//p\'\n  %[1%] "<p>x+"%.%.%.\n'))
    assert.truthy(s:find("\n  ... 3 more$"))
    assert.equal("selection of 1 for 'count(//p)'\n  [1] 2", tostring(doc:xpath("count(//p)")))
  end)

  it("runs CSS selectors through sluice.css, with ::text and ::attr()", function()
    local doc = html.parse(PAGE)
    assert.same({"Hi ", " café <", "two"}, doc:css("p::text"):getall())
    assert.equal("/x y?a=1&b", doc:css("a::attr(href)"):get())
    assert.equal(2, #doc:css("p.b, li.odd"))
    assert.equal("x", doc:css("#x"):attr("id"))
    assert.same({"1", "2", "3"}, doc:css("ul"):css("li::text"):getall())
    for _ = 1, 3 do   -- cached: the same answer each time
      assert.equal(3, #doc:css("li"))
    end
  end)

  it("raises on bad XPath, quoting it, and on bad CSS", function()
    local doc = html.parse(PAGE)
    local ok, err = pcall(doc.xpath, doc, "//p[")
    assert.is_false(ok)
    assert.matches("bad XPath '//p%[': .* at character %d+", err)
    ok, err = pcall(doc.xpath, doc, "")
    assert.matches("bad XPath ''", err)
    ok, err = pcall(doc.xpath, doc, "nope(1)")
    assert.matches("XPath 'nope%(1%)' failed: unregistered function", err)
    ok, err = pcall(doc.xpath, doc, ("("):rep(100000))
    assert.is_false(ok)
    ok = pcall(doc.css, doc, "p[")
    assert.is_false(ok)
    assert.has_error(function() doc:xpath(nil) end)
    -- the same bad expression raises again, and good ones still work
    assert.has_error(function() doc:xpath("//p[") end)
    assert.equal(2, #doc:xpath("//p"))
  end)

  it("keeps the cache bounded and right past thousands of expressions", function()
    local doc = html.parse("<p>a</p><p>b</p>")
    for i = 1, 10000 do
      assert.equal(i % 2 + 1, doc:xpath("count(//p) - " .. (1 - i % 2)):get())
    end
    assert.equal(2, #doc:xpath("//p"))
  end, {timeout = 30})

  it("answers right when a finalizer queries while a query runs", function()
    local doc = html.parse(PAGE)
    local inner = {}
    for round = 1, 200 do
      for _ = 1, 50 do        -- garbage whose finalizers query and serialize
        setmetatable({}, {__gc = function()
          inner[#inner + 1] = doc:xpath("//li"):get() .. #doc:xpath("//li")
        end})
      end
      local lis = doc:xpath("//li | //p | //b")
      assert.equal(6, #lis)
      assert.equal('<p class="a b" id="x">Hi <b>there</b> café &lt;</p>', lis:get())
      assert.equal("<li>3</li>", lis[6]:get())
      assert.equal(round % 2 == 0 and 1.5 or 3, doc:xpath(round % 2 == 0 and "3 div 2" or "3"):get())
    end
    collectgarbage()
    assert.is_true(#inner > 0)
    for _, v in ipairs(inner) do assert.equal("<li>1</li>3", v) end
  end)

  it("gives doc.base: the first <base href> resolved against the URL, or the URL", function()
    assert.equal("http://e.com/d/", html.parse('<base href="/d/"><a href=x>', "http://e.com/a/b").base)
    assert.equal("http://e.com/a/b", html.parse("<a href=x>", "http://e.com/a/b").base)
    assert.is_nil(html.parse("<a href=x>").base)
    assert.equal("https://b.example/x/", html.parse('<base href="HTTPS://B.example/x/">').base)
    assert.equal(BASE, html.parse('<base href="mailto:x@y">', BASE).base)
    assert.has_error(function() html.parse("", "not a url") end)
  end)

  it("gives the links html.links gives for the same bytes", function()
    local pages = {
      PAGE,
      [[<html><head><base href="/other/"><link rel=stylesheet href="s.css"></head>
        <body><a href="a.html#x">a</a> <a href="  spaced  ">s</a> <a href="#top">t</a>
        <a href="">e</a><a href="mailto:x@y">m</a><map><area href="/m/1"></map>
        <a href="a.html">again</a><table><tr><td><a href="/t">t</a></table></body></html>]],
      "<p>Caf\xe9 <a href=\"/caf\xe9\">x</a> <a href=/b?x=1&amp;y=2>y</a>",
      "\xef\xbb\xbf<a href=/bom>b</a>",
      "\xff\xfe" .. ("<a href=/utf16>x</a>"):gsub(".", "%0\0"),
      '<meta charset="windows-1251"><a href="/\xef\xf0">x</a>',
      "<ul>" .. ("<li><a href='/item/%d'>i</a>"):rep(300):gsub("%%d", "7") .. "</ul>",
    }
    for i = 1, 50 do
      pages[#pages + 1] = ("<div><a href='/p%d'>x</a><p><a href='../q%d?a=%d'>y</a>"):format(i, i, i)
    end
    for _, page in ipairs(pages) do
      local want, info = html.links(page, BASE)
      local doc = html.parse(page, BASE)
      assert.equal(info.base, doc.base)
      assert.same(want, doc_links(doc))
    end
  end)
end)

describe("html.parse encodings", function()
  local function p_text(body, charset)
    return html.parse(body, nil, charset):xpath("string(//p)"):get()
  end

  it("follows <meta charset> and http-equiv, reading the whole page in it", function()
    assert.equal("café", p_text('<meta charset="iso-8859-1"><p>caf\xe9</p>'))
    assert.equal("при", p_text('<meta http-equiv="Content-Type" content="text/html; ' ..
                                'charset=windows-1251"><p>\xef\xf0\xe8</p>'))
    assert.equal("café", p_text('<meta charset="utf-8"><p>caf\xc3\xa9</p>'))
    assert.equal("caf\xc3\xa9", p_text('<meta charset="utf-7"><p>caf\xc3\xa9</p>'))
  end)

  it("reads UTF-8, and windows-1252 from the first byte that is not", function()
    assert.equal("café €", p_text("<p>caf\xc3\xa9 \xe2\x82\xac</p>"))
    assert.equal("café € \xe2\x80\x9c", p_text("<p>caf\xc3\xa9 \xe2\x82\xac \x93</p>"))
  end)

  it("takes the charset argument over <meta>, and a BOM over both", function()
    assert.equal("cafÃ©", p_text("<p>caf\xc3\xa9</p>", "iso-8859-1"))
    assert.equal("café", p_text("<meta charset=latin1><p>caf\xc3\xa9</p>", "UTF-8"))
    assert.equal("café", p_text("\xef\xbb\xbf<p>caf\xc3\xa9</p>", "iso-8859-1"))
    assert.equal("hé", p_text("\xff\xfe" .. ("<p>h"):gsub(".", "%0\0") .. "\xe9\0"))
    assert.equal("hé", p_text("\xfe\xff" .. ("<p>h"):gsub(".", "\0%0") .. "\0\xe9"))
    assert.equal("café", p_text("<p>caf\xc3\xa9</p>", "no-such-charset"))
    assert.equal("", p_text("<p>x</p>", "iso-2022-kr"))   -- the replacement encoding
  end)

  it("drops NUL bytes and surrounding white space, as parsel does", function()
    assert.equal("xy", p_text("<p>x\0y</p>"))
    assert.equal('<p class="ab">z</p>', html.parse(" \n\t<p class='a\0b'>z</p>\n "):xpath("//p"):get())
  end)
end)

describe("html.parse bad input", function()
  it("parses empty, blank and NUL-only bodies as parsel does: <html></html>", function()
    for _, body in ipairs{"", "   \n", "\0\0", "\xef\xbb\xbf", "<!-- only a comment -->"} do
      local doc = html.parse(body)
      assert.equal("<html></html>", doc:xpath("/*"):get())
      assert.equal(0, #doc:xpath("//p"))
    end
  end)

  it("survives binary bytes", function()
    math.randomseed(7)
    for round = 1, 50 do
      local t = {}
      for i = 1, math.random(0, 5000) do t[i] = string.char(math.random(0, 255)) end
      local doc = html.parse(table.concat(t), nil, round % 2 == 0 and "shift_jis" or nil)
      assert.equal("html", doc:xpath("/*")[1].tag)
      assert.equal("string", type(doc:xpath("/*"):get()))
      assert.equal("string", type(doc:xpath("/*"):text()))
      doc:close()
    end
  end)

  it("parses, queries, prints and frees a tree 200,000 levels deep", function()
    local n = 200000
    local doc = html.parse(("<div>"):rep(n) .. "x" .. ("</div>"):rep(n))
    assert.equal(n, doc:xpath("count(//div)"):get())
    assert.equal(n, #doc:xpath("descendant::div"))
    assert.equal(#("<div></div>") * n + 1, #doc:xpath("//body/div"):get())
    assert.equal("x", doc:xpath("//body"):text())
    assert.equal(n, doc:xpath("count(//text()/ancestor::div)"):get())
    doc:close()
    doc = html.parse(("<span><b><i>"):rep(n // 3) .. "y")
    assert.equal("y", doc:css("i"):text())
  end, {timeout = 60})

  it("parses a 100 MB page", function()
    local body = "<p>" .. ("words "):rep(150) .. "<b>x</b></p>\n"
    body = "<html><body>" .. body:rep(100 * 1024 * 1024 // #body) .. "<p id=last>end</p>"
    local doc = html.parse(body)
    assert.equal("end", doc:css("#last"):text())
    assert.equal(100 * 1024 * 1024 // 916, doc:xpath("count(//b)"):get())
    doc:close()
    -- past libxml2's limit of 10,000,000 nodes in a node set (parsel fails the same way)
    doc = html.parse(("<i>x</i>"):rep(6 * 1024 * 1024))
    local ok, err = pcall(doc.xpath, doc, "//node()")
    assert.is_false(ok)
    assert.matches("XPath '//node%(%)' failed", err)
    doc:close()
  end, {timeout = 120})

  it("raises on a closed document and its selections, never crashes", function()
    local doc = html.parse(PAGE)
    local ps, n = doc:xpath("//p"), doc:xpath("count(//p)")
    doc:close()
    doc:close()                -- idempotent
    for _, f in ipairs{
      function() doc:xpath("//p") end, function() doc:css("p") end,
      function() return doc.base end, function() ps:get() end, function() ps:getall() end,
      function() ps:xpath("b") end, function() ps:text() end, function() ps:attr("id") end,
      function() return ps[1] end, function() return ps.tag end, function() ps:parent() end,
      function() n:get() end,
    } do
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.matches("closed HTML document", err)
    end
    assert.equal(2, #ps)
    assert.matches("closed", tostring(ps))
    assert.matches("closed", tostring(doc))
  end)

  it("frees with <close>", function()
    local outer
    do
      local doc <close> = html.parse(PAGE)
      outer = doc
      assert.equal(2, #doc:xpath("//p"))
    end
    assert.has_error(function() outer:xpath("//p") end)
  end)

  it("raises on bad arguments", function()
    assert.has_error(function() html.parse() end)
    assert.has_error(function() html.parse({}) end)
    assert.has_error(function() html.parse("", 1 / 0 > 0 and {} or nil) end)
    assert.has_error(function() html.parse("", nil, {}) end)
  end)
end)

describe("html.parse memory", function()
  it("stays bounded over 20,000 documents never closed", function()
    -- Each tree is about 30 KB outside Lua's heap, which holds only a small userdata for it:
    -- without the tree counted as GC debt, Lua's collector ran too seldom and RSS grew by
    -- 24 MB here; with it, by under 1 MB. (ASan's quarantine keeps freed memory: there
    -- only a loose bound holds.)
    local body = ("<div class=c><p>some text <a href='/x'>link</a></p></div>\n"):rep(40)
    local asan = (os.getenv("SLUICE_BIN") or ""):find("asan") ~= nil
    collectgarbage()
    local before = rss()
    local peak_lua = 0
    for i = 1, 20000 do
      local doc = html.parse(body)
      if i % 1000 == 0 then
        assert.equal(40, #doc:css("p"))
        peak_lua = math.max(peak_lua, collectgarbage("count"))
      end
    end
    local grew = rss() - before
    assert.is_true(grew < (asan and 600 or 8) * 1024 * 1024, "RSS grew by " .. grew)
    assert.is_true(peak_lua < 64 * 1024, "Lua heap reached " .. peak_lua .. " KB")
  end, {timeout = 120})
end)

describe("html.parse on a thread of its own", function()
  local sl = require "sluice"

  -- Page i: over 1 KiB, so that a task's html.parse hands it to html_async.c's thread.
  local function page(i, items)
    local t = {"<html><head><title>page ", i, "</title></head><body>\n"}
    for k = 1, items or 30 do
      t[#t + 1] = ("<p class=x data-i=%d>item %d of <b>%d</b></p>\n"):format(k, k, i)
    end
    t[#t + 1] = "</body></html>"
    return table.concat(t)
  end

  -- The document's whole serialization, its title and its p count.
  local function summary(doc)
    return {doc:xpath("/html"):get(), doc:css("title::text"):get(), #doc:css("p")}
  end

  it("gives 200 tasks at once each its own page's tree, as a parse that cannot wait does",
     function()
    local here = {}
    for i = 1, 200 do
      assert.is_true(#page(i) >= 1024)
      -- string.gsub's callback cannot yield: the tree is built right there, on the loop
      string.gsub("x", "x", function() here[i] = summary(html.parse(page(i))) end)
    end
    local jobs = {}
    for i = 1, 200 do
      jobs[i] = function()
        local doc = html.parse(page(i), "http://example.com/" .. i)
        local out = summary(doc)
        out[4] = doc.base
        doc:close()
        return out
      end
    end
    local got = sl.gather(jobs)
    for i = 1, 200 do
      assert.same(here[i], {got[i][1], got[i][2], got[i][3]})
      assert.equals("page " .. i, got[i][2])
      assert.equals("http://example.com/" .. i, got[i][4])
    end
  end, {timeout = 60})

  it("lets the loop run while a page is parsed", function()
    local body = page(0, 100000)   -- about 5 MB: a good part of a second to parse
    local ticks, doc = 0, nil
    local ticker = sl.spawn(function()
      while doc == nil do
        ticks = ticks + 1
        sl.sleep(0.001)
      end
    end)
    doc = html.parse(body)
    assert.equals(100000, #doc:css("p"))
    assert.is_true(ticker:wait(30))
    assert.is_true(ticks > 1, "the loop stood still: " .. ticks .. " ticks")
    doc:close()
  end, {timeout = 60})

  it("says nothing on stderr about any page, on its thread as on the loop", function()
    -- libxml2 prints encoding errors unless every thread's handlers are silenced
    local H = require "spec.helpers"
    local r = H.run({"-e", [[
      local html = require "sluice.html"
      local junk = {}
      math.randomseed(7)
      for i = 1, 4000 do junk[i] = string.char(math.random(0, 255)) end
      junk = table.concat(junk)
      local bad = "<meta charset=shift_jis><p>" .. ("\x85\x83\xF8\xC0"):rep(600)
      for _, body in ipairs({junk, bad, "<meta charset=utf-16><p>" .. junk}) do
        html.parse(body):close()                                  -- in the main task
        string.gsub("x", "x", function() html.parse(body):close() end)   -- on the loop
      end
      print("ok")]]})
    assert.equals("ok\n", r.out)
    assert.equals("", r.err)
  end, {timeout = 60})

  it("delivers a cancellation after the parse, at the task's next wait", function()
    local body = page(0, 100000)
    local got, after
    local t = sl.spawn(function()
      local doc = html.parse(body)
      got = #doc:css("p")
      after = "returned"
      sl.sleep(10)
      after = "slept"
    end)
    sl.sleep(0)                    -- the task starts and waits for its tree
    t:cancel()
    assert.is_true(t:wait(30))
    assert.equals("cancelled", t:status())
    assert.equals(100000, got)
    assert.equals("returned", after)
  end, {timeout = 60})
end)

describe("html.parse element index", function()
  -- Queries starting with descendant-or-self::NAME or //NAME take that step from a list of
  -- the document's elements, and descendant steps after it become conditions on ancestors
  -- (html_doc.c, index_rewrite): the answers must be libxml2's own, which the same queries
  -- give when written so that no rewriting applies (self::node()/..., /descendant-or-self::
  -- node()/...).
  local PAGE2 = [[<html><head><title>t</title><link rel=next href=/n></head><body>
<ul class=toc><li><a href=#1>1</a><ul><li><a href=#1.1>1.1</a></li><li><a href=#1.2>1.2</a>
<ul><li><a href=#1.2.1>x</a></li></ul></li></ul></li><li class=last><a href=/2>2</a></li></ul>
<table class=t><tr><td><p>a</p><table><tr><td>in</td></tr><tr><td><p>in2</p></td></tr></table>
</td><td>b</td></tr><tr><td>c</td></tr><tr><td><span class=pre>d</span></td></tr></table>
<div class=x><p>p1 <code class=c><span class=pre>s1</span><span class=pre>s2</span></code></p>
<div><pre><span class=k>def</span> <span class=k>if</span></pre></div></div>
<p id=last><a href=http://e.com/>e</a><a href=../up>u</a><a>none</a></p></body></html>]]
  local function plain(q)
    q = q:gsub("^descendant%-or%-self::", "self::node()/descendant-or-self::")
    q = q:gsub(" | descendant%-or%-self::", " | self::node()/descendant-or-self::")
    return (q:gsub("//", "/descendant-or-self::node()/"))
  end
  local css = require "sluice.css"

  it("gives libxml2's answers to XPath", function()
    local doc = html.parse(PAGE2)
    local queries = {
      "//li/a/@href", "count(//a)", "string(//title)", "//ul//li[1]/a/text()",
      "//ul//li[last()]/a/text()", "//table//tr[position() mod 2 = 0]/td[1]//text()",
      "//table//tr[2]//p/text()", "//span[@class='pre'][1]/text()", "//span[@class='pre']/text()",
      "(//*[@id])[1]/@id", "//a[@href][following-sibling::a]/@href", "//*[@class]/@class",
      "//link[@rel='next']/@href | //link[@rel='prev']/@href", "//ul//ul//a/text()",
      "//div//span[not(@class='x')]/text()", "descendant-or-self::li[2]/a/text()",
      "descendant-or-self::li[last()]/a/text()", "descendant-or-self::*[3]", "//td[p]//text()",
      "//nothing", "count(//td[.//table])", "name(//body/*[1])", "//li[a][ul]/a/text()",
    }
    for _, q in ipairs(queries) do
      assert.same(doc:xpath(plain(q)):getall(), doc:xpath(q):getall(), q)
    end
  end)

  it("gives libxml2's answers to CSS", function()
    local doc = html.parse(PAGE2)
    local selectors = {
      "ul li:last-child > a::attr(href)", "ul ul a::text", "table td p::text",
      "table table td::text", "div.x pre span.k::text", "p > code.c span.pre::text",
      "li:nth-child(2) > a::text", "tr:nth-child(odd) > td:first-child p::text", "ul, table",
      "div :not(span)", "* li", "body > p a:not([href^='http']):not([href^='../'])::attr(href)",
      "ul li ul li a", "td:has(table) > p::text",
    }
    for _, s in ipairs(selectors) do
      assert.same(doc:xpath(plain(css.xpath(s))):getall(), doc:css(s):getall(), s)
    end
  end)

  it("answers the same from other contexts, and after the document is closed raises", function()
    local doc = html.parse(PAGE2)
    local inner = doc:css("ul ul")
    assert.same({"1.1", "1.2", "x", "x"}, inner:css("li a::text"):getall())  -- each ul's
    assert.same({"#1.1", "#1.2", "#1.2.1"}, inner[1]:xpath("descendant-or-self::a/@href"):getall())
    assert.equal(10, #inner:xpath("//li"))   -- the 5 of the document, for each
    doc:close()
    assert.has_error(function() inner:css("a") end)
  end)
end)
