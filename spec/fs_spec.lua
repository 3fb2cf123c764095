-- Specs of sl.lines (engine/fs.c): lines read through libuv's thread pool, in constant
-- memory, as a plain iterator and as a limited_as_completed source. Spec bodies are tasks.
local sl = require "sluice"
local H = require "spec.helpers"

-- Collects every line of path through sl.lines.
local function read_all(path)
  local t = {}
  for line in sl.lines(path) do t[#t + 1] = line end
  return t
end

-- Whether this process has a descriptor open on path; nil where /proc is missing.
local function is_open(path)
  local f = io.open("/proc/self/stat", "r")   -- read by this process: its own pid
  if not f then return nil end
  local pid = f:read("n")
  f:close()
  local listing = H.sh("ls -l /proc/" .. pid .. "/fd")
  return listing:find(" -> " .. path .. "\n", 1, true) ~= nil
end

describe("sl.lines", function()
  local path

  before_each(function()
    path = os.tmpname()
  end)

  after_each(function()
    os.remove(path)
  end)

  it("returns each line without its end-of-line", function()
    H.write_file(path, "alpha\nbeta\n\ngamma delta\n")
    assert.are.same({"alpha", "beta", "", "gamma delta"}, read_all(path))
  end)

  it("strips \\r of CRLF line ends, keeping a \\r inside a line", function()
    H.write_file(path, "one\r\ntwo\r\n\r\nthr\ree\r\n")
    assert.are.same({"one", "two", "", "thr\ree"}, read_all(path))
  end)

  it("returns a final line without a newline", function()
    H.write_file(path, "first\nlast")
    assert.are.same({"first", "last"}, read_all(path))
  end)

  it("returns no lines for an empty file", function()
    H.write_file(path, "")
    assert.are.same({}, read_all(path))
  end)

  it("returns one empty line for a file holding only a newline", function()
    H.write_file(path, "\n")
    assert.are.same({""}, read_all(path))
  end)

  it("reads 300,000 lines in constant Lua memory", function()
    local f = assert(io.open(path, "wb"))
    local expected_sum = 0
    for i = 1, 300000 do
      local n = i % 97
      expected_sum = expected_sum + n * i % 1000003
      f:write(("x"):rep(n), "\n")
    end
    f:close()
    -- Measured in a child of its own: in a heap that earlier specs have grown, Lua's
    -- collector lets garbage reach a share of the whole heap before it runs, which would
    -- measure the suite rather than sl.lines.
    local script = H.tmpfile([[
      local sl = require "sluice"
      collectgarbage()
      local base = collectgarbage("count")
      local peak, count, checksum = base, 0, 0
      for line in sl.lines(arg[1]) do
        count = count + 1
        checksum = checksum + #line * count % 1000003
        if count % 1000 == 0 then peak = math.max(peak, collectgarbage("count")) end
      end
      print(count, checksum, peak - base)
    ]])
    local r = H.run({script, path})
    os.remove(script)
    local count, checksum, grew = r.out:match("^(%d+)\t(%d+)\t([^\t\n]+)")
    assert.is_truthy(count, "the child printed: " .. r.out .. r.err)
    assert.are.equal(300000, tonumber(count))
    assert.are.equal(expected_sum, tonumber(checksum))
    -- The C buffer is 64 KB outside Lua's heap; the Lua side only makes short strings.
    assert.is_true(tonumber(grew) < 4096,
                   ("Lua memory grew by %.0f KB while iterating"):format(tonumber(grew)))
  end, {timeout = 20})

  it("returns a 200 KB line whole (longer than the 64 KB read buffer)", function()
    local long = ("0123456789abcdef"):rep(200 * 1024 / 16)
    H.write_file(path, "short\n" .. long .. "\r\nafter\n" .. long)
    local lines = read_all(path)
    assert.are.equal(4, #lines)
    assert.are.equal("short", lines[1])
    assert.are.equal(#long, #lines[2])
    assert.is_true(lines[2] == long)
    assert.are.equal("after", lines[3])
    assert.is_true(lines[4] == long)
  end)

  it("raises an error naming the path of a file that does not exist", function()
    local missing = path .. ".does-not-exist"
    local ok, err = pcall(sl.lines, missing)
    assert.is_false(ok)
    assert.are.equal("sl.lines: cannot open " .. missing .. ": no such file or directory",
                     err)
  end)

  it("closes the file when the loop is left early, without an error", function()
    local f = assert(io.open(path, "wb"))
    for i = 1, 100000 do f:write("line ", i, "\n") end
    f:close()
    local iter, state, _, closer = sl.lines(path)
    assert.is_nil(state)                      -- the iterator is a closure: no state needed
    local seen, open_inside = {}, nil
    for line in iter, state, nil, closer do
      seen[#seen + 1] = line
      open_inside = is_open(path)
      if #seen == 3 then break end
    end
    assert.are.same({"line 1", "line 2", "line 3"}, seen)
    -- Closed by the generic for's to-be-closed value: nothing more comes out.
    assert.is_nil(iter())
    if open_inside ~= nil then
      assert.is_true(open_inside)
      assert.is_false(is_open(path))
    end
    closer:close()   -- idempotent
  end)

  it("closes the file on break in the plain `for line in sl.lines(p)` form", function()
    H.write_file(path, "a\nb\nc\n")
    local open_inside
    for _ = 1, 50 do
      for line in sl.lines(path) do
        assert.are.equal("a", line)
        if open_inside == nil then open_inside = is_open(path) end
        break
      end
    end
    if open_inside ~= nil then
      assert.is_true(open_inside)
      assert.is_false(is_open(path))
    end
  end)

  -- sl.lines returns iterator, nil, nil, closer; the iterator is a closure, so the call
  -- itself is a job source for limited_as_completed.
  it("is a job source for limited_as_completed as it is", function()
    local f = assert(io.open(path, "wb"))
    local expected = 0
    for i = 1, 1000 do
      f:write(i, "\n")
      expected = expected + i * 2
    end
    f:close()
    local running, max_running, n, sum = 0, 0, 0, 0
    local function handler(line)
      running = running + 1
      max_running = math.max(max_running, running)
      sl.sleep(0)
      running = running - 1
      return tonumber(line) * 2
    end
    for ok, v, line in sl.limited_as_completed(sl.lines(path), 4, handler) do
      assert.is_true(ok, v)
      assert.are.equal(tonumber(line) * 2, v)
      n, sum = n + 1, sum + v
    end
    assert.are.equal(1000, n)
    assert.are.equal(expected, sum)
    assert.are.equal(4, max_running)
  end)
end)
