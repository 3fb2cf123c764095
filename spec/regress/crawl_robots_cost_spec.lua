-- crawl_robots_cost_spec.lua: issue 9, defect 4. A hostile robots.txt made matching one URL
-- cost a second or more (100 rules of `/*a{4999}b` against a 200 KB path: 1.4 s), freezing
-- the whole crawl. Now the file is cut at MAX_BODY, a path longer than MAX_PATH is not
-- matched, and the searches for one path have a budget, so each hostile shape costs
-- milliseconds; the old code took over a second on each of them, so the bound asserted on
-- CPU time (os.clock) has a wide margin on both sides.
local http = require "sluice.http"
local crawl = require "sluice.crawl"
local robots = require "sluice.crawl.robots"
local H = require "spec.helpers"

local BOUND = 0.25   -- CPU seconds for one path: the old code took 1.1 to 1.4 s

-- A robots.txt of about 500 KB: "User-agent: *" and rule(i) for i = 1, 2, ... (or n rules).
local function hostile(rule, n)
  local lines, size = {"User-agent: *"}, 0
  local i = 0
  while (n and i < n) or (not n and size < 500000) do
    i = i + 1
    lines[#lines + 1] = rule(i)
    size = size + #lines[#lines] + 1
  end
  return table.concat(lines, "\n") .. "\n"
end

-- allowed(policy, path) and the CPU time it took.
local function timed(policy, path)
  local t0 = os.clock()
  local ok, why = robots.allowed(policy, path)
  return os.clock() - t0, ok, why
end

describe("regress: robots.txt matching cost", function()
  it("100 rules of /*a{4999}b against a 200 KB path and an 8 KB one", function()
    local policy = robots.parse(hostile(function() return "Disallow: /*" .. ("a"):rep(4999)
                                                          .. "b" end, 100), "sluice-crawl")
    local t, ok, why = timed(policy, "/" .. ("a"):rep(200000))
    assert.is_true(t < BOUND, ("took %.3f s"):format(t))
    assert.is_false(ok)
    assert.equals("path too long", why)
    t, ok = timed(policy, "/" .. ("a"):rep(8000))
    assert.is_true(t < BOUND, ("took %.3f s"):format(t))
    assert.is_true(ok)
    -- and the rule still decides where it matches
    assert.is_false((robots.allowed(policy, "/x" .. ("a"):rep(5000) .. "b")))
  end)

  it("25,000 short wildcard rules against an 8 KB path", function()
    local function rule(i) return "Disallow: /*a" .. string.char(98 + i % 20) .. i end
    local policy = robots.parse(hostile(rule), "sluice-crawl")
    local t, ok, why = timed(policy, "/" .. ("a"):rep(8000))
    assert.is_true(t < BOUND, ("took %.3f s"):format(t))
    -- no rule matches, but deciding it would cost too much: not allowed
    assert.is_false(ok)
    assert.equals("too costly to match", why)
    -- with fewer such rules, ordinary paths are decided exactly
    policy = robots.parse(hostile(rule, 2000), "sluice-crawl")
    assert.is_true((robots.allowed(policy, "/products/12.html")))
    assert.is_false((robots.allowed(policy, "/ac1/x")))
    assert.is_true((robots.allowed(policy, "/ad1/x")))
  end)

  it("a crawl under such a robots.txt is not held up", function()
    local body = hostile(function(i) return "Disallow: /*a" .. string.char(98 + i % 20) .. i end)
    local long = "/" .. ("a"):rep(8000)
    local server = assert(http.serve{port = 0, handler = function(req)
      if req.path == "/robots.txt" then return 200, {["Content-Type"] = "text/plain"}, body end
      if req.path ~= "/" then return 200, {["Content-Type"] = "text/plain"}, "page" end
      local links = {'<a href="/ok">ok</a>'}
      for i = 1, 10 do links[#links + 1] = '<a href="' .. long .. i .. '">long</a>' end
      return 200, {["Content-Type"] = "text/html"}, table.concat(links)
    end})
    local base = "http://127.0.0.1:" .. server.port
    local logpath = os.tmpname()
    local log = assert(io.open(logpath, "w"))
    local recs = {}
    local t0 = os.clock()
    local summary = crawl.run{seeds = {base .. "/"}, status = false, log = log,
                              out = function(_, rec) recs[rec.url] = rec.status end}
    local cpu = os.clock() - t0
    server:close()
    log:close()
    local text = H.read_file(logpath)
    os.remove(logpath)
    assert.is_true(cpu < 2, ("the crawl took %.3f s of CPU"):format(cpu))
    assert.same({[base .. "/"] = 200, [base .. "/ok"] = 200}, recs)
    assert.equals(10, summary.disallowed)
    assert.equals(1, H.count("too costly to match for the robots.txt", text), text)
  end, {timeout = 10})
end)
