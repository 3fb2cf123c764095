-- client_redirect_credentials_spec.lua: issue 9, defect 3. Authorization, Cookie and
-- Proxy-Authorization never follow a redirect to another origin (scheme, host and port),
-- whoever set them: the request's headers in any case, or the client's defaults (which
-- the crawler uses for its `headers` option, and robots.txt redirects are followed).
local http = require "sluice.http"
local crawl = require "sluice.crawl"

local devnull = assert(io.open("/dev/null", "w"))

-- An http.serve server recording every request; route(req) answers it (default: 200).
local function recorder(route)
  local s = {requests = {}, route = route}
  s.server = assert(http.serve{port = 0, handler = function(req)
    s.requests[#s.requests + 1] = req
    if s.route then return s.route(req) end
    return 200, {["Content-Type"] = "text/plain"}, "ok " .. req.path
  end})
  s.url = "http://127.0.0.1:" .. s.server.port
  return s
end

-- The last request a recorder saw for path.
local function last(s, path)
  for i = #s.requests, 1, -1 do
    if s.requests[i].path == path then return s.requests[i] end
  end
  error("no request for " .. path)
end

local SECRETS = {"authorization", "cookie", "proxy-authorization"}

describe("regress: credentials on cross-origin redirects", function()
  local a, b, client

  before_each(function()
    b = recorder()
    a = recorder(function(req)
      if req.path == "/away" then return 302, {Location = b.url .. "/landed"}, "" end
      if req.path == "/here" then return 302, {Location = "/stay"}, "" end
      if req.path == "/back" then return 302, {Location = b.url .. "/bounce"}, "" end
      return 200, nil, "ok " .. req.path
    end)
  end)

  after_each(function()
    if client then client:close() end
    a.server:close()
    b.server:close()
    client = nil
  end)

  it("drops the client's default credentials, keeps them on the same origin", function()
    client = http.client{headers = {Authorization = "Bearer default", Cookie = "sid=d",
                                    ["Proxy-Authorization"] = "Basic cA==",
                                    ["X-Keep"] = "k"}}
    local res = assert(client:get(a.url .. "/here"))
    assert.equals("ok /stay", res.body)
    local same = last(a, "/stay").headers
    assert.equals("Bearer default", same.authorization)
    assert.equals("sid=d", same.cookie)
    assert.equals("Basic cA==", same["proxy-authorization"])

    res = assert(client:get(a.url .. "/away"))
    assert.equals("ok /landed", res.body)
    assert.equals(1, res.redirects)
    assert.equals("Bearer default", last(a, "/away").headers.authorization)
    local got = last(b, "/landed").headers
    for _, name in ipairs(SECRETS) do assert.is_nil(got[name], name) end
    assert.equals("k", got["x-keep"])
    assert.equals("127.0.0.1:" .. b.server.port, got.host)
  end)

  it("drops the request's credentials in any case of their names", function()
    client = http.client()
    local res = assert(client:get(a.url .. "/away", {headers = {
      AUTHORIZATION = "Bearer mine", cookie = "c=1", ["pRoXy-AuThOrIzAtIoN"] = "Basic x",
      ["X-Keep"] = "k"}}))
    assert.equals("ok /landed", res.body)
    assert.equals("Bearer mine", last(a, "/away").headers.authorization)
    local got = last(b, "/landed").headers
    for _, name in ipairs(SECRETS) do assert.is_nil(got[name], name) end
    assert.equals("k", got["x-keep"])
  end)

  it("does not send them again when a later hop comes back to the first origin",
     function()
    b.route = function(req)
      if req.path == "/bounce" then return 302, {Location = a.url .. "/home"}, "" end
      return 200, nil, "ok " .. req.path
    end
    client = http.client{headers = {Cookie = "sid=d"}}
    local res = assert(client:get(a.url .. "/back", {headers = {Authorization = "Bearer r"}}))
    assert.equals("ok /home", res.body)
    assert.equals(2, res.redirects)
    assert.equals("sid=d", last(a, "/back").headers.cookie)
    assert.equals("Bearer r", last(a, "/back").headers.authorization)
    for _, name in ipairs(SECRETS) do
      assert.is_nil(last(b, "/bounce").headers[name], name)
      assert.is_nil(last(a, "/home").headers[name], name)
    end
  end)

  it("keeps the crawler's Authorization off a robots.txt redirect to another origin",
     function()
    a.route = function(req)
      if req.path == "/robots.txt" then
        return 301, {Location = b.url .. "/robots.txt"}, ""
      end
      return 200, {["Content-Type"] = "text/html"}, "<p>page</p>"
    end
    local recs = {}
    crawl.run{seeds = {a.url .. "/"}, same_host = true, status = false, log = devnull,
              headers = {Authorization = "Bearer crawl", Cookie = "sid=c"},
              out = function(_, rec) recs[#recs + 1] = rec end}
    assert.equals(1, #recs)
    assert.equals(200, recs[1].status)
    assert.equals("Bearer crawl", last(a, "/").headers.authorization)
    assert.equals("Bearer crawl", last(a, "/robots.txt").headers.authorization)
    local got = last(b, "/robots.txt").headers
    assert.equals(1, #b.requests)
    for _, name in ipairs(SECRETS) do assert.is_nil(got[name], name) end
    assert.matches("^sluice%-crawl", got["user-agent"])
  end)
end)
