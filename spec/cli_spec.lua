-- Specs of the command line (engine/main.c, engine/loop.c, lua/sluice/boot.lua): each runs
-- a child sluice (SLUICE_BIN or ./sluice) on a fixture under spec/fixtures/cli/.
local H = require "spec.helpers"

local fixture = H.fixtures("spec/fixtures/cli/")

describe("sluice script", function()
  it("builds arg like lua and passes the arguments as the script's ...", function()
    local script = fixture("args")
    local r = H.run({script, "a b", "", "c"})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.same({
      "arg[-1]\t" .. H.bin,
      "arg[0]\t" .. script,
      "#arg\t3",
      "arg[1]\ta b",
      "arg[2]\t",
      "arg[3]\tc",
      "...\t3\ta b\t\tc",
    }, H.lines(r.out))
  end)

  it("runs a script without arguments with an empty ...", function()
    local r = H.run({fixture("args")})
    assert.are.equal(0, r.code)
    assert.are.equal("#arg\t0", H.lines(r.out)[3])
    assert.are.equal("...\t0", H.lines(r.out)[4])
  end)

  it("waits for the tasks the main chunk spawned before exiting", function()
    local r = H.run({fixture("late_task")})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal("main done\ntask done\n", r.out)
  end)
end)

describe("sluice options", function()
  it("-e runs code inside the main task, so it can wait", function()
    local r = H.run({"-e", "require('sluice').sleep(0.01) print(1)"})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal("1\n", r.out)
  end)

  it("runs several -e in order, and accepts -estat", function()
    local r = H.run({"-e", "x = 1", "-ex = x + 1", "-e", "print(x)"})
    assert.are.equal(0, r.code)
    assert.are.equal("2\n", r.out)
  end)

  it("-l mod requires mod into the global mod", function()
    local r = H.run({"-l", "cjson", "-e", "print(cjson.encode({1, 2}))"})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal("[1,2]\n", r.out)
  end)

  it("-l g=mod requires mod into the global g", function()
    local r = H.run({"-l", "g=spec.fixtures.cli.greeting", "-e", "print(g.greeting)"})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal("hello from a module\n", r.out)
  end)

  it("runs -e and -l before the script, which sees them in arg's negative indices", function()
    local script = fixture("globals")
    local r = H.run({"-e", "X=5", "-l", "g=spec.fixtures.cli.greeting", script})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal("X\t5\tg\thello from a module\n"
                     .. "arg[-3]\tX=5\targ[-2]\t-l\targ[-1]\tg=spec.fixtures.cli.greeting\t"
                     .. "arg[0]\t" .. script .. "\n", r.out)
  end)

  it("- reads the script from stdin and passes the rest as ...", function()
    local r = H.run({"-", "a", "b"}, {stdin = H.read_file(fixture("stdin_script"))})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal("from stdin\t-\t2\ta\tb\n", r.out)
  end)

  it("with no arguments and stdin not a terminal, runs stdin", function()
    local r = H.run({}, {stdin = H.read_file(fixture("stdin_script"))})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal("from stdin\tnil\t0\n", r.out)
  end)

  it("-- ends the options: a script named like an option's argument runs", function()
    local r = H.run({"--", fixture("args"), "-x"})
    assert.are.equal(0, r.code)
    assert.are.equal("arg[1]\t-x", H.lines(r.out)[4])
  end)

  it("-v prints one version line naming sluice and exits 0", function()
    local r = H.run({"-v"})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.matches("^sluice %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libuv %d+%.%d+%.%d+%)\n$", r.out)
  end)

  it("-h prints the usage on stdout and exits 0", function()
    local r = H.run({"-h"})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal("usage: sluice [options] [script [args]]", H.lines(r.out)[1])
    H.has("-e stat", r.out)
    H.has("-l g=mod", r.out)
  end)

  it("rejects an unknown option with one line on stderr and status 1", function()
    local r = H.run({"-x", fixture("args")})
    assert.are.equal("", r.out)
    assert.are.equal(1, r.code)
    assert.are.equal("sluice: unrecognized option '-x' (try 'sluice -h')\n", r.err)
  end)

  it("rejects -e without its argument with one line and status 1", function()
    local r = H.run({"-e"})
    assert.are.equal("", r.out)
    assert.are.equal(1, r.code)
    assert.are.equal("sluice: '-e' needs an argument\n", r.err)
  end)
end)

