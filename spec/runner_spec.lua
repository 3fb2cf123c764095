-- Specs of the spec runner (lua/sluice/test*.lua): each runs `sluice test` as a child
-- process on a fixture under spec/fixtures/runner/ and checks its output and exit status.
-- SLUICE_BIN names the command to run (default: ./sluice in the current directory).

local H = require "spec.helpers"

local fixture = H.fixtures("spec/fixtures/runner/")
local shell_quote, read_file, has, hasnt = H.quote, H.read_file, H.has, H.hasnt

local cwd = os.getenv("PWD") or "."
-- A relative command (make asan sets SLUICE_BIN=./sluice-asan) must survive a `cd` too.
local bin = (os.getenv("SLUICE_BIN") or "./sluice"):gsub("^%.%.?/", cwd .. "/%0")

-- A relative SLUICE_LUA_PATH must survive the `cd` of runs in another directory.
local lua_path = os.getenv("SLUICE_LUA_PATH")
local env = ""
if lua_path and lua_path:sub(1, 1) ~= "/" then
  env = "SLUICE_LUA_PATH=" .. shell_quote(cwd .. "/" .. lua_path) .. " "
end

--- Runs `sluice test ARGS` (in `dir` if given); returns {out, err, code, last, breakdown}.
local function run(args, dir)
  local errfile = os.tmpname()
  local cmd = ("cd %s && %s%s test %s 2>%s"):format(shell_quote(dir or cwd), env, bin, args,
                                                  shell_quote(errfile))
  local p = io.popen(cmd, "r")
  local out = p:read("a")
  local _, _, code = p:close()
  local err = read_file(errfile)
  os.remove(errfile)
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return {out = out, err = err, code = code, lines = lines, last = lines[#lines],
          breakdown = lines[#lines - 1]}
end

describe("sluice test", function()
  it("passes a passing file with exit status 0 and the summary as the last line", function()
    local r = run(fixture("passing"))
    assert.are.equal(0, r.code)
    assert.are.equal("2 passed, 0 failed", r.last)
    assert.are.equal("++", r.lines[1])
    assert.matches("^0 failures, 0 errors", r.breakdown)
  end)

  it("counts failures and errors apart and skipped tests separately", function()
    local r = run(fixture("mixed"))
    assert.are.equal(1, r.code)
    assert.are.equal("1 passed, 4 failed, 2 skipped", r.last)
    assert.matches("^3 failures, 1 error ", r.breakdown)
    assert.are.equal("+-*-..-", r.lines[1])
  end)

  it("shows file:line and the message, with a traceback for errors only", function()
    local r = run(fixture("mixed"))
    has("Failure spec/fixtures/runner/mixed.lua:9: mixed fails an assertion\n"
        .. "spec/fixtures/runner/mixed.lua:10: Expected objects to be the same.", r.out)
    has("Error spec/fixtures/runner/mixed.lua:13: mixed raises an error\n"
        .. "spec/fixtures/runner/mixed.lua:15: attempt to index a nil value (local 't')\n"
        .. "stack traceback:\n\tspec/fixtures/runner/mixed.lua:15:", r.out)
    has("Failure spec/fixtures/runner/mixed.lua:28: mixed fails with a plain assert\n"
        .. "spec/fixtures/runner/mixed.lua:29: one is not two", r.out)
    has("Pending spec/fixtures/runner/mixed.lua:24: mixed gives up at run time "
        .. "(waiting for the engine)", r.out)
  end)

  it("keeps an assertion failure a failure when a joined task re-raises it", function()
    local r = run(fixture("mixed"))
    has("Failure spec/fixtures/runner/mixed.lua:18: mixed fails inside a joined task\n"
        .. "spec/fixtures/runner/mixed.lua:19: Expected objects to be equal.", r.out)
  end)

  it("runs each test under a deadline: per test, per block and --timeout", function()
    local r = run("--timeout 0.4 " .. fixture("timeouts"))
    assert.are.equal(1, r.code)
    assert.are.equal("1 passed, 3 failed", r.last)
    has("Error spec/fixtures/runner/timeouts.lua:5: deadlines per test\ntimed out after 0.2 s", r.out)
    has("inherits the block's\ntimed out after 0.3 s", r.out)
    has("deadlines global\ntimed out after 0.4 s", r.out)
    -- The traceback says where the test was waiting when it was cancelled.
    has("spec/fixtures/runner/timeouts.lua:6:", r.out)
  end)

  it("tells a cancellation error in a test from a deadline", function()
    local r = run(fixture("cancel"))
    assert.are.equal("0 passed, 2 failed", r.last)
    has("cancellation joins a cancelled task\nraised the cancellation error", r.out)
    assert.matches("cancellation swallows its own cancellation\n[^\n]*0%.2 s", r.out)
  end)

  it("reports and cancels the tasks a test left running", function()
    local r = run(fixture("leftovers"))
    assert.are.equal("3 passed, 2 failed", r.last)
    assert.matches("leftovers forgets a task\nthe test left 1 task running: [^\n]*; "
                   .. "the runner cancelled it", r.out)
    -- Tasks started in setup may live through the block's tests, not past its teardown.
    assert.matches("a server started in setup %(teardown%)\nthe block left 1 task running", r.out)
  end)

  it("reports the libuv handles a test or a block left open, once", function()
    local r = run(fixture("handles"))
    assert.are.equal("3 passed, 2 failed", r.last)
    has("handles forgets a connection\nthe test left 1 libuv handle open: tcp; close it "
        .. "where it was opened", r.out)
    has("a connection opened in setup (teardown)\nthe block left 1 libuv handle open: tcp",
        r.out)
    -- The file's check does not report again what its block reported.
    hasnt("the file left", r.out)
  end)

  it("reports a file that does not compile as an error of that file", function()
    local r = run(fixture("syntax_error") .. " " .. fixture("passing"))
    assert.are.equal(1, r.code)
    assert.are.equal("2 passed, 1 failed", r.last)
    has("Error spec/fixtures/runner/syntax_error.lua (load)\n"
        .. "spec/fixtures/runner/syntax_error.lua:3: ')' expected near 'function'", r.out)
  end)

  it("reports an error raised while a file loads", function()
    local r = run(fixture("load_error"))
    assert.are.equal("0 passed, 1 failed", r.last)
    has("spec/fixtures/runner/load_error.lua:5: the file gives up", r.out)
  end)

  it("runs hooks in busted's order and lazy setups only when a test needs them", function()
    local r = run("--exclude-tags never " .. fixture("hooks"))
    assert.are.equal("2 passed, 0 failed", r.last)
    local marks = {}
    for m in r.out:gmatch("<([^>]+)>") do marks[#marks + 1] = m end
    assert.are.same({"setup", "lazy_setup", "before outer", "before inner", "it one",
                     "after inner", "after outer", "finally one", "before outer", "it two",
                     "after outer", "unused strict_setup", "teardown", "lazy_teardown"}, marks)
  end)

  it("makes setup lazy with --lazy, leaving strict_setup strict", function()
    local function marks(args)
      local out = {}
      for m in run(args .. fixture("hooks")).out:gmatch("<([^>]+)>") do out[#out + 1] = m end
      return out
    end
    assert.are.same({"setup", "unused strict_setup", "teardown"}, marks("--filter nomatch "))
    assert.are.same({"unused strict_setup"}, marks("--lazy --filter nomatch "))
  end)

  it("runs a --helper file before the specs", function()
    assert.are.equal("1 passed, 0 failed",
                     run("--helper " .. fixture("helper") .. " " .. fixture("uses_helper")).last)
    assert.are.equal("0 passed, 1 failed", run(fixture("uses_helper")).last)
  end)

  it("turns errors in before_each and setup into errors, still running after_each", function()
    local r = run(fixture("hook_errors"))
    assert.are.equal("1 passed, 2 failed", r.last)
    has("in before_each at spec/fixtures/runner/hook_errors.lua:3:", r.out)
    has("<after_each still ran>", r.out)
    hasnt("<body ran>", r.out)
    hasnt("<should not run>", r.out)
    has("Error spec/fixtures/runner/hook_errors.lua:8: failing setup (setup)", r.out)
  end)

  it("selects tests with --tags, --exclude-tags, --filter and --filter-out", function()
    assert.are.equal("1 passed, 0 failed", run("--tags fast " .. fixture("tags")).last)
    assert.are.equal("2 passed, 0 failed", run("-t net " .. fixture("tags")).last)
    assert.are.equal("3 passed, 0 failed", run("--exclude-tags=slow " .. fixture("tags")).last)
    assert.are.equal("2 passed, 0 failed", run("--filter plain " .. fixture("tags")).last)
    assert.are.equal("1 passed, 0 failed",
                     run("--filter plain --filter-out another " .. fixture("tags")).last)
  end)

  it("lists the selected tests with --list without running them", function()
    local r = run("--list --tags net " .. fixture("tags") .. " " .. fixture("hooks"))
    assert.are.equal(0, r.code)
    assert.are.same({"spec/fixtures/runner/tags.lua:3: tagged #net fast one #fast",
                     "spec/fixtures/runner/tags.lua:4: tagged #net slow one #slow"}, r.lines)
  end)

  it("lists each test with --verbose", function()
    local r = run("-v " .. fixture("passing"))
    assert.matches("^ok    spec/fixtures/runner/passing.lua:5: passing adds %(", r.lines[1])
    assert.matches("^ok    spec/fixtures/runner/passing.lua:9: passing waits on the loop",
                   r.lines[2])
  end)

  it("shuffles reproducibly with --shuffle --seed", function()
    local a = run("-v --shuffle --seed 7 " .. fixture("tags"))
    local b = run("-v --shuffle --seed 7 " .. fixture("tags"))
    assert.are.equal("Randomized with seed 7", a.lines[1])
    assert.are.same(a.lines[2], b.lines[2])
    assert.are.equal("4 passed, 0 failed", a.last)
  end)

  it("insulates files and blocks, and expose lets changes out", function()
    local r = run(fixture("insulation"))
    assert.are.equal("4 passed, 0 failed", r.last)
  end)

  it("gives specs require 'busted' and luassert's spy, stub, mock and match", function()
    -- Includes a stub made in one test that the next test finds reverted.
    local r = run(fixture("busted_api"))
    assert.are.equal("4 passed, 1 failed", r.last)
    has("Failure spec/fixtures/runner/busted_api.lua:24:", r.out)
  end)

  describe("--output", function()
    it("TAP", function()
      local r = run("-o TAP " .. fixture("mixed"))
      assert.are.equal("TAP version 13", r.lines[1])
      has("\nok 1 - spec/fixtures/runner/mixed.lua:5: mixed passes\n", r.out)
      has("\nnot ok 2 - spec/fixtures/runner/mixed.lua:9: mixed fails an assertion\n"
          .. "# failure: spec/fixtures/runner/mixed.lua:10: Expected objects to be the same.", r.out)
      has("\nok 5 - spec/fixtures/runner/mixed.lua:22: mixed is not written yet # SKIP", r.out)
      has("\n1..7\n", r.out)
      assert.are.equal("1 passed, 4 failed, 2 skipped", r.last)
    end)

    it("json, with the summary lines on stderr", function()
      local r = run("--output json " .. fixture("mixed"))
      local doc = require("cjson").decode(r.out)
      assert.are.equal(1, #doc.successes)
      assert.are.equal(3, #doc.failures)
      assert.are.equal(1, #doc.errors)
      assert.are.equal(2, #doc.pendings)
      assert.are.equal("mixed raises an error", doc.errors[1].name)
      assert.are.equal(13, doc.errors[1].line)
      assert.matches("1 passed, 4 failed, 2 skipped\n$", r.err)
    end)

    it("junit", function()
      local r = run("-o junit " .. fixture("mixed"))
      has('<testsuites tests="7" failures="3" errors="1" skipped="2"', r.out)
      has('<testcase classname="spec/fixtures/runner/mixed.lua" name="mixed raises an error"', r.out)
      assert.matches("1 passed, 4 failed, 2 skipped\n$", r.err)
    end)

    it("utfTerminal", function()
      local r = run("-o utfTerminal " .. fixture("passing"))
      has("●", r.lines[1])
      assert.are.equal("2 passed, 0 failed", r.last)
    end)
  end)

  it("stops after the first failure with --no-keep-going", function()
    local r = run("--no-keep-going " .. fixture("mixed"))
    assert.are.equal("1 passed, 1 failed", r.last)
  end)

  it("reads the default profile of a .busted file", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(os.execute("mkdir -p " .. shell_quote(dir .. "/specs")))
    finally(function() os.execute("rm -rf " .. shell_quote(dir)) end)
    local f = io.open(dir .. "/.busted", "w")
    f:write('return {default = {ROOT = {"specs"}, pattern = "^t_", verbose = true,',
            ' ["exclude-tags"] = "skipme"}}\n')
    f:close()
    f = io.open(dir .. "/specs/t_one.lua", "w")
    f:write('it("runs", function() end)\nit("is excluded #skipme", function() end)\n')
    f:close()
    f = io.open(dir .. "/specs/other_spec.lua", "w")
    f:write('it("does not match the pattern", function() end)\n')
    f:close()
    local r = run("", dir)
    assert.are.equal("1 passed, 0 failed", r.last)
    assert.matches("^ok    specs/t_one.lua:1: runs", r.lines[1])
  end)

  it("rejects unknown options with a clear message and status 1", function()
    local r = run("--frobnicate")
    assert.are.equal(1, r.code)
    has("unknown option '--frobnicate'", r.err)
  end)

  it("prints help with --help", function()
    local r = run("--help")
    assert.are.equal(0, r.code)
    has("--exclude-tags", r.out)
  end)

  it("reports a path that does not exist", function()
    local r = run("no/such_spec.lua")
    assert.are.equal(1, r.code)
    assert.are.equal("0 passed, 1 failed", r.last)
    has("no/such_spec.lua: No such file or directory", r.out)
  end)
end)
