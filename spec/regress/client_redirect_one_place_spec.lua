-- client_redirect_one_place_spec.lua: issue 11. Redirects are decided once, in the C core
-- (hc_redirect_location), resolved with sluice.url's resolver (the crawler's), and the
-- next request is sent from there. What that settles: the URL of each hop is normalized as
-- url.normalize writes it; a 307 or 308 that is not followed (its request's body is a
-- function) hands its body to the sink (it was dropped as the body of a redirect to be
-- followed); and the client's own timeout bounds the whole call, redirects included, as
-- its documentation says (only a request's timeout option did).
local http = require "sluice.http"
local sl = require "sluice"
local url = require "sluice.url"
local H = require "spec.helpers"
local fails = H.fails

describe("regress: redirects in one place", function()
  local srv, client

  after_each(function()
    if client then client:close() end
    if srv then srv:close() end
    srv, client = nil, nil
  end)

  local function serve(route)
    srv = assert(http.serve{port = 0, handler = route})
    return "http://127.0.0.1:" .. srv.port
  end

  it("resolves each Location as url.normalize does", function()
    local base = serve(function(req)
      if req.path == "/a/b" then
        return 302, {Location = "./c/../%7euser/%7B?q=%61#frag"}, ""
      end
      return 200, {}, req.target
    end)
    local res = assert(http.get(base .. "/a/b"))
    assert.equals(1, res.redirects)
    assert.equals(url.normalize("./c/../%7euser/%7B?q=%61#frag", base .. "/a/b"), res.url)
    assert.equals(base .. "/a/~user/%7B?q=a", res.url)
    assert.equals("/a/~user/%7B?q=a", res.body)
  end)

  it("gives a sink the body of a 307 it does not follow", function()
    local base = serve(function(req)
      if req.path == "/tmp" then return 307, {Location = "/final"}, "moved here" end
      return 200, {}, "final"
    end)
    local pieces = {}
    local sent = false
    local res = assert(http.request{url = base .. "/tmp", method = "POST",
                                    body = function()
                                      if sent then return nil end
                                      sent = true
                                      return "data"
                                    end,
                                    sink = function(p) pieces[#pieces + 1] = p end})
    assert.equals(307, res.status)
    assert.equals(0, res.redirects)
    assert.equals("moved here", table.concat(pieces))
  end)

  it("holds the client's timeout to the whole call, redirects included", function()
    local base = serve(function(req)
      sl.sleep(0.25)
      if req.path == "/1" then return 302, {Location = "/2"}, "" end
      return 200, {}, "done"
    end)
    client = http.client{timeout = 0.4}
    local err = fails("ETIMEDOUT", client:get(base .. "/1"))
    assert.matches("timed out after 0.4", err, 1, true)
    assert.equals("done", assert(client:get(base .. "/2")).body)
  end)
end)
