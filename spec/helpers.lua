-- Shared helpers for specs: children sluice runs, temporary files, fixtures, text and fail
-- triple assertions (`local H = require "spec.helpers"`; the specs run from the
-- repository's root).
local H = {}

--- The binary children run: SLUICE_BIN (make asan sets ./sluice-asan), else the binary that
--- runs these specs (so `/path/to/other/sluice test spec/x_spec.lua` tests that binary
--- throughout, children included), else ./sluice.
H.bin = os.getenv("SLUICE_BIN") or (arg and arg[-1]) or "./sluice"

--- Quotes s for /bin/sh.
function H.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Returns the whole content of path, or "" if it cannot be read.
function H.read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

--- Writes s to path (binary, so "\r\n" stays as written).
function H.write_file(path, s)
  local f = assert(io.open(path, "wb"))
  assert(f:write(s))
  assert(f:close())
end

--- A new temporary file holding s (empty if nil); remove it with os.remove.
function H.tmpfile(s)
  local path = os.tmpname()
  H.write_file(path, s or "")
  return path
end

--- A new empty directory under /tmp; remove it with `rm -rf`.
function H.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. H.quote(dir)))
  return dir
end

--- Splits s into its lines (without "\n"); a last line without "\n" counts too.
function H.lines(s)
  local t = {}
  for line in s:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  local rest = s:match("[^\n]+$")
  if rest then t[#t + 1] = rest end
  return t
end

--- Runs a /bin/sh snippet; returns its stdout and exit status.
function H.sh(snippet)
  local p = assert(io.popen(snippet, "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

--- Runs `timeout 20 BIN ARGS` (args: a list of words, quoted here). opts.stdin: a string
-- fed as standard input (default: /dev/null, so stdin is never a terminal).
-- Returns {out = stdout, err = stderr, code = exit status}.
function H.run(args, opts)
  opts = opts or {}
  local words = {}
  for i, a in ipairs(args) do words[i] = H.quote(a) end
  local errfile = os.tmpname()
  local infile = opts.stdin and H.tmpfile(opts.stdin)
  local cmd = ("timeout 20 %s %s <%s 2>%s"):format(H.quote(H.bin), table.concat(words, " "),
                                                  H.quote(infile or "/dev/null"),
                                                  H.quote(errfile))
  local out, code = H.sh(cmd)
  local err = H.read_file(errfile)
  os.remove(errfile)
  if infile then os.remove(infile) end
  return {out = out, err = err, code = code}
end

--- Starts `BIN script` in the background, waits until its stdout contains "ready", sends
-- SIGINT, and, when opts.again names a string, waits for that string on stdout and sends a
-- second SIGINT. Every wait polls a condition a bounded number of times (at most ~10 s),
-- and gives up early if the child has already ended. Returns {out, err, code, ms} where
-- ms is the time from the first SIGINT to the child's exit.
-- `timeout --foreground` forwards the signal to the child only: without it, timeout also
-- signals its process group, and the child could see one Ctrl-C as two.
function H.interrupt(script, opts)
  opts = opts or {}
  local outfile, errfile = os.tmpname(), os.tmpname()
  local lines = {
    "out=" .. H.quote(outfile) .. "; err=" .. H.quote(errfile),
    "timeout --foreground 20 " .. H.quote(H.bin) .. " " .. H.quote(script)
      .. ' >"$out" 2>"$err" </dev/null &',
    "pid=$!",
    "wait_for() {",
    "  i=0",
    '  while ! grep -q "$1" "$out"; do',
    '    kill -0 "$pid" 2>/dev/null || return 1',
    "    i=$((i + 1)); [ $i -gt 1000 ] && return 1",
    "    sleep 0.01",
    "  done",
    "}",
    "wait_for ready",
    "start=$(date +%s%N)",
    'kill -INT "$pid"',
  }
  if opts.again then
    lines[#lines + 1] = "wait_for " .. H.quote(opts.again)
    lines[#lines + 1] = 'kill -INT "$pid"'
  end
  lines[#lines + 1] = 'wait "$pid"; status=$?'
  lines[#lines + 1] = "end=$(date +%s%N)"
  lines[#lines + 1] = 'echo "$status $(( (end - start) / 1000000 ))"'
  local report = H.sh(table.concat(lines, "\n"))
  local code, ms = report:match("^(%d+) (%d+)")
  local r = {out = H.read_file(outfile), err = H.read_file(errfile),
             code = tonumber(code), ms = tonumber(ms)}
  os.remove(outfile)
  os.remove(errfile)
  return r
end

--- Inside a task: checks cond() every 10 ms for at most `secs` seconds (a bounded wait for
-- something another process does); true once it holds.
function H.poll(cond, secs)
  local sleep = require("sluice").sleep
  for _ = 1, math.ceil(secs * 100) do
    if cond() then return true end
    sleep(0.01)
  end
  return cond()
end

--- Starts `BIN ARGS` in the background inside a running test (args: a list of words, quoted
-- here; stdin /dev/null). Returns {pid, out = a file with its stdout, err = one with its
-- stderr, status = one that gets its exit status}. When the test ends, however it ends, the
-- process is killed (SIGKILL) if still running and the files are removed.
function H.spawn(args)
  local p = {status = os.tmpname(), err = os.tmpname(), pidfile = os.tmpname(),
             out = os.tmpname()}
  os.remove(p.status)
  os.remove(p.pidfile)
  local words = {}
  for i, a in ipairs(args) do words[i] = H.quote(a) end
  -- the subshell writes its pid and execs the binary, so p.pid is the binary's own
  os.execute(("(sh -c 'echo $$ >%s; exec \"$0\" \"$@\"' %s %s </dev/null >%s 2>%s; "
              .. "echo $? >%s) >/dev/null 2>&1 &")
             :format(H.quote(p.pidfile), H.quote(H.bin), table.concat(words, " "),
                     H.quote(p.out), H.quote(p.err), H.quote(p.status)))
  assert(H.poll(function() return H.read_file(p.pidfile):find("\n") end, 5))
  p.pid = assert(tonumber(H.read_file(p.pidfile):match("%d+")))
  finally(function()
    if not H.exited(p) then os.execute("kill -9 " .. p.pid .. " 2>/dev/null") end
    for _, f in ipairs{p.status, p.err, p.pidfile, p.out} do os.remove(f) end
  end)
  return p
end

--- The exit status of a process H.spawn started, or nil while it runs.
function H.exited(p)
  local s = H.read_file(p.status)
  return s:find("\n") and tonumber(s:match("%d+")) or nil
end

--- Waits at most secs seconds for a process H.spawn started to end (the test fails if it
-- does not); returns its exit status.
function H.wait(p, secs)
  assert(H.poll(function() return H.exited(p) ~= nil end, secs),
         ("the process did not end within %g s"):format(secs))
  return H.exited(p)
end

--- scripts/testsite.lua's module (loaded on first use, then shared).
local testsite
function H.testsite()
  testsite = testsite or dofile("scripts/testsite.lua")
  return testsite
end

--- Starts scripts/testsite.lua's site with these options (see its start) inside a running
-- test; the site is closed when the test ends, even when it fails.
function H.site(opts)
  local site = assert(H.testsite().start(opts))
  finally(function() site:close(1) end)
  return site
end

--- Returns fixture(name) -> dir .. name .. ".lua", for the fixtures under dir.
function H.fixtures(dir)
  return function(name) return dir .. name .. ".lua" end
end

--- Asserts that an HTTP client call failed with code, from its fail triple:
--- `H.fails("EMSGSIZE", http.get(url))`; returns the error message, which starts "CODE:".
function H.fails(code, res, err, c)
  assert.is_nil(res, "expected a failure, got a response")
  assert.equals(code, c, "expected " .. code .. ", got " .. tostring(err))
  assert.equals(code .. ":", err:match("^%u+:"))
  return err
end

--- GETs url without following redirects; the response, or raises the error.
function H.get(url)
  return assert(require("sluice.http").get(url, {max_redirects = 0}))
end

--- The number of keys in t.
function H.nkeys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

--- Asserts that needle occurs in haystack as plain text.
function H.has(needle, haystack)
  assert(haystack:find(needle, 1, true),
         ("expected to find %q in:\n%s"):format(needle, haystack))
end

--- Asserts that needle does not occur in haystack.
function H.hasnt(needle, haystack)
  assert(not haystack:find(needle, 1, true),
         ("did not expect %q in:\n%s"):format(needle, haystack))
end

--- Counts the plain-text occurrences of needle in haystack.
function H.count(needle, haystack)
  local n, i = 0, 1
  while true do
    local s, e = haystack:find(needle, i, true)
    if not s then return n end
    n, i = n + 1, e + 1
  end
end

return H
