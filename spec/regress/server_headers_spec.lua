-- Issue 9, defect 7 (the server's side): repeated request headers were joined by repeated
-- concatenation (quadratic), max_header_size counted only the target, names and values
-- (so padding and many short lines passed it), and the header count limit was a fixed
-- 100. Now joining is linear, the limit counts the head as sent, and `max_headers`
-- (default 1000) sets the count, both answered with 431.
local sl = require "sluice"
local W = require "spec.http_wire"

-- Sends a GET with the given header lines (after Host) to a server with opts; returns the
-- response and what the handler saw (nil when it was not called).
local function exchange(opts, lines)
  local seen
  local srv = W.start(function(req)
    seen = req
    return 200, nil, "ok"
  end, opts)
  local c = W.connect(srv)
  c:send(W.get("/", lines))
  return c:response(), seen, c
end

describe("the HTTP server's request header limits", function()
  it("limits header lines to max_headers (default 1000) with a 431, then closes", function()
    local r, seen = exchange({max_headers = 5}, string.rep("X: a\r\n", 4))
    assert.equals(200, r.status)
    assert.equals("a, a, a, a", seen.headers.x)
    local c
    r, seen, c = exchange({max_headers = 5}, string.rep("X: a\r\n", 5))
    assert.equals(431, r.status)
    assert.is_nil(seen)
    assert.is_true(c:closed())
    r = exchange({max_header_size = 65536}, string.rep("X: a\r\n", 999))
    assert.equals(200, r.status)
    r = exchange({max_header_size = 65536}, string.rep("X: a\r\n", 1000))
    assert.equals(431, r.status)
  end)

  it("joins 100,000 repeats of a header in linear time", function()
    local n = 100000
    local t0 = sl.now()
    local r, seen = exchange({max_headers = 2 * n, max_header_size = 4 * 1024 * 1024},
                             "Cookie: a=1\r\n" .. string.rep("X: ab\r\n", n) ..
                             "Y: z\r\ncookie: b=2\r\n")
    local took = sl.now() - t0
    assert.equals(200, r.status)
    assert.equals(4 * n - 2, #seen.headers.x)
    assert.equals(string.rep("ab, ", 3) .. "ab", seen.headers.x:sub(1, 14))
    assert.equals("a=1; b=2", seen.headers.Cookie)
    assert.equals("z", seen.headers.y)
    assert.is_true(took < 2, "took " .. took .. " s")
  end, {timeout = 15})

  it("counts max_header_size in bytes on the wire: request line, lines, CRLFs", function()
    local base = #W.get("/", "X: \r\n")
    local r = exchange({max_header_size = 1024}, "X: " .. string.rep("v", 1024 - base) .. "\r\n")
    assert.equals(200, r.status)                      -- exactly 1024 bytes
    r = exchange({max_header_size = 1024}, "X: " .. string.rep("v", 1025 - base) .. "\r\n")
    assert.equals(431, r.status)
    r = exchange({max_header_size = 1024}, string.rep("a:\r\n", 300))   -- 1 byte each
    assert.equals(431, r.status)
    r = exchange({max_header_size = 1024}, "X:" .. string.rep(" ", 2000) .. "v\r\n")
    assert.equals(431, r.status)
    r = exchange({max_header_size = 1024}, "X: " .. string.rep("v", 1000) .. " \t \r\n")
    assert.equals(431, r.status)
  end)
end)
