-- crawl_emfile_spec.lua: issue 9, defect 6. Under `ulimit -n 64` a crawl of 200 pages
-- recorded 148 of them as permanent EMFILE failures, without a retry. Running out of
-- sockets is the crawler's problem, not the host's: the request waits for a connection to
-- close and is tried again without using up an attempt, the crawl lowers its own limit,
-- a note says so once, and every page ends with its real status.
local sl = require "sluice"
local http = require "sluice.http"
local cjson = require "cjson"
local H = require "spec.helpers"

-- The binary that runs this spec (SLUICE_BIN first, as for the other specs' children), so
-- that an older binary runs its own crawler in the child.
local function this_binary()
  return os.getenv("SLUICE_BIN") or H.sh("readlink /proc/$PPID/exe"):match("[^\n]+")
end

-- Serves "/" linking to 199 pages and crawls it in a child under `ulimit -n 64` with
-- limit 200, so the crawl starts them all at once: far more sockets than 64 descriptors
-- allow (this process keeps its own, larger limit). `args` go to scripts/crawl.lua too;
-- the pages take `delay` seconds to answer. Returns the exit status, the records (decoded,
-- checking none is there twice) and stderr.
local function crawl_starved(args, delay)
  local server = assert(http.serve{port = 0, handler = function(req)
    if delay and req.path ~= "/" then sl.sleep(delay) end
    local links = {}
    if req.path == "/" then
      for i = 1, 199 do links[i] = '<a href="/p/' .. i .. '.html">' .. i .. '</a>' end
    end
    return 200, {["Content-Type"] = "text/html"}, "<p>" .. table.concat(links) .. "</p>"
  end})
  local out, err, status = os.tmpname(), os.tmpname(), os.tmpname()
  os.remove(status)
  local words = {}
  for i, a in ipairs(args) do words[i] = H.quote(a) end
  os.execute(("(sh -c 'ulimit -n 64 && exec \"$0\" \"$@\"' %s scripts/crawl.lua --limit 200 "
              .. "--per-host 200 --out %s %s %s </dev/null >/dev/null 2>%s; echo $? >%s) "
              .. ">/dev/null 2>&1 &")
             :format(H.quote(this_binary()), H.quote(out), table.concat(words, " "),
                     H.quote("http://127.0.0.1:" .. server.port .. "/"), H.quote(err),
                     H.quote(status)))
  local ended = H.poll(function() return H.read_file(status):find("\n") ~= nil end, 25)
  server:close()
  local code, records, log = H.read_file(status), H.read_file(out), H.read_file(err)
  os.remove(out)
  os.remove(err)
  os.remove(status)
  assert.is_true(ended, "the crawl did not end")
  local recs, seen = {}, {}
  for _, line in ipairs(H.lines(records)) do
    local r = cjson.decode(line)
    assert.is_nil(seen[r.url], "two records for " .. r.url)
    seen[r.url] = true
    recs[#recs + 1] = r
  end
  return tonumber(code:match("%d+")), recs, log
end

-- Asserts that every record is a 200 without an error; returns how many there are.
local function all_ok(recs)
  for _, r in ipairs(recs) do
    assert.equals(200, r.status, r.url .. ": " .. tostring(r.error))
    assert.equals(cjson.null, r.error, r.url)
  end
  return #recs
end

describe("regress: a crawl out of file descriptors", function()
  it("loses no page under ulimit -n 64, slows down and says so once", function()
    local code, recs, log = crawl_starved({})
    assert.equals(0, code, log)
    assert.equals(200, all_ok(recs))
    assert.equals(1, H.count("crawl: out of sockets (EMFILE", log), log)
  end, {timeout = 30})

  it("counts a page that waited for a socket once against --max-pages", function()
    -- (100 at once, and slow pages: pages wait for sockets while others are still to
    -- start)
    local code, recs, log = crawl_starved({"--limit", "100", "--max-pages", "180"}, 0.1)
    assert.equals(0, code, log)
    assert.equals(180, all_ok(recs))
  end, {timeout = 30})
end)
