-- client_gzip_members_spec.lua: issue 9, "two gzip members". A gzip body made of several
-- members one after the other decodes to all of them (as gzip -d does; browsers stop after
-- the first, curl fails), buffered or through a sink, whatever the reads look like;
-- padding after the last member is ignored, and deflate bodies (zlib-wrapped or raw)
-- still decode.
local http = require "sluice.http"
local H = require "spec.helpers"
local W = require "spec.http_wire"

-- spec/fixtures/http/members.gz: three members, "one ", "" and ("two "):rep(2000), made
-- with Python's gzip.compress (mtime=0) and concatenated; body.gz, body.zlib and
-- body.deflate hold ("sluice "):rep(1000).
local MEMBERS = H.read_file("spec/fixtures/http/members.gz")
local WANT = "one " .. ("two "):rep(2000)
local GZ = H.read_file("spec/fixtures/http/body.gz")
local TEXT = ("sluice "):rep(1000)

-- A loopback server answering every request (one per connection) with a gzip body given
-- as pieces: chunked, each piece in a write of its own.
local function server(pieces, encoding)
  return W.raw_server(function(sock)
    W.write_chunked(sock, pieces, "Content-Encoding: " .. (encoding or "gzip") .. "\r\n")
  end)
end

describe("regress: gzip bodies of several members", function()
  it("decodes every member of a buffered body", function()
    assert.equals(92, #MEMBERS)
    local srv = server({MEMBERS})
    local res = assert(http.get(srv.url))
    assert.equals(#WANT, #res.body)
    assert.equals(WANT, res.body)
  end)

  it("decodes the members of a body twice the same, ignoring zero padding", function()
    local srv = server({GZ .. GZ .. ("\0"):rep(8)})
    assert.equals(TEXT .. TEXT, assert(http.get(srv.url)).body)
  end)

  it("decodes every member through a sink, a member ending where a read ends", function()
    -- the first member, then the next member's first byte alone, then the rest
    local srv = server({MEMBERS:sub(1, 24), MEMBERS:sub(25, 25), MEMBERS:sub(26), GZ})
    local got = {}
    local res = assert(http.get(srv.url, {sink = function(p) got[#got + 1] = p end}))
    assert.is_nil(res.body)
    assert.equals(WANT .. TEXT, table.concat(got))
  end)

  it("still counts every member's output against max_body", function()
    local srv = server({GZ .. GZ})
    local _, err, code = http.get(srv.url, {max_body = #TEXT + 10})
    assert.equals("EFBIG", code, err)
    assert.equals(200, assert(http.get(srv.url, {max_body = 2 * #TEXT})).status)
  end)

  it("still decodes deflate, zlib-wrapped or raw, ignoring bytes after its end", function()
    for _, name in ipairs({"body.zlib", "body.deflate"}) do
      local srv = server({H.read_file("spec/fixtures/http/" .. name) .. "\31\139junk"},
                         "deflate")
      assert.equals(TEXT, assert(http.get(srv.url)).body, name)
      srv.listener:close()
    end
  end)
end)
