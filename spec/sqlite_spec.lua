-- sqlite_spec.lua: sluice.sqlite on real database files: statements, values both ways,
-- failures as fail triples, db:batch as one transaction on the thread pool (the loop keeps
-- running meanwhile; a cancellation waits for it), and misuse raising.
local sl = require "sluice"
local sqlite = require "sluice.sqlite"
local H = require "spec.helpers"

local function tmpdb()
  local path = os.tmpname()
  os.remove(path)
  return path .. ".sqlite"
end

local function rm(path)
  os.remove(path)
  os.remove(path .. "-wal")
  os.remove(path .. "-shm")
  os.remove(path .. "-journal")
end

-- A statement that keeps SQLite busy computing for a while (no disk involved).
local SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
             .. "INSERT INTO t (a) SELECT count(*) FROM c"

describe("sluice.sqlite", function()
  local path, db
  before_each(function()
    path = tmpdb()
    db = assert(sqlite.open(path))
    assert(db:exec("CREATE TABLE t (a, b)"))
  end)
  after_each(function()
    db:close()
    rm(path)
  end)

  it("runs statements and gives values back with their Lua types", function()
    assert.is_true(db:exec("INSERT INTO t VALUES (?, ?)", 1, "x"))
    assert.is_true(db:exec("INSERT INTO t VALUES (?, ?)", 2.5, nil))
    assert.is_true(db:exec("INSERT INTO t VALUES (?, ?)", true, "a\0b,\"c\"\n"))
    assert.equals(1, db:changes())
    assert.equals(3, db:last_insert_rowid())
    local rows = {}
    for r in db:rows("SELECT a, b FROM t WHERE a >= ? ORDER BY rowid", 0) do rows[#rows + 1] = r end
    assert.equals(3, #rows)
    assert.equals(1, rows[1].a)
    assert.equals("integer", math.type(rows[1].a))
    assert.equals("x", rows[1].b)
    assert.equals(2.5, rows[2].a)
    assert.is_nil(rows[2].b)
    assert.equals(1, rows[3].a)
    assert.equals("a\0b,\"c\"\n", rows[3].b)
    -- a script of several statements, without values
    assert.is_true(db:exec("DELETE FROM t; INSERT INTO t VALUES (9, 9)"))
    local st = assert(db:prepare("SELECT count(*) AS n, max(a) AS m FROM t WHERE b = ?"))
    local r = st:bind(9):step()
    assert.same({n = 1, m = 9}, r)
    assert.is_nil(st:step())
    assert.same({n = 0}, st:bind(8):step())
    assert.same({n = 0}, st:reset():step())
    st:close()
    st:close()
    assert.has_error(function() st:step() end, "attempt to use a closed statement")
    assert.matches("^/", db:filename())
  end)

  it("returns failures as fail triples and raises on misuse", function()
    local ok, err, code = db:exec("SELEKT 1")
    assert.is_nil(ok)
    assert.equals("SQLITE_ERROR", code)
    H.has('SQLITE_ERROR: near "SELEKT": syntax error', err)
    ok, err, code = db:prepare("SELECT * FROM nowhere")
    assert.is_nil(ok)
    assert.equals("SQLITE_ERROR: no such table: nowhere", err)
    assert.equals(nil, (db:exec("INSERT INTO nowhere VALUES (?)", 1)))
    ok, err, code = sqlite.open("/nonexistent/dir/x.db")
    assert.is_nil(ok)
    assert.equals("SQLITE_CANTOPEN", code)
    ok, err, code = sqlite.open(path .. ".missing", {readonly = true})
    assert.equals("SQLITE_CANTOPEN", code)
    assert.has_error(function() db:exec("INSERT INTO t VALUES (?)", {}) end)
    assert.has_error(function() db:exec("SELECT ?", 1, 2) end,
                     "sqlite: 2 values for a statement with 1 parameters")
    assert.has_error(function() db:rows("SELECT nope FROM t") end)
    local st = assert(db:prepare("SELECT ?"))
    assert.has_error(function() st:bind(print) end)
    -- a constraint: the step fails with its own code
    assert(db:exec("CREATE TABLE u (k PRIMARY KEY)"))
    assert(db:exec("INSERT INTO u VALUES (1)"))
    ok, err, code = db:exec("INSERT INTO u VALUES (?)", 1)
    assert.equals("SQLITE_CONSTRAINT", code)
    local other = assert(sqlite.open(path))
    other:close()
    other:close()
    assert.has_error(function() other:exec("SELECT 1") end, "attempt to use a closed database")
    assert.equals("sluice.sqlite.db (closed)", tostring(other))
  end)

  it("runs a batch as one transaction, rolled back as a whole on a failure", function()
    assert(db:exec("CREATE TABLE u (k PRIMARY KEY, v)"))
    local list = {}
    for i = 1, 2000 do list[i] = {"INSERT INTO u VALUES (?, ?)", i, i % 2 == 0 and "even" or nil} end
    assert.is_true(db:batch(list))
    local n
    for r in db:rows("SELECT count(*) AS n, count(v) AS v FROM u") do n = r end
    assert.same({n = 2000, v = 1000}, n)
    -- the 3rd statement fails: none of the batch stays
    local ok, err, code = db:batch{{"INSERT INTO u VALUES (?, ?)", 5000, 1},
                                   {"INSERT INTO t VALUES (?, ?)", 1, 2},
                                   {"INSERT INTO u VALUES (?, ?)", 1, 1}}
    assert.is_nil(ok)
    assert.equals("SQLITE_CONSTRAINT", code)
    H.has("UNIQUE constraint failed: u.k", err)
    for r in db:rows("SELECT (SELECT count(*) FROM u) AS u, (SELECT count(*) FROM t) AS t") do n = r end
    assert.same({u = 2000, t = 0}, n)
    -- SQL that does not compile fails the same way; bad values raise
    ok, err, code = db:batch{{"INSERT INTO nowhere VALUES (?)", 1}}
    assert.equals("SQLITE_ERROR", code)
    assert.has_error(function() db:batch{{"INSERT INTO t VALUES (?, ?)", {}, 1}} end,
      "bad argument #1 to 'batch' (statement 1, value 1: nil, boolean, number or string "
      .. "expected, got table)")
    assert.has_error(function() db:batch{"INSERT"} end)
    assert.is_true(db:batch{})
    -- more distinct statements than the connection keeps prepared, twice over
    for _ = 1, 2 do
      list = {}
      for i = 1, 20 do list[i] = {"INSERT INTO t (a, b) VALUES (?, " .. i .. ")", i} end
      assert.is_true(db:batch(list))
    end
    for r in db:rows("SELECT count(*) AS n, sum(a) AS a, sum(b) AS b FROM t") do n = r end
    assert.same({n = 40, a = 420, b = 420}, n)
  end)

  it("keeps the loop running while a batch works on the thread pool", function()
    local ticks, gap, last, stop = 0, 0, sl.now(), false
    local ticker = sl.spawn(function()
      while not stop do
        sl.sleep(0.01)
        local t = sl.now()
        gap = math.max(gap, t - last)
        last = t
        ticks = ticks + 1
      end
    end)
    assert.is_true(H.poll(function() return ticks > 0 end, 5), "the ticker never ticked")
    ticks, gap, last = 0, 0, sl.now()
    local t0 = sl.now()
    -- (a batch long enough to measure: at least 0.3 s of SQLite's work)
    local n = 500000
    repeat
      assert.is_true(db:batch{{SLOW, n}})
      n = n * 2
    until sl.now() - t0 >= 0.3
    local took = sl.now() - t0
    stop = true
    ticker:join()
    -- The ticker ran all along: about one tick per 10 ms, never held up for long.
    assert.is_true(ticks >= took / 0.01 / 4, ("%d ticks in %.2f s"):format(ticks, took))
    assert.is_true(gap < 0.15, ("the loop stalled %.3f s"):format(gap))
  end, {timeout = 30})

  it("is busy during a batch; a cancellation waits for it, then comes at the next wait",
     function()
    local outcome, after
    local t = sl.spawn(function()
      outcome = {db:batch{{SLOW, 3000000}}}
      after = "returned"
      sl.sleep(10)
      after = "slept"
    end)
    -- (the batch owns the connection from the moment the task has called db:batch)
    assert.is_true(H.poll(function() return not pcall(db.exec, db, "SELECT 1") end, 5),
                   "the batch never started")
    assert.has_error(function() db:exec("SELECT 1") end,
                     "sqlite: the database is busy with a db:batch in another task")
    t:cancel()
    local t0 = sl.now()
    assert.is_true(t:wait(10))
    assert.equals("cancelled", t:status())
    assert.same({true}, outcome)
    assert.equals("returned", after)
    assert.is_true(sl.now() - t0 < 9)
    local n
    for r in db:rows("SELECT count(*) AS n FROM t") do n = r.n end
    assert.equals(1, n)
    -- closing during a batch closes once it ends
    local u = sl.spawn(function() return db:batch{{SLOW, 300000}} end)
    sl.sleep(0)
    db:close()
    assert.is_true(u:join())
    assert.equals("sluice.sqlite.db (closed)", tostring(db))
  end, {timeout = 30})

  it("says SQLITE_FULL when the database is full, keeping what was committed", function()
    assert(db:exec("CREATE TABLE big (v)"))
    assert.is_true(db:batch{{"INSERT INTO big VALUES (?)", ("x"):rep(1000)}})
    assert(db:exec("PRAGMA max_page_count = 8"))
    local list = {}
    for i = 1, 100 do list[i] = {"INSERT INTO big VALUES (?)", ("y"):rep(1000)} end
    local ok, err, code = db:batch(list)
    assert.is_nil(ok)
    assert.equals("SQLITE_FULL", code)
    H.has("database or disk is full", err)
    local n
    for r in db:rows("SELECT count(*) AS n FROM big") do n = r.n end
    assert.equals(1, n)
  end)
end)
