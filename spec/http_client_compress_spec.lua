-- http_client_compress_spec.lua: the client's decoding of br and zstd bodies (and gzip's
-- several members) against servers the spec starts on loopback: http.serve for whole
-- bodies, a raw server writing chunks for bodies that come in pieces. The compressed
-- bodies are made here with Debian's brotli, zstd and gzip tools (test dependencies the
-- Makefile installs), so they are the tools' own output, not the client's idea of it.
local http = require "sluice.http"
local H = require "spec.helpers"
local W = require "spec.http_wire"

-- Runs a shell snippet that must succeed (the tools are missing otherwise).
local function sh(snippet)
  local out, code = H.sh(snippet)
  assert(code == 0, "failed: " .. snippet)
  return out
end

local DIR = H.tmpdir()
-- About 540 KB of text that differs line to line: several 64 KB pieces for a sink.
local lines = {}
for i = 1, 20000 do lines[i] = ("line %d of the sluice body, %x\n"):format(i, i * 7919) end
local TEXT = table.concat(lines)
H.write_file(DIR .. "/text", TEXT)
H.write_file(DIR .. "/one", "one ")
H.write_file(DIR .. "/two", ("two "):rep(3000))
local q = H.quote(DIR)
sh("cd " .. q .. " && brotli -q 9 -c text >text.br && zstd -q -c text >text.zst"
   .. " && gzip -n -c one >one.gz && gzip -n -c two >two.gz"
   .. " && zstd -q -c one >one.zst && zstd -q -c two >two.zst"
   -- the bombs: 256 MB of zeros in a few hundred (brotli) or thousand (zstd) bytes
   .. " && head -c 268435456 /dev/zero | brotli -q 5 -c >bomb.br"
   .. " && head -c 268435456 /dev/zero | zstd -q -3 -c >bomb.zst")
