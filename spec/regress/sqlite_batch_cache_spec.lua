-- Regression (issue 10): db:batch keeps the statements it prepares in a cache of 8, by SQL
-- text, oldest replaced first. A batch of more than 8 distinct texts replaced statements it
-- had itself queued: the 9th text finalized the 1st's statement, which the batch then ran
-- on the thread pool (a use after free: under ASan a crash, in a plain build rows from the
-- wrong statement or none). Now a batch never replaces a statement it uses, and owns the
-- ones beyond the cache until it ends. The batches run in a child sluice, so that the old
-- crash fails these tests instead of ending the runner.
local H = require "spec.helpers"

-- The child: opens a new database, runs the batches of `body` (Lua using `db` and `ins`),
-- then prints every row of t as "a b", in order.
local function run(body)
  local path = os.tmpname()
  local script = H.tmpfile(([[
local sqlite = require "sluice.sqlite"
local db = assert(sqlite.open(%q))
assert(db:exec("CREATE TABLE t (a INTEGER NOT NULL, b INTEGER NOT NULL)"))
-- statement i: its own SQL text (b is written into it), a bound as its one value
local function ins(i, a) return {"INSERT INTO t (a, b) VALUES (?, " .. i .. ")", a} end
%s
for r in db:rows("SELECT a, b FROM t ORDER BY rowid") do print(r.a, r.b) end
db:close()
]]):format(path, body))
  local r = H.run({script})
  os.remove(script)
  os.remove(path)
  return r
end

-- The lines the child prints for these {a, b} rows.
local function rows(list)
  local out = {}
  for _, r in ipairs(list) do out[#out + 1] = r[1] .. "\t" .. r[2] .. "\n" end
  return table.concat(out)
end

describe("issue 10: db:batch with more distinct statements than its cache holds", function()
  it("runs each of 20 distinct statements as written, in order", function()
    local r = run([[
local list = {}
for i = 1, 20 do list[i] = ins(i, 100 + i) end
assert(db:batch(list))
]])
    assert.equals(0, r.code, r.err)
    local want = {}
    for i = 1, 20 do want[i] = {100 + i, i} end
    assert.equals(rows(want), r.out)
  end)

  it("keeps every statement of a batch, repeats included, across batches", function()
    -- texts 1 to 12, then 1 and 12 again (one from the cache's start, one from its end),
    -- twice: the second batch finds some texts cached and prepares the rest again
    local r = run([[
for round = 1, 2 do
  local list = {}
  for i = 1, 12 do list[i] = ins(i, 1000 * round + i) end
  list[13] = ins(1, 1000 * round + 13)
  list[14] = ins(12, 1000 * round + 14)
  assert(db:batch(list))
end
]])
    assert.equals(0, r.code, r.err)
    local want = {}
    for round = 1, 2 do
      for i = 1, 12 do want[#want + 1] = {1000 * round + i, i} end
      want[#want + 1] = {1000 * round + 13, 1}
      want[#want + 1] = {1000 * round + 14, 12}
    end
    assert.equals(rows(want), r.out)
  end)

  it("rolls back a failing batch of 20 texts and leaves the connection usable", function()
    -- the 20th statement breaks NOT NULL: the batch fails whole, then a small one works
    local r = run([[
local list = {}
for i = 1, 20 do list[i] = ins(i, i < 20 and i or nil) end
local ok, err, code = db:batch(list)
assert(ok == nil and code == "SQLITE_CONSTRAINT", tostring(err))
assert(db:batch{ins(1, 7), ins(2, 8)})
]])
    assert.equals(0, r.code, r.err)
    assert.equals(rows{{7, 1}, {8, 2}}, r.out)
  end)
end)
