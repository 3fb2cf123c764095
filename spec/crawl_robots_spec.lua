-- crawl_robots_spec.lua: robots.txt as sluice.crawl reads it (lua/sluice/crawl/robots.lua):
-- groups, longest match, `*` and `$`, Crawl-delay; and Retry-After as the crawler reads it.
local robots = require "sluice.crawl.robots"
local crawl = require "sluice.crawl"

local TOKEN = robots.token("sluice-crawl/0.1 (+http://example.test/bot)")

local function allowed(body, path, token)
  return robots.allowed(robots.parse(body, token or TOKEN), path)
end

describe("robots.txt", function()
  it("takes the product token of the user agent", function()
    assert.equals("sluice-crawl", TOKEN)
    assert.equals("mybot", robots.token("MyBot/2.0"))
  end)

  it("obeys the * group when no group names the crawler", function()
    local body = "User-agent: *\nDisallow: /private/\n"
    assert.is_false(allowed(body, "/private/x.html"))
    assert.is_true(allowed(body, "/public/x.html"))
    assert.is_true(allowed(body, "/privatex"))
  end)

  it("prefers the groups naming the crawler, merged, over *", function()
    local body = table.concat({
      "User-agent: *", "Disallow: /", "",
      "User-agent: sluice-crawl", "Disallow: /a/", "",
      "User-agent: otherbot", "User-agent: SLUICE-CRAWL", "Disallow: /b/", ""}, "\n")
    assert.is_true(allowed(body, "/c"))
    assert.is_false(allowed(body, "/a/1"))
    assert.is_false(allowed(body, "/b/1"))
  end)

  it("ignores groups for other agents", function()
    local body = "User-agent: badbot\nDisallow: /\n\nUser-agent: *\nDisallow: /x\n"
    assert.is_true(allowed(body, "/y"))
    assert.is_false(allowed(body, "/y", "badbot"))
  end)

  it("a group naming the crawler with no rules allows everything", function()
    local body = "User-agent: *\nDisallow: /\n\nUser-agent: sluice-crawl\nDisallow:\n"
    assert.is_true(allowed(body, "/anything"))
  end)

  it("uses the longest match, Allow winning a tie", function()
    local body = "User-agent: *\nDisallow: /p/\nAllow: /p/ok\nDisallow: /p/ok/no\n"
             .. "Allow: /tie\nDisallow: /tie\n"
    assert.is_false(allowed(body, "/p/x"))
    assert.is_true(allowed(body, "/p/ok.html"))
    assert.is_false(allowed(body, "/p/ok/no/1"))
    assert.is_true(allowed(body, "/tie"))
  end)

  it("understands * and $", function()
    local body = "User-agent: *\nDisallow: /*.pdf$\nDisallow: /a*/b\nDisallow: /exact$\n"
    assert.is_false(allowed(body, "/docs/x.pdf"))
    assert.is_true(allowed(body, "/docs/x.pdf?page=2"))
    assert.is_false(allowed(body, "/a123/b/c"))
    assert.is_true(allowed(body, "/a123/c"))
    assert.is_false(allowed(body, "/exact"))
    assert.is_true(allowed(body, "/exact/more"))
    -- magic characters of Lua patterns are plain in robots.txt
    assert.is_false(allowed("User-agent: *\nDisallow: /a.b(c)*%\n", "/a.b(c)x%"))
    assert.is_true(allowed("User-agent: *\nDisallow: /a.b(c)*%\n", "/axb(c)x%"))
  end)

  it("reads comments, odd case, CRLF and whitespace", function()
    local body = "# hi\r\nUSER-AGENT : * # everyone\r\n  disallow:   /x   # no\r\n"
    assert.is_false(allowed(body, "/x/1"))
    assert.is_true(allowed(body, "/y"))
  end)

  it("ignores rules before any user-agent line, and an empty file allows all", function()
    assert.is_true(allowed("Disallow: /\n", "/a"))
    assert.is_true(allowed("", "/a"))
    assert.is_true(allowed("garbage\0\255 here\n", "/a"))
  end)

  it("always allows /robots.txt itself", function()
    assert.is_true(allowed("User-agent: *\nDisallow: /\n", "/robots.txt"))
    assert.is_false(allowed("User-agent: *\nDisallow: /\n", "/"))
  end)

  it("compares percent escapes in upper case", function()
    assert.is_false(allowed("User-agent: *\nDisallow: /caf%c3%a9\n", "/caf%C3%A9/menu"))
  end)

  it("matches user-agent lines by the whole product token, not a part of it", function()
    local body = "User-agent: crawl\nAllow: /\n\nUser-agent: *\nDisallow: /private\n"
    assert.is_false(allowed(body, "/private/x"))
    assert.is_false(allowed("User-agent: sluice-crawl/2.0\nDisallow: /\n", "/x"))
  end)

  it("skips a UTF-8 byte order mark", function()
    assert.is_false(allowed("\239\187\191User-agent: *\nDisallow: /x\n", "/x"))
  end)

  it("normalizes percent-encoding in rules as in URLs", function()
    assert.is_false(allowed("User-agent: *\nDisallow: /%7Euser/\n", "/~user/x"))
    assert.is_false(allowed("User-agent: *\nDisallow: /caf\195\169\n", "/caf%C3%A9"))
  end)

  it("matches hostile patterns in linear time, without error", function()
    local stars = "User-agent: *\nDisallow: /" .. string.rep("*", 250) .. "x\n"
    assert.is_true(allowed(stars, "/" .. string.rep("a", 40)))
    assert.is_false(allowed(stars, "/" .. string.rep("a", 40) .. "x"))
    local body = "User-agent: *\nDisallow: /*a*a*a*a*a*a*a*a*b\n"
    local t0 = os.clock()
    for _ = 1, 100 do assert.is_true(allowed(body, "/" .. string.rep("a", 400))) end
    assert.is_true(os.clock() - t0 < 1)
    assert.is_false(allowed(body, "/" .. string.rep("a", 40) .. "b"))
  end)

  it("weighs rules by their length as written, stars included", function()
    -- "/a****" is longer than "/ab", so it wins though it says less
    local body = "User-agent: *\nDisallow: /ab\nAllow: /a****\nDisallow: /x$\nAllow: /x*\n"
    assert.is_true(allowed(body, "/abc"))
    assert.is_true(allowed(body, "/x"))
    assert.is_true(allowed("User-agent: *\nAllow: /p$\nDisallow: /p\n", "/p"))
    assert.is_false(allowed("User-agent: *\nAllow: /p$\nDisallow: /p\n", "/pq"))
    -- twins: the Allow wins, written before or after
    assert.is_true(allowed("User-agent: *\nDisallow: /*.x\nAllow: /*.x\n", "/a.x"))
    assert.is_true(allowed("User-agent: *\nAllow: /*.x\nDisallow: /*.x\n", "/a.x"))
    assert.equals(1, #robots.parse("User-agent: *\nDisallow: /a\nDisallow: /a\n", TOKEN).rules)
    -- but "/$" and "$/" are no twins
    assert.is_false(allowed("User-agent: *\nAllow: $/\nDisallow: /$\n", "/"))
  end)

  -- The rules' semantics spelled out the slow way: pattern position i against path
  -- position j, `*` matching any run, `$` at the end anchoring.
  local function reference(pattern, path)
    local anchored = pattern:sub(-1) == "$"
    if anchored then pattern = pattern:sub(1, -2) end
    local function m(i, j)
      if i > #pattern then return not anchored or j > #path end
      local c = pattern:sub(i, i)
      if c == "*" then
        for k = j, #path + 1 do if m(i + 1, k) then return true end end
        return false
      end
      return j <= #path and path:sub(j, j) == c and m(i + 1, j + 1)
    end
    return m(1, 1)
  end

  it("agrees with a reference matcher on random patterns and paths", function()
    local rand = 12345
    local function num(n)   -- 0 .. n-1, deterministic: the same cases every run
      rand = (rand * 1103515245 + 12345) % 2147483648
      return (rand >> 8) % n
    end
    local function pick(chars)
      local i = num(#chars) + 1
      return chars:sub(i, i)
    end
    local function word(chars, max)
      local t = {}
      for i = 1, num(max + 1) do t[i] = pick(chars) end
      return table.concat(t)
    end
    for _ = 1, 3000 do
      local pattern, path = "/" .. word("ab/**$", 7), "/" .. word("ab/$*", 9)
      assert.equals(reference(pattern, path), robots.match(pattern, path),
                    pattern .. " against " .. path)
      -- and the precedence of allowed over a few rules
      local lines, best = {"User-agent: *"}, nil
      for _ = 1, 4 do
        -- (a pattern may not start with "/": "$/" and "/$" are two rules)
        local p, allow = (num(8) == 0 and "" or "/") .. word("ab/**$", 4), pick("ad") == "a"
        lines[#lines + 1] = (allow and "Allow: " or "Disallow: ") .. p
        if p ~= "" and reference(p, path)   -- ("Disallow:" alone is no rule)
           and (not best or #p > best[1] or (#p == best[1] and allow)) then
          best = {#p, allow}
        end
      end
      local want = path == "/robots.txt" or not best or best[2]
      assert.equals(want, robots.allowed(robots.parse(table.concat(lines, "\n"), TOKEN), path),
                    table.concat(lines, " | ") .. " for " .. path)
    end
  end)

  it("reads at most MAX_BODY bytes, and only whole lines", function()
    local head = "User-agent: *\nDisallow: /a\n"
    local pad = ("#"):rep(robots.MAX_BODY - #head - 8) .. "\n"
    -- the last line is cut in the middle: it is dropped, not read as "Disallow: /"
    local r = robots.parse(head .. pad .. "Disallow: /bcdefgh\nDisallow: /c\n", TOKEN)
    assert.is_false(robots.allowed(r, "/a"))
    assert.is_true(robots.allowed(r, "/b"))
    assert.is_true(robots.allowed(r, "/c"))
  end)

  it("does not match paths longer than MAX_PATH, and drops rules only those could match", function()
    local long = "/" .. ("x"):rep(robots.MAX_PATH)
    local r = robots.parse("User-agent: *\nDisallow: /private\n", TOKEN)
    assert.same({false, "path too long"}, {robots.allowed(r, long)})
    assert.is_true(robots.allowed(r, long:sub(1, robots.MAX_PATH)))
    assert.is_true(robots.allowed(robots.allow_all, long))
    r = robots.parse("User-agent: *\nDisallow: /*" .. ("x"):rep(robots.MAX_PATH) .. "\n", TOKEN)
    assert.equals(0, #r.rules)
  end)

  it("gives up on a path whose matching costs more than the budget", function()
    local r = robots.parse("User-agent: *\nDisallow: /*ab\nDisallow: /*ac\n", TOKEN)
    local path = "/" .. ("a"):rep(5000)
    assert.same({false, "too costly to match"}, {robots.allowed(r, path, 1000)})
    assert.is_true(robots.allowed(r, path))
    assert.is_false(robots.allowed(r, path .. "c", 1000000))
  end)

  it("reads Crawl-delay of the group that applies, and sitemaps", function()
    local r = robots.parse("User-agent: *\nCrawl-delay: 2\n\nUser-agent: sluice-crawl\n"
                           .. "Crawl-delay: 0.25\nSitemap: http://h/s.xml\n", TOKEN)
    assert.equals(0.25, r.delay)
    assert.same({"http://h/s.xml"}, r.sitemaps)
    assert.equals(2, robots.parse("User-agent: *\nCrawl-delay: 2\n", TOKEN).delay)
    assert.is_nil(robots.parse("User-agent: *\nCrawl-delay: soon\n", TOKEN).delay)
    assert.is_nil(robots.parse("User-agent: *\nCrawl-delay: 1e999\n", TOKEN).delay)
  end)
end)

describe("Retry-After", function()
  it("reads seconds and HTTP dates", function()
    assert.equals(120, crawl.retry_after("120"))
    assert.equals(0, crawl.retry_after("Sun, 06 Nov 1994 08:49:37 GMT"))
    local future = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 100)
    local wait = crawl.retry_after(future)
    assert.is_true(wait >= 98 and wait <= 101, "got " .. tostring(wait))
    assert.is_nil(crawl.retry_after("soon"))
    -- the two obsolete forms of RFC 9110, in the past and in the future
    assert.equals(0, crawl.retry_after("Sunday, 06-Nov-94 08:49:37 GMT"))
    assert.equals(0, crawl.retry_after("Sun Nov  6 08:49:37 1994"))
    local asctime = os.date("!%a %b %d %H:%M:%S %Y", os.time() + 100)
    wait = crawl.retry_after(asctime)
    assert.is_true(wait >= 98 and wait <= 101, "got " .. tostring(wait))
    assert.is_nil(crawl.retry_after(nil))
  end)
end)
