-- testsite.lua: a deterministic synthetic website on loopback for the crawler's specs, `make
-- demo` and the crawl benchmarks: one HTTP server per host, whose pages, links and faults are
-- computed on each request from (host, page, seed), so a million-page site takes no memory.
--[[ usage: sluice scripts/testsite.lua [--hosts N] [--pages N] [--seed N] [--port P] [--plain]
                                      [--crawl-delay S] [--seeds-file FILE] [--catalogue N]
                                      [--export DIR]

  --hosts N        servers, one per host (default 3), on 127.0.0.1
  --pages N        pages per host (default 1000): "/" is page 0, "/p/N.html" page N
  --seed N         the site's seed (default 1): the same seed gives the same site
  --port P         port of the first host, the others follow (default 0: free ports)
  --plain          only plain pages and links: no faults, no robots rules (for benchmarks)
  --crawl-delay S  the first host's robots.txt asks for this Crawl-delay
  --seeds-file F   also write the seed URLs to F (through a temporary name and a rename)
  --catalogue N    a shop on every host (default 0: none): N product pages
                   /catalogue/product/1.html ... with structured data, and their listing in
                   pages of 20, /catalogue/page/1.html ..., linked from the home page
  --export DIR     write the first host's catalogue into DIR as static files (DIR/catalogue/
                   page/K.html, DIR/catalogue/product/N.html) and exit, without serving

Prints the seed URLs (each host's "/") on stdout, one a line, a description on stderr, and
serves until Ctrl-C or SIGTERM. As a module (any other main script, or a spec):

  local testsite = dofile("scripts/testsite.lua")
  local site = testsite.start{hosts = 2, pages = 300}   -- inside a task
  ... site.seeds, site:expected(), site:stats() ...
  site:close()

With a catalogue, M.product(site, h, id) gives product id's fields as its page shows them
(name, price, stock, tags, rating, sku, category, ...).

site:expected() maps the normalized URL (lower-case scheme, no fragment, no empty query, dot
segments removed, escapes of unreserved characters decoded) of everything a correct crawler
records, once each, to the status it ends with. Such a crawler follows <a>, <area> and <link>
hrefs (read against <base href>) and 3xx Locations to 127.0.0.1 on any port, obeys robots.txt
(the `*` group), and retries 5xx and 429 answers at least 3 times. Statuses: 200 (pages, the
slow, flaky, 429 and 503 pages once retried, files, the stylesheet), 301 or 302 (the redirect
itself), 404, 500 (/fail.html, which always fails) and "error" (site.dead, where nothing
listens). robots.txt is fetched, not recorded: it is not listed.
]]
local sl = require "sluice"
local http = require "sluice.http"
local tcp = require "sluice.tcp"

local M = {}

---------------------------------------------------------------------------------------------
-- Hashing: every choice the site makes is hash(seed, a, b, salt) reduced modulo something, so
-- it is a pure function of those numbers and nothing has to be stored per page.

-- splitmix64's finaliser; Lua's integers wrap around, and >> is a logical shift.
local function mix(x)
  x = (x ~ (x >> 30)) * 0xbf58476d1ce4e5b9
  x = (x ~ (x >> 27)) * 0x94d049bb133111eb
  return x ~ (x >> 31)
end

local function hash(seed, a, b, salt)
  return mix(mix(mix(seed * 0x9e3779b97f4a7c15 + a) + b) + salt)
end

-- Salts, one per kind of choice.
local S_LINK, S_FORM, S_BASE, S_TEXT, S_ANCHOR, S_TARGET, S_EXTRA, S_FLINK = 1, 2, 3, 4, 5, 6, 7, 8
local S_PRODUCT, S_RELATED = 9, 10

---------------------------------------------------------------------------------------------
-- URLs

local function page_path(n)
  return n == 0 and "/" or "/p/" .. n .. ".html"
end
M.page_path = page_path

local function decode_unreserved(hex)
  local c = string.char(tonumber(hex, 16))
  if c:find("^[%w%-%._~]$") then return c end
  return "%" .. hex:upper()
end

--- A request path as a server reads it (RFC 3986 6.2.2): escapes of unreserved characters
-- decoded, dot segments removed.
function M.normalize_path(path)
  if path:find("%", 1, true) then path = path:gsub("%%(%x%x)", decode_unreserved) end
  if not path:find("/%.") then return path end
  local segs, n, dir = {}, 0, false
  for seg in (path:sub(2) .. "/"):gmatch("([^/]*)/") do
    dir = seg == "." or seg == ".."
    if seg == ".." then
      if n > 0 then segs[n] = nil; n = n - 1 end
    elseif seg ~= "." then
      n = n + 1; segs[n] = seg
    end
  end
  return "/" .. table.concat(segs, "/") .. (dir and n > 0 and "/" or "")
end

-- The relative reference from directory `dir` (ending in "/") to the absolute path `path`.
local function rel_path(dir, path)
  local j = 0
  for k = 1, math.min(#dir, #path) do
    local c = dir:byte(k)
    if c ~= path:byte(k) then break end
    if c == 47 then j = k end
  end
  local _, up = dir:sub(j + 1):gsub("/", "")
  local s = ("../"):rep(up) .. path:sub(j + 1)
  return s == "" and "./" or s
end

-- The ways a link is written. "abs" http://h:p/x, "ABS" HTTP://h:p/x, "net" //h:p/x, "root"
-- /x, "rel" relative to the base, "dotrel" ./rel, "dots" /d3/../x or /./x, "pct" digits and
-- the dot of ".html" percent-encoded. A form that needs the base's origin falls back to abs.
local PLAIN_FORMS = {"abs", "root", "rel", "dotrel"}
local FULL_FORMS = {"abs", "ABS", "net", "root", "rel", "dotrel", "dots", "pct"}

-- Writes the link to (origin index o, path, query) from a document whose base URL has origin
-- index bo and directory bdir, in the form and decoration hash r picks.
local function write_href(site, r, o, path, query, bo, bdir)
  local forms = site.plain and PLAIN_FORMS or FULL_FORMS
  local form = forms[r % #forms + 1]
  local same, origin, p = o == bo, site.origins[o], path
  if form == "dots" then
    p = (r >> 8) % 2 == 0 and "/d" .. (r >> 9) % 10 .. "/.." .. path or "/." .. path
    form = "root"
  elseif form == "pct" then
    p = path:gsub("%d", function(d) return ("%%%02X"):format(d:byte()) end)
            :gsub("%.html$", (r >> 8) % 2 == 0 and "%%2Ehtml" or "%%2ehtml")
    form = "root"
  end
  if not same and (form == "root" or form == "rel" or form == "dotrel") then form = "abs" end
  local s
  if form == "abs" then s = origin .. p
  elseif form == "ABS" then s = "HTTP" .. origin:sub(5) .. p
  elseif form == "net" then s = origin:sub(6) .. p
  elseif form == "root" then s = p
  else
    s = rel_path(bdir, p)
    if form == "dotrel" and s ~= "./" then s = "./" .. s end
  end
  if query then s = s .. "?" .. query end
  if not site.plain then
    local deco = (r >> 12) % 8      -- a fragment, an empty fragment, an empty query, or none
    if deco == 0 then s = s .. "#sec" .. (r >> 16) % 5
    elseif deco == 1 then s = s .. "#"
    elseif deco == 2 and not query then s = s .. "?" end
  end
  return s
end

---------------------------------------------------------------------------------------------
-- robots.txt: one rule list, rendered as the file and used by expected()'s own matcher.

local RULES = {
  {"Disallow", "/private/"}, {"Allow", "/private/open/"}, {"Disallow", "/old$"},
  {"Disallow", "/*?sort="},
}

local function robots_txt(site, h)
  local out = {("# robots.txt of the sluice test site: host %d of %d, seed %d\n"):format(
    h, site.nhosts, site.seed)}
  if not site.plain then out[#out + 1] = "User-agent: badbot\nDisallow: /\n\n" end
  out[#out + 1] = "User-agent: *\n"
  if site.plain then out[#out + 1] = "Disallow:\n" end
  for _, r in ipairs(site.plain and {} or RULES) do out[#out + 1] = r[1] .. ": " .. r[2] .. "\n" end
  if h == 1 and site.crawl_delay then out[#out + 1] = "Crawl-delay: " .. site.crawl_delay .. "\n" end
  return table.concat(out)
end

-- Whether RFC 9309 lets any user agent but badbot fetch `pq` (a normalized path and query):
-- the longest matching rule wins, Allow on a tie; "*" is any run, a final "$" the end.
local function robots_allows(site, pq)
  if site.plain then return true end
  local best, allow = -1, true
  for _, r in ipairs(RULES) do
    local v = r[2]
    local anchored = v:sub(-1) == "$"
    local pat = (anchored and v:sub(1, -2) or v):gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0")
    pat = "^" .. pat:gsub("%*", ".-") .. (anchored and "$" or "")
    if pq:find(pat) and (#v > best or #v == best and r[1] == "Allow") then
      best, allow = #v, r[1] == "Allow"
    end
  end
  return allow
end

---------------------------------------------------------------------------------------------
-- Each host's features (full mode): routes (path -> what it answers) and the links to them,
-- each placed on a page the hash picks. Pages themselves are never in the routes.

local CSS = "body { font-family: sans-serif; max-width: 40em; margin: auto }\n"
local OK = 200

local function build_host(site, h)
  local host = site.hosts_[h]
  local routes, anchored, seed, P = {}, {}, site.seed, site.pages
  host.routes, host.anchored = routes, anchored
  if site.plain then return end
  local nlinks, nroutes = 0, 0
  local function link(tag, o, path, query)
    nlinks = nlinks + 1
    local a = hash(seed, h, nlinks, S_ANCHOR) % P
    anchored[a] = anchored[a] or {}
    table.insert(anchored[a], {tag = tag, o = o, path = path, query = query})
  end
  local function route(path, r, tag)
    nroutes = nroutes + 1
    r.path, r.id = path, nroutes
    routes[path] = r
    if tag then link(tag, h, path) end
  end
  local function pg(k) return page_path(hash(seed, h, k, S_TARGET) % P) end
  -- A redirect to (o, target) whose Location is written "abs"olute, "root"-relative or "rel"ative.
  local function redirect(path, status, o, target, form)
    local loc = form == "abs" and site.origins[o] .. target
             or form == "rel" and "../" .. target:sub(2) or target
    route(path, {kind = "redirect", status = status, location = loc, o = o, target = target}, "a")
  end
  routes["/style.css"] = {kind = "file", ctype = "text/css", body = CSS}
  for i = 1, 2 do
    route("/slow/" .. i .. ".html", {kind = "html", delay = 0.2 + 0.1 * (hash(seed, h, i, S_EXTRA) % 4)}, "a")
    route("/flaky/" .. i .. ".html", {kind = "html", fails = i, fail_status = 500}, "a")
  end
  route("/busy/1.html", {kind = "html", fails = 1, fail_status = 429, retry_after = "1"}, "a")
  route("/moved/1.html", {kind = "html"})               -- reached only through /r/1's Location
  redirect("/r/1", 301, h, "/moved/1.html", "root")
  redirect("/r/2", 301, h, pg(2), "abs")
  redirect("/r/3", 301, h, pg(3), "rel")                 -- "../p/N.html"
  local bin = {}
  for i = 1, 1024 do bin[i] = string.char(hash(seed, h, i, S_EXTRA) % 256) end
  route("/files/1.bin", {kind = "file", ctype = "application/octet-stream", body = table.concat(bin)}, "a")
  route("/files/2.txt", {kind = "file", ctype = "text/plain; charset=utf-8",
    body = 'Not HTML: a crawler must not follow <a href="/trap/text.html">this</a>.\n'}, "a")
  link("a", h, "/missing/1.html")
  link("a", h, "/missing/2.html")
  link("a", h, page_path(P))                             -- one past the last page
  route("/private/open/1.html", {kind = "html"}, "a")    -- allowed inside /private/
  route("/private/1.html", {kind = "html"}, "a")         -- disallowed (served all the same)
  route("/private/2.html", {kind = "html"}, "a")
  route("/old", {kind = "html"}, "a")                    -- disallowed by "/old$"
  route("/old/1.html", {kind = "html", base = "/p/"}, "a")  -- allowed; relative to its <base>
  link("a", h, pg(4), "sort=date")                       -- disallowed by "/*?sort="
  link("a", h, pg(5), "a=1&b=2")                         -- written with &amp;
  route("/area/1.html", {kind = "html"}, "area")         -- linked only by an <area>
  if h == 1 then
    route("/unavailable.html", {kind = "html", fails = 1, fail_status = 503, retry_after = "date"}, "a")
    route("/fail.html", {kind = "html", fails = math.huge, fail_status = 500}, "a")
    redirect("/r/4", 302, site.nhosts > 1 and 2 or 1, pg(6), "abs")
    link("a", site.nhosts + 1, "/")                      -- the closed port: connection refused
  end
end

local catalogue_route, catalogue_doc    -- the catalogue's section, below the pages'

-- What (host h, normalized path) is: a page number, or nil and its route (nil: a 404).
local function lookup(site, h, path)
  if path == "/" then return 0 end
  local n = path:match("^/p/([1-9]%d?%d?%d?%d?%d?%d?%d?%d?)%.html$")
  n = n and tonumber(n)
  if n then return n < site.pages and n or nil end
  if site.catalogue > 0 and path:find("^/catalogue/") then return nil, catalogue_route(site, path) end
  return nil, site.hosts_[h].routes[path]
end

---------------------------------------------------------------------------------------------
-- Documents: the links of a page or of a feature's HTML page, as {tag, href, o, path, query,
-- url}. The same list writes the HTML and feeds expected(), so the two cannot drift.

local function add(site, links, tag, r, o, path, query, bo, bdir)
  links[#links + 1] = {tag = tag, o = o, path = path, query = query,
    href = write_href(site, r, o, path, query, bo, bdir),
    url = site.origins[o] .. path .. (query and "?" .. query or "")}
end

-- Returns base href (or nil) and the links of the document at (h, path, query): page n, or
-- the feature `route`.
local function doc_links(site, h, path, query, n, route)
  if route and route.cat then return nil, (catalogue_doc(site, h, route, false)) end
  local seed, P, H = site.seed, site.pages, site.nhosts
  local links, base, bo, bdir = {}, nil, h, path:match("^(.*/)")
  local id = n or -route.id                 -- features hash on negative ids
  local function r(k) return hash(seed, h, id * 64 + k, S_FORM) end
  if route and route.base then
    base, bdir = route.base, route.base
  elseif n and n > 0 and not site.plain and hash(seed, h, n, S_BASE) % 20 == 0 then
    local v = hash(seed, h, n, S_BASE) >> 8
    bdir = v % 2 == 0 and "/p/sub/" or "/p/a/b/"
    bo = (v >> 1) % 3 == 2 and H > 1 and h % H + 1 or h
    base = ((v >> 1) % 3 == 0 and bo == h) and bdir or site.origins[bo] .. bdir
  end
  if not site.plain then add(site, links, "link", r(0), h, "/style.css", nil, bo, bdir) end
  if route then
    add(site, links, "a", r(1), h, "/", nil, bo, bdir)
    for k = 2, 3 do
      add(site, links, "a", r(k), h, page_path(hash(seed, h, route.id * 8 + k, S_FLINK) % P), nil, bo, bdir)
    end
    return base, links
  end
  for k, c in ipairs{2 * n + 1, 2 * n + 2, n + 1} do
    if c < P then add(site, links, "a", r(k), h, page_path(c), nil, bo, bdir) end
  end
  if n > 0 then add(site, links, "a", r(4), h, page_path((n - 1) // 2), nil, bo, bdir) end
  for k = 5, 6 do
    add(site, links, "a", r(k), h, page_path(hash(seed, h, n * 8 + k, S_LINK) % P), nil, bo, bdir)
  end
  if H > 1 then
    local x = hash(seed, h, n, S_LINK)
    local o = (h + (x >> 1) % (H - 1)) % H + 1
    add(site, links, "a", r(7), o, page_path((x >> 20) % P), nil, bo, bdir)
  end
  if n == 0 and site.catalogue > 0 then   -- the catalogue's entry, written as shops do
    local p = "/catalogue/page/1.html"
    links[#links + 1] = {tag = "a", href = p, o = h, path = p, url = site.origins[h] .. p}
  end
  if site.plain then return base, links end
  local extra = hash(seed, h, n, S_EXTRA)
  if not base then      -- "#top" resolves against the base: only where it is the page itself
    links[#links + 1] = {tag = "a", href = "#top", o = h, path = path, query = query,
      url = site.origins[h] .. path .. (query and "?" .. query or "")}
  end
  if extra % 8 == 0 then
    add(site, links, "area", r(8), h, page_path((extra >> 3) % P), nil, bo, bdir)
  end
  for i, f in ipairs(site.hosts_[h].anchored[n] or {}) do
    add(site, links, f.tag, r(8 + i), f.o, f.path, f.query, bo, bdir)
  end
  if (extra >> 23) % 4 == 0 then
    links[#links + 1] = {tag = "a", href = "mailto:webmaster@example.com"}
    links[#links + 1] = {tag = "a", href = "javascript:void(0)"}
  end
  if (extra >> 25) % 10 == 0 then
    links[#links + 1] = {tag = "comment", href = "/trap/comment.html"}
  end
  return base, links
end

local WORDS = {}
for w in ([[the a of river sluice gate water flow lock canal boat mill stone bridge bank field
  meadow north south early late quiet loud old new small large keeper towpath barge rope weir
  current basin harbour reed willow heron evening morning crawler link page tide sand mud
  lantern engine wheel paddle sign village market road]]):gmatch("%a+") do WORDS[#WORDS + 1] = w end

-- The site's paragraphs (24 of 25 to 75 words each); pages pick from them.
local function paragraphs(seed)
  local paras = {}
  for i = 1, 24 do
    local words = {}
    for k = 1, 25 + hash(seed, i, 0, S_TEXT) % 51 do
      local w = WORDS[hash(seed, i, k, S_TEXT) % #WORDS + 1]
      if k % 17 == 0 then w = "<em>" .. w .. "</em>" elseif k % 23 == 0 then w = w .. " &amp;" end
      words[k] = w
    end
    words[1] = words[1]:gsub("^%l", string.upper)
    paras[i] = "<p>" .. table.concat(words, " ") .. ".</p>\n"
  end
  return paras
end

local function esc(s) return (s:gsub("&", "&amp;"):gsub('"', "&quot;")) end

-- The HTML of the document at (h, path, query): page n or the feature `route`.
local function render(site, h, path, query, n, route)
  if route and route.cat then return (select(2, catalogue_doc(site, h, route, true))) end
  local base, links = doc_links(site, h, path, query, n, route)
  local title = n and ("Page %d of host %d"):format(n, h) or route.path
  local x = hash(site.seed, h, n or -route.id, S_TEXT)
  local out = {'<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'}
  if base then out[#out + 1] = '<base href="' .. esc(base) .. '">\n' end
  out[#out + 1] = "<title>" .. title .. " - sluice test site</title>\n"
  local body = {"</head>\n<body>\n<h1>" .. title .. '</h1><a name="top"></a>\n'}
  for k = 0, x % 3 do body[#body + 1] = site.paras[(x >> (5 * k + 2)) % #site.paras + 1] end
  body[#body + 1] = "<ul>\n"
  for i, l in ipairs(links) do
    local href = esc(l.href)
    if l.tag == "link" then
      out[#out + 1] = '<link rel="stylesheet" href="' .. href .. '">\n'
    elseif l.tag == "area" then
      body[#body + 1] = '<li><map name="m' .. i .. '"><area shape="rect" coords="0,0,9,9" href="' ..
        href .. '" alt="area"></map></li>\n'
    elseif l.tag == "comment" then
      body[#body + 1] = '<!-- <a href="' .. href .. '">not a link</a> -->\n'
    elseif i % 5 == 0 then
      body[#body + 1] = "<li><A HREF='" .. href .. "'>link " .. i .. "</A></li>\n"
    else
      body[#body + 1] = '<li><a class="l" href="' .. href .. '">link ' .. i .. "</a></li>\n"
    end
  end
  body[#body + 1] = "</ul>\n</body></html>\n"
  return table.concat(out) .. table.concat(body)
end

---------------------------------------------------------------------------------------------
-- The catalogue (opts.catalogue > 0): a shop's product pages and their paginated listing,
-- for scraping. Every product is hash(seed, host, id): a name, a price, a stock level, tags,
-- a rating, a specification table, a description and related products, written the way
-- shops write them (classes, schema.org itemprop attributes, a JSON-LD block). The home
-- page links /catalogue/page/1.html; each listing page links its products and the next and
-- previous pages (rel=next, a.next). Its links are root-relative or relative, so the
-- documents do not depend on the port (scripts/bench exports them to files for nginx).

M.CATALOGUE_PER_PAGE = 20

local ADJ = {"Copper", "Oak", "Willow", "Harbour", "Canal", "Riverside", "Stone", "Brass",
  "Linen", "Slate", "Heron", "Tidal", "Keeper's", "Meadow", "Northern", "Quiet"}
local NOUN = {"Lantern", "Rope", "Paddle", "Gate Valve", "Lock Key", "Boat Hook", "Mooring Line",
  "Tide Clock", "Barometer", "Windlass", "Fender", "Bilge Pump", "Compass", "Oar", "Anchor",
  "Chart Case", "Rope & Fender Kit"}
local CATEGORY = {"Deck", "Navigation", "Lighting", "Mooring", "Tools", "Gifts"}
local TAGS = {"brass", "outdoor", "marine", "gift", "heavy-duty", "handmade", "sale", "new",
  "classic", "compact"}
local MATERIAL = {"brass", "oak", "steel", "hemp", "copper", "linen"}

--- Product `id` (1 to catalogue) of host h: a table of its fields, as the pages show them.
function M.product(site, h, id)
  local x, y = hash(site.seed, h, id, S_PRODUCT), hash(site.seed, h, id, S_PRODUCT + 100)
  local p = {id = id, sku = ("SL-%d-%05d"):format(h, id),
    name = ADJ[x % #ADJ + 1] .. " " .. NOUN[(x >> 4) % #NOUN + 1] .. " Mk " .. (x >> 9) % 9 + 1,
    price = ("%d.%02d"):format(1 + (x >> 13) % 480, (x >> 22) % 100),
    rating = 1 + (x >> 29) % 5, category = CATEGORY[(x >> 32) % #CATEGORY + 1],
    material = MATERIAL[(x >> 35) % #MATERIAL + 1],
    weight = ("%d.%02d kg"):format((y >> 3) % 20, (y >> 8) % 100),
    size = ("%d × %d × %d cm"):format(5 + (y >> 15) % 60, 5 + (y >> 21) % 40, 2 + (y >> 27) % 20)}
  p.stock = (x >> 38) % 5 == 0 and 0 or 1 + (x >> 41) % 40
  p.tags = {}
  for k = 1, 1 + (y >> 32) % 4 do
    local t = TAGS[(y >> (34 + 3 * k)) % #TAGS + 1]
    if not p.tags[t] then p.tags[t] = true; p.tags[#p.tags + 1] = t end
  end
  for k = #p.tags, 1, -1 do p.tags[p.tags[k]] = nil end
  return p
end

-- The route of a catalogue path (nil: a 404). Made on each request: nothing is stored.
function catalogue_route(site, path)
  local kind, k = path:match("^/catalogue/(%l+)/([1-9]%d?%d?%d?%d?%d?%d?%d?%d?)%.html$")
  k = k and tonumber(k)
  if kind == "page" and k <= (site.catalogue - 1) // M.CATALOGUE_PER_PAGE + 1
     or kind == "product" and k <= site.catalogue then
    return {kind = "html", cat = kind, num = k, path = path}
  end
end

local function html_esc(s) return (s:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub('"', "&quot;")) end
local function json_str(s) return '"' .. s:gsub('[\\"]', "\\%0") .. '"' end

-- The links of catalogue document `route` of host h, in document order (as doc_links
-- gives them), and with `html` its HTML too: both come from one pass, so they agree.
function catalogue_doc(site, h, route, html)
  local links, out, origin = {}, {}, site.origins[h]
  local function w(s) if html then out[#out + 1] = s end end
  local function link(href, path)       -- writes href, records the link to `path`
    links[#links + 1] = {tag = href:sub(1, 5) == "<link" and "link" or "a", o = h, path = path,
      href = href:match('href="([^"]*)"'), url = origin .. path}
    w(href)
  end
  local per, pages = M.CATALOGUE_PER_PAGE, (site.catalogue - 1) // M.CATALOGUE_PER_PAGE + 1
  local function page_of(id) return "/catalogue/page/" .. (id - 1) // per + 1 .. ".html" end
  local function price(p) return "€" .. p.price end
  local function stock(p)         -- its class and its text
    if p.stock > 0 then return "in-stock", "In stock (" .. p.stock .. " available)" end
    return "out-of-stock", "Out of stock"
  end
  w('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n')
  if route.cat == "page" then
    local k = route.num
    w("<title>Catalogue, page " .. k .. " of " .. pages .. " - sluice test site</title>\n")
    if k > 1 then link('<link rel="prev" href="' .. (k - 1) .. '.html">\n', "/catalogue/page/" .. k - 1 .. ".html") end
    if k < pages then link('<link rel="next" href="' .. (k + 1) .. '.html">\n', "/catalogue/page/" .. k + 1 .. ".html") end
    w('</head>\n<body>\n<nav class="breadcrumb"><ol><li>')
    link('<a href="/">Home</a>', "/")
    w('</li><li class="active">Catalogue</li></ol></nav>\n<main>\n<h1>Catalogue</h1>\n' ..
      '<p class="count"><strong>' .. site.catalogue .. "</strong> products, page " .. k ..
      " of " .. pages .. '</p>\n<ol class="products">\n')
    for id = (k - 1) * per + 1, math.min(k * per, site.catalogue) do
      local p = M.product(site, h, id)
      local cls, text = stock(p)
      w('<li class="product" data-id="' .. id .. '"><article class="product-card">\n<h3>')
      link('<a href="../product/' .. id .. '.html" title="' .. html_esc(p.name) .. '">', "/catalogue/product/" .. id .. ".html")
      w(html_esc(p.name) .. '</a></h3>\n<p class="price">' .. price(p) .. '</p> <p class="stock ' ..
        cls .. '">' .. text .. "</p>\n</article></li>\n")
    end
    w('</ol>\n<ul class="pager">\n')
    if k > 1 then
      w('<li class="previous">')
      link('<a rel="prev" class="prev" href="' .. (k - 1) .. '.html">', "/catalogue/page/" .. k - 1 .. ".html")
      w("previous</a></li>\n")
    end
    w('<li class="current">Page ' .. k .. " of " .. pages .. "</li>\n")
    if k < pages then
      w('<li class="next">')
      link('<a rel="next" class="next" href="' .. (k + 1) .. '.html">', "/catalogue/page/" .. k + 1 .. ".html")
      w("next</a></li>\n")
    end
    w("</ul>\n</main>\n</body></html>\n")
    return links, html and table.concat(out)
  end
  local p = M.product(site, h, route.num)
  local cls, text = stock(p)
  local x = hash(site.seed, h, p.id, S_TEXT)
  local desc = {}
  for k = 0, 1 + x % 3 do desc[#desc + 1] = site.paras[(x >> (5 * k + 2)) % #site.paras + 1] end
  local name = html_esc(p.name)
  w("<title>" .. name .. " | Catalogue - sluice test site</title>\n" ..
    '<meta name="description" content="' .. name .. ", " .. p.category:lower() .. ", €" .. p.price .. '">\n' ..
    '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Product", ' ..
    '"name": ' .. json_str(p.name) .. ', "sku": "' .. p.sku .. '", "category": "' .. p.category ..
    '", "offers": {"@type": "Offer", "price": "' .. p.price .. '", "priceCurrency": "EUR", ' ..
    '"availability": "https://schema.org/' .. (p.stock > 0 and "InStock" or "OutOfStock") ..
    '"}}</script>\n</head>\n<body>\n<nav class="breadcrumb"><ol><li>')
  link('<a href="/">Home</a>', "/")
  w("</li><li>")
  link('<a href="' .. page_of(p.id) .. '">Catalogue</a>', page_of(p.id))
  w('</li><li class="active">' .. name .. "</li></ol></nav>\n" ..
    '<article class="product" id="product-' .. p.id .. '" itemscope itemtype="https://schema.org/Product">\n' ..
    '<h1 class="name" itemprop="name">' .. name .. "</h1>\n" ..
    '<div class="offer" itemprop="offers" itemscope itemtype="https://schema.org/Offer">\n' ..
    '<p class="price"><meta itemprop="priceCurrency" content="EUR"><span itemprop="price" content="' ..
    p.price .. '">' .. price(p) .. "</span></p>\n" ..
    '<p class="stock ' .. cls .. '" data-count="' .. p.stock .. '"><meta itemprop="availability" content="https://schema.org/' ..
    (p.stock > 0 and "InStock" or "OutOfStock") .. '">' .. text .. "</p>\n</div>\n" ..
    '<p class="rating star-' .. p.rating .. '" data-rating="' .. p.rating .. '">Rated ' .. p.rating ..
    " out of 5</p>\n<ul class=\"tags\">")
  for _, t in ipairs(p.tags) do w('<li class="tag">' .. t .. "</li>") end
  w('</ul>\n<div class="description" itemprop="description">\n' .. table.concat(desc) .. "</div>\n" ..
    '<table class="specs">\n<caption>Specifications</caption>\n<tbody>\n' ..
    '<tr><th scope="row">SKU</th><td itemprop="sku">' .. p.sku .. "</td></tr>\n" ..
    '<tr><th scope="row">Category</th><td itemprop="category">' .. p.category .. "</td></tr>\n" ..
    '<tr><th scope="row">Material</th><td>' .. p.material .. "</td></tr>\n" ..
    '<tr><th scope="row">Weight</th><td>' .. p.weight .. "</td></tr>\n" ..
    '<tr><th scope="row">Dimensions</th><td>' .. p.size .. "</td></tr>\n</tbody>\n</table>\n" ..
    '<section class="related">\n<h2>Related products</h2>\n<ul>\n')
  for k = 1, 3 do
    local id = hash(site.seed, h, p.id * 4 + k, S_RELATED) % site.catalogue + 1
    w("<li>")
    link('<a href="/catalogue/product/' .. id .. '.html">', "/catalogue/product/" .. id .. ".html")
    w(html_esc(M.product(site, h, id).name) .. "</a></li>\n")
  end
  w("</ul>\n</section>\n</article>\n<footer><p>")
  link('<a href="' .. page_of(p.id) .. '">Back to the catalogue</a>', page_of(p.id))
  w("</p></footer>\n</body></html>\n")
  return links, html and table.concat(out)
end

---------------------------------------------------------------------------------------------
-- Serving

local HTML = {["Content-Type"] = "text/html; charset=utf-8"}
local TEXT = {["Content-Type"] = "text/plain; charset=utf-8"}
local NOT_FOUND = "<!DOCTYPE html>\n<html><head><title>Not found</title></head><body>" ..
  "<h1>404 Not found</h1></body></html>\n"

-- Answers a request for (h, normalized path, raw query); `key` is its normalized URL.
local function serve(site, h, path, query, key)
  local n, route = lookup(site, h, path)
  local q = query ~= "" and query or nil
  if n then return OK, HTML, render(site, h, path, q, n) end
  if not route then return 404, HTML, NOT_FOUND end
  if route.delay then sl.sleep(route.delay) end
  if route.fails then
    local count = (site.hits[key] or 0) + 1
    site.hits[key] = count
    if count <= route.fails then
      local after = route.retry_after == "date"
        and os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2) or route.retry_after
      return route.fail_status, {["Content-Type"] = TEXT["Content-Type"], ["Retry-After"] = after},
        "try again later\n"
    end
  end
  if route.kind == "redirect" then
    return route.status, {["Content-Type"] = TEXT["Content-Type"], Location = route.location}, "moved\n"
  elseif route.kind == "file" then
    return OK, {["Content-Type"] = route.ctype}, route.body
  end
  return OK, HTML, render(site, h, path, q, nil, route)
end

local function handler(site, h)
  local host = site.hosts_[h]
  local done = setmetatable({}, {__close = function() host.inflight = host.inflight - 1 end})
  return function(req)
    site.requests = site.requests + 1
    host.inflight = host.inflight + 1
    if host.inflight > host.max_inflight then host.max_inflight = host.inflight end
    local _ <close> = done
    local path = req.path
    if path:find("%", 1, true) or path:find("/.", 1, true) then path = M.normalize_path(path) end
    if path == "/robots.txt" then
      host.robots = host.robots + 1
      return OK, TEXT, host.robots_txt
    end
    local key = host.origin .. path .. (req.query ~= "" and "?" .. req.query or "")
    if site.by_path then site.by_path[key] = (site.by_path[key] or 0) + 1 end
    return serve(site, h, path, req.query, key)
  end
end

---------------------------------------------------------------------------------------------
-- The site object

local Site = {}
Site.__index = Site

local function check(cond, msg) if not cond then error("testsite.start: " .. msg, 3) end end

--- Starts the site's servers (inside a task). Returns the site, or nil, "ENAME: ...", "ENAME".
function M.start(opts)
  opts = opts or {}
  local o = {hosts = 3, pages = 1000, seed = 1, port = 0, plain = false, track_paths = true,
    catalogue = 0}
  for k, v in pairs(opts) do o[k] = v end
  check(math.type(o.hosts) == "integer" and o.hosts >= 1, "hosts must be an integer >= 1")
  check(math.type(o.pages) == "integer" and o.pages >= 1, "pages must be an integer >= 1")
  check(o.pages < 1e9, "pages must be below 1e9")
  check(math.type(o.seed) == "integer", "seed must be an integer")
  check(math.type(o.port) == "integer" and o.port >= 0 and o.port + o.hosts <= 65536,
    "port must be 0 or leave room for every host below 65536")
  check(math.type(o.catalogue) == "integer" and o.catalogue >= 0 and o.catalogue < 1e9,
    "catalogue must be an integer from 0 to 1e9 - 1")
  check(o.crawl_delay == nil or type(o.crawl_delay) == "number" and o.crawl_delay >= 0,
    "crawl_delay must be a number >= 0")
  local site = setmetatable({nhosts = o.hosts, pages = o.pages, seed = o.seed,
    plain = not not o.plain, crawl_delay = o.crawl_delay, catalogue = o.catalogue, paras = paragraphs(o.seed),
    origins = {}, hosts = {}, seeds = {}, hosts_ = {}, servers = {}, origin_index = {},
    hits = {}, requests = 0, by_path = o.track_paths and {} or nil}, Site)
  for h = 1, o.hosts do
    site.hosts_[h] = {inflight = 0, max_inflight = 0, robots = 0}
    local srv, err, code = http.serve{host = "127.0.0.1", port = o.port > 0 and o.port + h - 1 or 0,
      backlog = 4096, handler = handler(site, h)}
    if not srv then
      site:close()
      return nil, err, code
    end
    site.servers[h] = srv
    local origin = "http://127.0.0.1:" .. srv.port
    site.hosts_[h].origin, site.origins[h], site.hosts[h] = origin, origin, origin
    site.seeds[h], site.origin_index[origin] = origin .. "/", h
  end
  -- A port reserved and closed again, after the servers took theirs: nothing listens there.
  local l = assert(tcp.listen("127.0.0.1", 0, function() end))
  site.dead = "http://127.0.0.1:" .. l:port()
  l:close()
  site.origins[o.hosts + 1] = site.dead
  for h = 1, o.hosts do
    build_host(site, h)
    site.hosts_[h].robots_txt = robots_txt(site, h)
  end
  return site
end

-- Splits a normalized URL of the site into origin index, path and query (or nil).
local function split(site, url)
  local origin, path, query = url:match("^(http://[^/]+)(/[^?#]*)%??([^#]*)$")
  return site.origin_index[origin], path, query ~= "" and query or nil
end

--- The links of the document at the normalized URL `url`: base href (or nil) and a list of
-- {tag = "a"|"area"|"link"|"comment", href = as written, url = normalized target or nil}.
-- Nothing for a URL that is not an HTML document of the site.
function Site:links(url)
  local h, path, query = split(self, url)
  if not h then return nil, {} end
  local n, route = lookup(self, h, path)
  if not n and not (route and route.kind == "html") then return nil, {} end
  return doc_links(self, h, path, query, n, route)
end

-- What a correct crawler ends with for (h, path): the status, and the route (nil for a page).
local function final_status(site, h, path)
  local n, route = lookup(site, h, path)
  if n then return OK end
  if not route then return 404 end
  if route.kind == "redirect" then return route.status, route end
  if route.fails == math.huge then return route.fail_status, route end
  return OK, route
end

-- The breadth-first walk behind expected() and disallowed().
local function walk(site)
  local status, disallowed, queue, head, tail = {}, {}, {}, 1, 0
  local function visit(o, path, query)
    local url = site.origins[o] .. path .. (query and "?" .. query or "")
    if status[url] or disallowed[url] then return end
    if o <= site.nhosts and not robots_allows(site, path .. (query and "?" .. query or "")) then
      disallowed[url] = true
      return
    end
    status[url], tail = true, tail + 1
    queue[tail] = {o, path, query, url}
  end
  for h = 1, site.nhosts do visit(h, "/") end
  while head <= tail do
    local o, path, query, url = table.unpack(queue[head])
    queue[head], head = nil, head + 1
    if o > site.nhosts then
      status[url] = "error"
    else
      local st, route = final_status(site, o, path)
      status[url] = st
      if st == OK and not (route and route.kind ~= "html") then
        local n = lookup(site, o, path)
        local _, links = doc_links(site, o, path, query, n, route)
        for _, l in ipairs(links) do
          if l.url then visit(l.o, l.path, l.query) end
        end
      elseif route and route.kind == "redirect" then
        visit(route.o, route.target)
      end
    end
  end
  return status, disallowed
end

--- url -> final status (200, 404, 301, 302, 500, or "error") for every URL a correct crawler
-- records; see the usage notes at the top.
function Site:expected()
  return (walk(self))
end

--- The URLs pages link to that robots.txt disallows (sorted).
function Site:disallowed()
  local _, d = walk(self)
  local list = {}
  for url in pairs(d) do list[#list + 1] = url end
  table.sort(list)
  return list
end

--- url -> how many failing answers (500, 429, 503) come before the 200, for the URLs that
-- fail at first; math.huge for the one that always fails.
function Site:retries()
  local t = {}
  for url in pairs(self:expected()) do
    local h, path = split(self, url)
    if h then
      local _, route = lookup(self, h, path)
      if route and route.fails then t[url] = route.fails end
    end
  end
  return t
end

--- Counters since the start or the last reset_stats().
function Site:stats()
  local s = {requests = self.requests, by_path = {}, max_inflight = {}, inflight = {}, robots = {}}
  for k, v in pairs(self.by_path or {}) do s.by_path[k] = v end
  for _, host in ipairs(self.hosts_) do
    s.max_inflight[host.origin] = host.max_inflight
    s.inflight[host.origin] = host.inflight
    s.robots[host.origin] = host.robots
  end
  return s
end

--- Clears the counters (the faults' state stays: see reset()).
function Site:reset_stats()
  self.requests = 0
  if self.by_path then self.by_path = {} end
  for _, host in ipairs(self.hosts_) do
    host.max_inflight, host.robots = host.inflight, 0
  end
end

--- Clears the counters and the faults' state: flaky pages fail again from the start.
function Site:reset()
  self:reset_stats()
  self.hits = {}
end

--- Closes every server; `timeout` as server:close's.
function Site:close(timeout)
  for _, srv in pairs(self.servers) do srv:close(timeout) end
end

---------------------------------------------------------------------------------------------
-- The command line

if not (arg and arg[0] and arg[0]:match("testsite%.lua$")) then return M end

local USAGE = "usage: sluice scripts/testsite.lua [--hosts N] [--pages N] [--seed N] [--port P]" ..
  " [--plain] [--crawl-delay S] [--seeds-file FILE] [--catalogue N] [--export DIR]\n"
local function usage(msg)
  io.stderr:write("testsite: ", msg, "\n", USAGE)
  os.exit(2)
end

-- Each option that takes a value: its key in opts and how its text is read.
local VALUED = {["--hosts"] = "hosts", ["--pages"] = "pages", ["--seed"] = "seed",
  ["--port"] = "port", ["--crawl-delay"] = "crawl_delay", ["--seeds-file"] = "seeds_file",
  ["--catalogue"] = "catalogue", ["--export"] = "export"}
local opts, i = {track_paths = false}, 1
while arg[i] do
  local a, v = arg[i], arg[i + 1]
  if a == "-h" or a == "--help" then
    io.stdout:write(USAGE)
    os.exit(0)
  elseif a == "--plain" then
    opts.plain, i = true, i + 1
  elseif not VALUED[a] then
    usage("unexpected argument " .. a)
  else
    if not v then usage(a .. " needs a value") end
    local key = VALUED[a]
    opts[key] = (key == "seeds_file" or key == "export") and v or key == "crawl_delay" and tonumber(v) or math.tointeger(tonumber(v))
    if opts[key] == nil then usage("bad " .. a .. " " .. v) end
    i = i + 2
  end
end
local seeds_file, export = opts.seeds_file, opts.export
opts.seeds_file, opts.export = nil, nil
if export and not opts.catalogue then usage("--export needs --catalogue N") end
-- M.start's checks of the values (a range, a free port) speak for the options too.
local ok, site, err = pcall(M.start, opts)
if not ok then usage(tostring(site):gsub("^.-testsite%.start: ", ""):gsub("^(%l[%l_]*)", "--%1"):gsub("_", "-")) end
if not site then
  io.stderr:write("testsite: ", err, "\n")
  os.exit(1)
end
if export then
  -- The catalogue's documents as files; its links are relative or root-relative, so any
  -- server of DIR on any port serves the same site.
  local function write(path)
    local f, ferr = io.open(export .. path, "w")
    if not f then io.stderr:write("testsite: ", ferr, "\n") os.exit(1) end
    f:write(render(site, 1, path, nil, nil, catalogue_route(site, path)))
    f:close()
  end
  local q = "'" .. export:gsub("'", "'\\''") .. "/catalogue/"
  if not os.execute("mkdir -p " .. q .. "page' " .. q .. "product'") then
    io.stderr:write("testsite: cannot create the directories under ", export, "\n")
    os.exit(1)
  end
  local pages = (site.catalogue - 1) // M.CATALOGUE_PER_PAGE + 1
  for k = 1, pages do write("/catalogue/page/" .. k .. ".html") end
  for id = 1, site.catalogue do write("/catalogue/product/" .. id .. ".html") end
  site:close()
  io.stderr:write(("testsite: wrote %d listing pages and %d products to %s\n"):format(pages, site.catalogue, export))
  os.exit(0)
end
local seeds = table.concat(site.seeds, "\n") .. "\n"
io.stdout:write(seeds)
io.stdout:flush()
if seeds_file then
  local tmp = seeds_file .. ".tmp"
  local f, ferr = io.open(tmp, "w")
  if not f then io.stderr:write("testsite: ", ferr, "\n") os.exit(1) end
  f:write(seeds)
  f:close()
  assert(os.rename(tmp, seeds_file))
end
io.stderr:write(("testsite: %d host%s x %d pages, seed %d, %s%s; serving until Ctrl-C\n"):format(
  site.nhosts, site.nhosts > 1 and "s" or "", site.pages, site.seed,
  site.plain and "plain" or "robots rules, slow, flaky, redirects and broken links",
  site.crawl_delay and (", Crawl-delay %g on %s"):format(site.crawl_delay, site.hosts[1]) or ""))
