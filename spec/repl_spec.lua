-- Specs of the REPL (lua/sluice/repl.lua, engine/repl.c): a child `sluice -i` fed through a
-- pipe or a file, and driven through a pseudo-terminal by spec/fixtures/repl/pty_drive.py,
-- which waits for expected output (never a fixed sleep) within a bounded time.
local H = require "spec.helpers"
local cjson = require "cjson"

local FIXTURES = "spec/fixtures/repl/"

-- Runs `sluice -i [args]` with text on a pipe as its standard input.
local function piped(text, args)
  local input = H.tmpfile(text)
  local errfile = os.tmpname()
  local out, code = H.sh(("cat %s | timeout 20 %s -i %s 2>%s"):format(
    H.quote(input), H.quote(H.bin), args or "", H.quote(errfile)))
  local err = H.read_file(errfile)
  os.remove(input)
  os.remove(errfile)
  return {out = out, err = err, code = code}
end

-- Plays steps (see pty_drive.py) on `sluice ARGS...` under a pseudo-terminal; env: a table
-- of environment variables (HOME defaults to a new empty directory, so the user's history
-- is never touched). Returns {out, code, error}; fails the spec on a step's timeout.
local function terminal(steps, args, env)
  local stepsfile = H.tmpfile(cjson.encode(steps))
  local home = not (env and env.HOME) and H.tmpdir()
  local words = {home and "HOME=" .. H.quote(home) or nil}
  for k, v in pairs(env or {}) do words[#words + 1] = k .. "=" .. H.quote(v) end
  words[#words + 1] = "TERM=dumb timeout 60 python3 " .. FIXTURES .. "pty_drive.py"
  words[#words + 1] = H.quote(stepsfile) .. " -- " .. H.quote(H.bin)
  for _, a in ipairs(args or {"-i"}) do words[#words + 1] = H.quote(a) end
  local json = H.sh("env " .. table.concat(words, " "))
  os.remove(stepsfile)
  if home then
    os.remove(home .. "/.sluice_history")
    os.remove(home)
  end
  local ok, r = pcall(cjson.decode, json)
  assert(ok, "pty_drive.py printed no result: " .. json)
  assert(r.error == cjson.null, tostring(r.error) .. "; the terminal showed:\n" .. r.out)
  return r
end

local function send(s) return {"send", s} end
local function expect(s, seconds) return {"expect", s, seconds} end
local PROMPT = expect("> ")

local has_readline = H.run({"-e", "io.write(tostring(require('sluice.repl_core').readline))"})
                       .out == "true"
local has_python = H.sh("command -v python3") ~= ""

-- The terminal specs need python3 (for its pty module); without it they are pending.
local terminal_it = has_python and it or function(name) pending(name .. " (needs python3)") end

describe("sluice -i with standard input on a pipe", function()
  it("runs each line in order, without a prompt", function()
    local r = piped("print(1+1)\nx = 20\nprint(x + 1)\n")
    assert.are.equal("2\n21\n", r.out)
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
  end)

  it("prints the values of expressions: several, nil, quoted strings", function()
    local r = piped('6 * 7\n1, nil, "two"\nnil\nprint("not an expression value")\n')
    assert.are.equal('42\n1\tnil\t"two"\nnil\nnot an expression value\n', r.out)
  end)

  it("pretty-prints tables with nesting, cycles and a depth limit", function()
    local r = piped('t = {1, "a", x = {y = {z = true}}, [false] = 0}\nt\n'
                    .. 'c = {name = "c"}; c.me = c\nc\n'
                    .. 'return {a = {b = {c = {d = {e = {f = {}}}}}}}\n')
    assert.are.same({
      '{1, "a", x = {y = {z = true}}, [false] = 0}',
      '{me = <cycle>, name = "c"}',
      "{a = {b = {c = {d = {e = {...}}}}}}",
    }, H.lines(r.out))
  end)

  it("lays out a long table over several lines", function()
    local r = piped("t = {}\nfor i = 1, 30 do t[i] = i * 1000 end\nt\n")
    local lines = H.lines(r.out)
    assert.are.equal("{", lines[1])
    assert.are.equal("  1000,", lines[2])
    assert.are.equal("  30000", lines[31])
    assert.are.equal("}", lines[32])
  end)

  it("continues incomplete statements on the next lines", function()
    local r = piped("for i = 1, 3 do\n  print(i)\nend\nt = {\n  10,\n  20,\n}\n#t\n")
    assert.are.equal("1\n2\n3\n2\n", r.out)
    assert.are.equal("", r.err)
  end)

  it("reports an error with a short traceback and goes on", function()
    local r = piped('function f() error("boom") end\nf()\nprint("still here")\n'
                    .. "x = = 1\nprint('and here')\n")
    assert.are.equal("still here\nand here\n", r.out)
    H.has("stdin:1: boom\nstack traceback:\n", r.err)
    H.has("in function 'f'", r.err)
    H.hasnt("repl.lua", r.err)
    H.hasnt("xpcall", r.err)
    H.has("unexpected symbol near '='", r.err)
    assert.are.equal(0, r.code)
  end)

  it("runs each input as a task: waiting calls and joins work directly", function()
    local r = piped("t0 = sl.now()\nsl.sleep(0.05)\nsl.now() - t0 >= 0.05\n"
                    .. "t = sl.spawn(function() sl.sleep(0.01) return 'joined' end)\n"
                    .. "t:join()\nsl.current() ~= nil\n")
    assert.are.equal('true\n"joined"\ntrue\n', r.out)
    assert.are.equal("", r.err)
  end)

  it("keeps background tasks running between inputs", function()
    local r = piped("q = sl.queue()\n"
                    .. "bg = sl.spawn(function() while true do print('bg got', q:get()) end end)\n"
                    .. "ok = q:put(1)\nsl.sleep(0.01)\nok = q:put(2)\nsl.sleep(0.01)\n"
                    .. "print('end')\n")
    assert.are.equal("bg got\t1\nbg got\t2\nend\n", r.out)
  end)

  it("at the end of input cancels the tasks still running and lets cleanups run", function()
    local r = piped("t = sl.spawn(function()\n"
                    .. "  local c <close> = setmetatable({}, {__close = function()\n"
                    .. "    print('cleanup ran') end})\n"
                    .. "  sl.sleep(30)\nend)\nprint('started')\n")
    assert.are.equal("started\ncleanup ran\n", r.out)
    assert.are.equal("sluice: cancelling 1 running task\n", r.err)
    assert.are.equal(0, r.code)
  end)

  it("leaves with os.exit(code) typed as an input, cancelling the tasks left", function()
    local r = piped("bg = sl.spawn(function() sl.sleep(30) end)\nos.exit(3)\nprint('no')\n")
    assert.are.equal("", r.out)
    assert.are.equal("sluice: cancelling 1 running task\n", r.err)
    assert.are.equal(3, r.code)
  end)

  it("reads a file given as standard input the same way", function()
    local r = H.run({"-i"}, {stdin = "x = 2\nx ^ 10\n"})
    assert.are.equal("1024.0\n", r.out)
    assert.are.equal(0, r.code)
  end)

  it("says what is wrong with a statement the input leaves unfinished", function()
    local r = piped("print('a')\nfor i = 1, 2 do\n")
    assert.are.equal("a\n", r.out)
    H.has("'end' expected", r.err)
  end)

  it("-i script.lua runs the script first and keeps its globals", function()
    local r = piped("greeting\ncount()\ncount()\n", FIXTURES .. "globals.lua")
    assert.are.equal('script ran\n"hello"\n1\n2\n', r.out)
    assert.are.equal(0, r.code)
  end)
end)

describe("sluice -i on a terminal", function()
  terminal_it("starts with no arguments on a terminal, shows a prompt and prints values", function()
    local r = terminal({PROMPT, send("6 * 7\r"), expect("\n42\n"), PROMPT, {"eof"}}, {})
    H.has("Ctrl-D leaves", r.out)
    assert.are.equal(0, r.code)
  end, {timeout = 60})

  terminal_it("shows background output above the prompt without eating the line typed", function()
    -- With readline the prompt and the half-typed line are drawn again below the output;
    -- the plain reader leaves the line in the terminal's buffer, where Enter still finds it.
    -- The ticks start 0.5 s later, so the half line is typed before them.
    local redrawn = has_readline and expect("tick 2\n> print('hal") or expect("tick 2\n")
    local r = terminal({
      PROMPT,
      send("bg = sl.spawn(function() sl.sleep(0.5) for i = 1, 3 do print('tick ' .. i) "
           .. "sl.sleep(0.1) end end)\r"),
      PROMPT,
      send("print('hal"),
      redrawn,
      send("f typed')\r"),
      expect("\nhalf typed\n"),
      PROMPT, {"eof"},
    })
    if has_readline then H.has("tick 1\n> print('hal", r.out) end
    assert.are.equal(0, r.code)
  end, {timeout = 60})

  terminal_it("runs waiting calls at the prompt, which comes back when the input ends", function()
    local r = terminal({
      PROMPT, send("sl.sleep(0.2) print('woke')\r"), expect("woke\n> "),
      send("t = sl.spawn(function() sl.sleep(0.1) return 'from a task' end)\r"), PROMPT,
      send("t:join()\r"), expect('"from a task"\n> '), {"eof"},
    })
    assert.are.equal(0, r.code)
  end, {timeout = 60})

  terminal_it("Ctrl-C cancels a pending sl.sleep, not the process", function()
    local r = terminal({
      PROMPT, send("print('sleeping') sl.sleep(30) print('not ' .. 'reached')\r"),
      expect("sleeping\n"), send("\3"), expect("cancelled\n"), PROMPT,
      send("print('alive')\r"), expect("alive\n"), PROMPT, {"eof"},
    })
    H.hasnt("not reached", r.out)
    assert.are.equal(0, r.code)
  end, {timeout = 60})

  terminal_it("Ctrl-C interrupts a busy loop", function()
    local r = terminal({
      PROMPT, send("print('spinning') while true do end\r"),
      expect("spinning\n"), send("\3"), expect("cancelled\n"), PROMPT,
      send("print('alive')\r"), expect("alive\n"), PROMPT, {"eof"},
    })
    assert.are.equal(0, r.code)
  end, {timeout = 60})

  terminal_it("Ctrl-C at the prompt clears the line and an unfinished statement", function()
    local r = terminal({
      PROMPT, send("for i = 1, 2 do\r"), expect(">> "), send("junk"), expect("junk"),
      send("\3"), PROMPT, send("print('clean')\r"), expect("clean\n"), PROMPT, {"eof"},
    })
    H.hasnt("error", r.out)
    assert.are.equal(0, r.code)
  end, {timeout = 60})

  terminal_it("continues a multi-line statement with >>", function()
    terminal({
      PROMPT, send("function sq(x)\r"), expect(">> "), send("return x * x\r"), expect(">> "),
      send("end\r"), PROMPT, send("sq(12)\r"), expect("\n144\n"), PROMPT, {"eof"},
    })
  end, {timeout = 60})

  terminal_it("tasks() lists the running tasks with their state", function()
    local r = terminal({
      PROMPT, send("bg = sl.spawn(function() sl.sleep(30) end)\r"), PROMPT,
      send("tasks()\r"), expect("2 tasks\n"), PROMPT, {"eof"},
    })
    assert.matches("task %d+ +waiting in sleep %(%d+%.%d s left%) +stdin:1", r.out)
    assert.matches("task %d+ +running %(this input%)", r.out)
    H.has("sluice: cancelling 1 running task", r.out)
  end, {timeout = 60})

  terminal_it("Ctrl-D leaves, cancelling the running tasks and running their cleanups", function()
    local r = terminal({
      PROMPT,
      send("t = sl.spawn(function() local c <close> = setmetatable({}, {__close = "
           .. "function() print('cleanup ran') end}) sl.sleep(30) end)\r"),
      PROMPT, {"eof"}, expect("sluice: cancelling 1 running task\n"), expect("cleanup ran\n"),
    })
    assert.are.equal(0, r.code)
  end, {timeout = 60})

  terminal_it("os.exit in a background task exits at once with its status", function()
    local r = terminal({
      PROMPT, send("bg = sl.spawn(function() sl.sleep(0.3) print('bye') os.exit(5) end)\r"),
      PROMPT, send("half"), expect("bye\n"),
    })
    assert.are.equal(5, r.code)
    H.hasnt("cancelling", r.out)
  end, {timeout = 60})

  terminal_it("Tab completes globals and fields without calling __index", function()
    if not has_readline then return pending("built without readline") end
    local r = terminal({
      PROMPT,
      send("zz_conf = setmetatable({alpha = {beta = 42}}, {__index = function(_, k) "
           .. "print('INDEX ' .. 'CALLED') end})\r"), PROMPT,
      send("zz_co\t"), expect("zz_conf."), send("al\t"), expect("alpha."),
      send("b\t"), expect("beta"), send("\r"), expect("\n42\n"), PROMPT,
      send("zz_conf.\t\t"), expect("zz_conf.alpha."), send("\3"), PROMPT, {"eof"},
    })
    H.hasnt("INDEX CALLED", r.out)
  end, {timeout = 60})

  terminal_it("keeps the history in $HOME/.sluice_history between runs", function()
    if not has_readline then return pending("built without readline") end
    local home = H.tmpdir()
    local env = {HOME = home}
    terminal({PROMPT, send("print('from ' .. 'history')\r"), expect("from history\n"),
              PROMPT, {"eof"}}, nil, env)
    H.has("print('from ' .. 'history')", H.read_file(home .. "/.sluice_history"))
    -- Ctrl-P recalls the last line of the previous session; a new line is appended.
    terminal({PROMPT, send("\16\r"), expect("from history\n"), PROMPT,
              send("print('second ' .. 'run')\r"), expect("second run\n"), PROMPT, {"eof"}},
             nil, env)
    assert.are.same({"print('from ' .. 'history')", "print('second ' .. 'run')"},
                    H.lines(H.read_file(home .. "/.sluice_history")))
    os.remove(home .. "/.sluice_history")
    os.remove(home)
  end, {timeout = 60})
end)
