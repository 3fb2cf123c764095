-- client_misuse_spec.lua: issue 11. The HTTP client's misuse errors point at the user's
-- line (the C core no longer looks for client.lua's file name on the stack: the Lua API
-- functions call it directly, so the user is one Lua frame above), and http.client{} with
-- a bad option raises before it creates anything: no client record, no sweep timer (the
-- runner's handle check cannot see that timer, which is unreferenced: ASan's leak check
-- under `make asan` sees the record freed on the error path).
local http = require "sluice.http"

local THIS = "client_misuse_spec.lua"

-- The error of fn, which must name this file and the given line.
local function raised_at(line, ok, err)
  assert.is_false(ok)
  assert.matches(THIS .. ":" .. line .. ": ", err, 1, true)
  return err
end

local function here() return debug.getinfo(2, "l").currentline end

describe("regress: misuse errors of the HTTP client", function()
  local srv

  after_each(function()
    if srv then srv:close() end
    srv = nil
  end)

  it("http.client{} with a bad option raises at the caller and leaves no client", function()
    for _, opts in ipairs({{max_per_host = 0}, {timeout = -1}, {headers = 3},
                           {headers = {["bad name"] = "v"}}, {headers = {X = "a\rb"}},
                           {ca_file = 3}, {max_body = "x"}, {keepalive = "x"}}) do
      local l = here(); local ok, err = pcall(http.client, opts)
      -- pcall calls it directly: the frame above the API function is pcall's caller
      assert.is_false(ok)
      assert.matches("bad option", err)
      l = here(); ok, err = pcall(function() http.client(opts) end)
      raised_at(l, ok, err)
    end
  end)

  it("a request's bad options and a closed client raise at the caller", function()
    local c = http.client()
    local l = here(); local ok, err = pcall(function() c:get("http://127.0.0.1:1/", {timeout = -1}) end)
    raised_at(l, ok, err)
    l = here(); ok, err = pcall(function() http.get("http://127.0.0.1:1/", {headers = {X = "a\nb"}}) end)
    assert.matches("control character", raised_at(l, ok, err))
    l = here(); ok, err = pcall(function() c:request{url = "http://127.0.0.1:1/", method = "G T"} end)
    assert.matches("bad method", raised_at(l, ok, err))
    l = here(); ok, err = pcall(function() http.request{url = "http://127.0.0.1:1/", body = 42} end)
    assert.matches("bad option 'body'", raised_at(l, ok, err))
    c:close()
    l = here(); ok, err = pcall(function() c:get("http://127.0.0.1:1/") end)
    assert.matches("closed HTTP client", raised_at(l, ok, err))
    l = here(); ok, err = pcall(function() c:stats() end)
    assert.matches("closed HTTP client", raised_at(l, ok, err))
  end)

  it("a body function returning a non-string raises at the caller, after a wait", function()
    srv = assert(http.serve{port = 0, handler = function(req) return 200, {}, req.body end})
    local url = "http://127.0.0.1:" .. srv.port .. "/"
    local function body() return 42 end
    local l = here(); local ok, err = pcall(function() http.request{url = url, method = "POST", body = body} end)
    assert.matches("the body function must return strings", raised_at(l, ok, err))
  end)
end)