describe("sluice failures", function()
  it("reports a missing script in one line, status 1", function()
    local r = H.run({fixture("no_such_script")})
    assert.are.equal("", r.out)
    assert.are.equal(1, r.code)
    assert.are.equal("sluice: cannot open " .. fixture("no_such_script") .. ": no such file\n",
                     r.err)
  end)

  it("reports a syntax error in one line naming file:line, status 1", function()
    local r = H.run({fixture("syntax_error")})
    assert.are.equal("", r.out)
    assert.are.equal(1, r.code)
    assert.are.equal("sluice: " .. fixture("syntax_error") .. ":3: unexpected symbol near 'local'\n",
                     r.err)
  end)

  it("reports a syntax error in -e as coming from the command line", function()
    local r = H.run({"-e", "x ="})
    assert.are.equal(1, r.code)
    assert.are.equal(1, #H.lines(r.err))
    assert.matches("^sluice: %(command line%):1: ", r.err)
  end)

  it("reports an uncaught runtime error with its traceback, status 1", function()
    local r = H.run({fixture("runtime_error")})
    assert.are.equal("before\n", r.out)
    assert.are.equal(1, r.code)
    local lines = H.lines(r.err)
    assert.are.equal("sluice: " .. fixture("runtime_error") .. ":2: boom at run time", lines[1])
    assert.are.equal("stack traceback:", lines[2])
    H.has(fixture("runtime_error") .. ":3: in local 'outer'", r.err)
    H.has(fixture("runtime_error") .. ":5:", r.err)
  end)

  it("reports a failed task nobody joined once, with its traceback, status 1", function()
    local r = H.run({fixture("never_retrieved")})
    assert.are.equal("main done\n", r.out)
    assert.are.equal(1, r.code)
    assert.are.equal(1, H.count("never retrieved", r.err))
    assert.are.equal(1, H.count("lost failure", r.err))
    local lines = H.lines(r.err)
    assert.are.equal("sluice: task 2 failed and its error was never retrieved:", lines[1])
    assert.are.equal(fixture("never_retrieved") .. ":5: lost failure", lines[2])
    assert.are.equal("stack traceback:", lines[3])
  end)

  it("does not report a failed task joined inside pcall", function()
    local r = H.run({fixture("joined_in_pcall")})
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal("false\t" .. fixture("joined_in_pcall") .. ":5: handled failure\n", r.out)
  end)

  it("names a deadlock and exits 1 at once when main waits for an event nobody sets", function()
    local r = H.run({fixture("deadlock")})
    assert.are.equal("waiting\n", r.out)
    assert.are.equal(1, r.code)
    assert.matches("^sluice: deadlock: 1 task is waiting for something that can no longer "
                   .. "happen: task 1\n", r.err)
  end)
end)

describe("sluice and Ctrl-C", function()
  it("cancels the tasks, runs their close handlers, and exits 130", function()
    local r = H.interrupt(fixture("sigint_close"))
    assert.are.equal("ready\ncleanup ran\n", r.out)
    assert.are.equal(130, r.code)
    H.has("interrupted", r.err)
    assert.matches("sluice: stopped: %d+ tasks? finished, 0 failed, %d+ cancelled\n", r.err)
    H.hasnt("not reached", r.out)
    assert.is_true(r.ms < 3000, "took " .. tostring(r.ms) .. " ms")
  end, {timeout = 25})

  it("ends a main chunk that never waits (busy loop) with 130", function()
    local r = H.interrupt(fixture("sigint_busy"))
    assert.are.equal("ready\n", r.out)
    assert.are.equal(130, r.code, "stderr: " .. r.err)
    H.has("interrupted", r.err)
    assert.is_true(r.ms < 3000, "took " .. tostring(r.ms) .. " ms")
  end, {timeout = 25})

  it("ends a task spinning after the main chunk has ended with 130", function()
    local r = H.interrupt(fixture("sigint_busy_task"))
    assert.are.equal("ready\n", r.out)
    assert.are.equal(130, r.code, "stderr: " .. r.err)
    H.has("interrupted", r.err)
    assert.is_true(r.ms < 3000, "took " .. tostring(r.ms) .. " ms")
  end, {timeout = 25})

  -- One Ctrl-C must let the cleanups it started run to their end: the main task, joining
  -- the task below, ends as soon as it is cancelled, and that must not cancel the task
  -- a second time while its close handler waits.
  it("lets a close handler wait after one Ctrl-C when main was joining its task", function()
    local r = H.interrupt(fixture("sigint_slow_cleanup"))
    assert.are.equal(130, r.code, "stderr: " .. r.err)
    assert.are.equal("ready\ncleanup waited\ttrue\tnil\n", r.out)
    assert.are.equal(1, H.count("interrupted", r.err))
    assert.is_true(r.ms < 3000, "took " .. tostring(r.ms) .. " ms")
  end, {timeout = 25})

  it("exits at once with 130 on a second Ctrl-C while a close handler blocks", function()
    local r = H.interrupt(fixture("sigint_twice"), {again = "closing"})
    assert.are.equal("ready\nclosing\n", r.out)
    assert.are.equal(130, r.code)
    H.has("interrupted: cancelling", r.err)
    H.has("interrupted twice, exiting now", r.err)
    assert.is_true(r.ms < 3000, "took " .. tostring(r.ms) .. " ms")
  end, {timeout = 25})
end)