local F = {}
for _, name in ipairs({"text.br", "text.zst", "one.gz", "two.gz", "one.zst", "two.zst",
                       "bomb.br", "bomb.zst"}) do
  F[name] = H.read_file(DIR .. "/" .. name)
  assert(#F[name] > 0, name)
end
os.execute("rm -rf " .. q)
local BODY = {br = F["text.br"], zstd = F["text.zst"]}
local BOMB = {br = F["bomb.br"], zstd = F["bomb.zst"]}
local BOMB_SIZE = 256 * 1024 * 1024

-- The process's peak resident memory (kB), from Linux's /proc.
local function peak_kb()
  local s = H.read_file("/proc/self/status")
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

-- An http.serve server answering /ENC/NAME with body[NAME] and Content-Encoding ENC.
local function serve(bodies)
  return W.start(function(req)
    local enc, name = req.path:match("^/([^/]+)/(.+)$")
    return 200, {["Content-Encoding"] = enc}, bodies[name]
  end)
end

local function url(srv, enc, name)
  return "http://127.0.0.1:" .. srv.port .. "/" .. enc .. "/" .. name
end

-- A raw server sending body as chunks of `size` bytes, each in a write of its own.
local function chunked(body, enc, size)
  local pieces = {}
  for i = 1, #body, size do pieces[#pieces + 1] = body:sub(i, i + size - 1) end
  return W.raw_server(function(sock)
    W.write_chunked(sock, pieces, "Content-Encoding: " .. enc .. "\r\n")
  end)
end

-- Gets url with a sink; returns the response (or the fail triple) and the pieces.
local function sunk(u, opts)
  local got = {}
  opts = opts or {}
  opts.sink = function(p) got[#got + 1] = p end
  local res, err, code = http.get(u, opts)
  return res, err, code, got
end

describe("the client's br and zstd decoding", function()
  it("asks for gzip, deflate, br and zstd, and decodes whole br and zstd bodies", function()
    local srv = serve({text = TEXT, br = BODY.br, zstd = BODY.zstd})
    for _, enc in ipairs({"br", "zstd"}) do
      assert.is_true(#BODY[enc] < #TEXT / 4)
      local res = assert(http.get(url(srv, enc, enc)))
      assert.equals(enc, res.headers["content-encoding"])
      assert.equals(#TEXT, #res.body, enc)
      assert.equals(TEXT, res.body, enc)
      local raw = assert(http.get(url(srv, enc, enc), {decompress = false}))
      assert.equals(BODY[enc], raw.body)
    end
    -- the header's value is matched without regard to case
    assert.equals(TEXT, assert(http.get(url(srv, "BR", "br"))).body)
    local seen
    local s2 = W.raw_server(function(sock, head)
      seen = head
      sock:write("HTTP/1.1 204 No Content\r\n\r\n")
    end)
    assert.equals(204, assert(http.get(s2.url)).status)
    assert.matches("\r\nAccept%-Encoding: gzip, deflate, br, zstd\r\n", seen)
    local raw_client = http.client{decompress = false}
    finally(function() raw_client:close() end)
    assert(raw_client:get(s2.url))
    assert.is_nil(s2.heads[2]:lower():find("accept-encoding", 1, true))
  end)

  it("feeds a sink the decoded body in pieces as the compressed one arrives", function()
    for _, enc in ipairs({"br", "zstd"}) do
      local srv = chunked(BODY[enc], enc, 1000)
      local res, err, _, got = sunk(srv.url)
      assert(res, err)
      assert.is_nil(res.body)
      local whole = table.concat(got)
      assert.equals(#TEXT, #whole, enc)
      assert.equals(TEXT, whole, enc)
      assert.is_true(#got > 8, enc)
      for _, p in ipairs(got) do assert.is_true(#p > 0 and #p <= 64 * 1024) end
      srv.listener:close()
    end
  end)

  it("stops a bomb at max_body on the decoded size without decoding it all (EFBIG)",
     function()
    local srv = serve(BOMB)
    local before = peak_kb()
    for _, enc in ipairs({"br", "zstd"}) do
      assert.is_true(#BOMB[enc] < 10000, enc)
      local msg = H.fails("EFBIG", http.get(url(srv, enc, enc), {max_body = 1000000}))
      assert.matches("decoded response body", msg)
      -- a sink: no limit unless asked for, then one
      local res, err, code, got = sunk(url(srv, enc, enc), {max_body = 1000000})
      H.fails("EFBIG", res, err, code)
      local n = 0
      for _, p in ipairs(got) do n = n + #p end
      assert.is_true(n <= 1000000 and n > 900000, enc)
    end
    -- 256 MB decoded would show in the peak; the limits keep it to a few MB
    assert.is_true(peak_kb() - before < 64 * 1024, "peak grew by " .. (peak_kb() - before))
    for _, enc in ipairs({"br", "zstd"}) do
      H.fails("EFBIG", http.get(url(srv, enc, enc)))   -- the default max_body, 16 MiB
      assert.equals(#BOMB[enc], #assert(http.get(url(srv, enc, enc),
                                                 {decompress = false})).body)
    end
  end)

  it("fails with EPROTO on data that is not br or zstd, whole or through a sink", function()
    local zst = BODY.zstd
    local bad = {
      -- zstd's content checksum catches a changed byte in the middle
      zstd = zst:sub(1, 2000) .. string.char((zst:byte(2001) + 1) % 256) .. zst:sub(2002),
      -- a brotli header asking for a window of a reserved size
      br = "\x11\x00\x00\x00" .. ("x"):rep(100),
      junk = "not compressed at all, just text",
    }
    local srv = serve(bad)
    for _, case in ipairs({{"br", "br"}, {"zstd", "zstd"}, {"br", "junk"}, {"zstd", "junk"}}) do
      local enc, name = case[1], case[2]
      local msg = H.fails("EPROTO", http.get(url(srv, enc, name)))
      assert.matches("^EPROTO: bad " .. enc .. " body from 127%.0%.0%.1:%d+: .", msg)
      local res, err, code = sunk(url(srv, enc, name))
      H.fails("EPROTO", res, err, code)
    end
  end)

  it("fails with EPROTO on a stream cut short or followed by other bytes", function()
    local srv = serve({
      br_short = BODY.br:sub(1, #BODY.br - 20), zstd_short = BODY.zstd:sub(1, #BODY.zstd - 20),
      br_tiny = BODY.br:sub(1, 3), zstd_tiny = BODY.zstd:sub(1, 3),
      br_more = BODY.br .. "more", zstd_more = BODY.zstd .. "more",
    })
    for _, enc in ipairs({"br", "zstd"}) do
      for _, kind in ipairs({"short", "tiny"}) do
        local u = url(srv, enc, enc .. "_" .. kind)
        local msg = H.fails("EPROTO", http.get(u))
        assert.matches("cut short", msg)
        local res, err, code, got = sunk(u)
        assert.matches("cut short", H.fails("EPROTO", res, err, code))
        if kind == "short" then assert.is_true(#got > 0) end
      end
      H.fails("EPROTO", http.get(url(srv, enc, enc .. "_more")))
      H.fails("EPROTO", sunk(url(srv, enc, enc .. "_more")))
    end
    -- cut short in pieces, with a sink: the error comes at the end of the body
    local short = chunked(BODY.zstd:sub(1, 5000), "zstd", 700)
    H.fails("EPROTO", sunk(short.url))
  end)

  it("decodes every gzip member and every zstd frame of a body, whole or in pieces",
     function()
    local want = "one " .. ("two "):rep(3000)
    local bodies = {gz = F["one.gz"] .. F["two.gz"], zst = F["one.zst"] .. F["two.zst"]}
    local srv = serve(bodies)
    for enc, name in pairs({gzip = "gz", zstd = "zst"}) do
      assert.equals(want, assert(http.get(url(srv, enc, name))).body, enc)
      local res, err, _, got = sunk(url(srv, enc, name))
      assert(res, err)
      assert.equals(want, table.concat(got), enc)
      -- split inside the second member or frame, a byte at a time at the seam
      local body = bodies[name]
      local pieces = W.raw_server(function(sock)
        local cut = #F["one." .. name]
        W.write_chunked(sock, {body:sub(1, cut - 1), body:sub(cut, cut),
                               body:sub(cut + 1, cut + 1), body:sub(cut + 2)},
                        "Content-Encoding: " .. enc .. "\r\n")
      end)
      res, err, _, got = sunk(pieces.url)
      assert(res, err)
      assert.equals(want, table.concat(got), enc)
      pieces.listener:close()
    end
  end)
end)
