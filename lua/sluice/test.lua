-- The spec runner behind `sluice test`: busted's language on the sluice loop, each test a
-- task with a deadline. main() is called by the C entry point inside the main task.

local sl = require "sluice"
local dsl = require "sluice.test.dsl"
local options = require "sluice.test.options"
local files = require "sluice.test.files"
local output = require "sluice.test.output"
local Runner = require "sluice.test.exec"

local M = {}

local function warn(msg)
  io.stderr:write("sluice test: ", msg, "\n")
end

--- Makes describe/it/assert/... globals, as busted does, and returns the API table.
function M.install_globals()
  local api = dsl.api()
  for k, v in pairs(api) do _G[k] = v end
  return api
end

-- Runs the --helper file before the specs; false and a message if it fails.
local function run_helper(path)
  local chunk, err = loadfile(path, "bt")
  if not chunk then return false, err end
  local ok, herr = xpcall(chunk, debug.traceback)
  if not ok then return false, tostring(herr) end
  return true
end

--- Runs `sluice test` with the words after "test"; returns the exit status, 0 when
--- everything passed and 1 otherwise. The last line written is the summary
--- "N passed, N failed[, N skipped]" (on stderr for the json and junit outputs).
function M.main(args)
  args = args or {}
  local opts, err = options.process(args, warn)
  if not opts then
    warn(err)
    return 1
  end
  if opts.help then
    io.stdout:write(options.usage(), "\n")
    return 0
  end
  local out, oerr = output.new(opts.output, opts)
  if not out then
    warn(oerr)
    return 1
  end
  if opts.lpath then package.path = opts.lpath .. ";" .. package.path end
  if opts.cpath then package.cpath = opts.cpath .. ";" .. package.cpath end
  if opts.lazy then dsl.setup_slot, dsl.teardown_slot = "lazy_setup", "lazy_teardown" end
  local shuffling = opts.shuffle_files or opts.shuffle_tests
  if shuffling and not opts.seed then opts.seed = os.time() end
  M.install_globals()

  local paths = #opts.paths > 0 and opts.paths or {"spec"}
  local found, missing = files.find(paths, opts.pattern, opts.exclude_pattern)
  local runner = Runner.new(opts, out)
  local start = sl.now()
  out:start({seed = shuffling and opts.seed or nil, files = found})
  for _, m in ipairs(missing) do
    runner:record({kind = "block", name = m.path, file = m.path, line = 0, phase = "load",
                   problems = {{kind = "error", message = m.message}}, duration = 0})
  end
  local interrupted = false
  if opts.helper then
    local ok, herr = run_helper(opts.helper)
    if not ok then
      runner:record({kind = "block", name = opts.helper, file = opts.helper, line = 0,
                     phase = "helper", problems = {{kind = "error", message = herr}},
                     duration = 0})
      runner.stop = true
    end
  end
  local ok, rerr = xpcall(runner.run_files, debug.traceback, runner, found)
  if not ok then
    -- Only a cancellation of the runner's own task (Ctrl-C) or a bug in the runner gets
    -- here; either way the results so far are still reported.
    interrupted = true
    if not sl.is_cancelled(rerr) then warn("internal error: " .. tostring(rerr)) end
  end
  if opts.list then
    return (runner.counts.errors + runner.counts.failures) == 0 and 0 or 1
  end
  local c = runner.counts
  local summary = {passed = c.passed, failures = c.failures, errors = c.errors,
                   skipped = c.skipped, duration = sl.now() - start,
                   seed = shuffling and opts.seed or nil, results = runner.results,
                   interrupted = interrupted}
  out:finish(summary)
  local breakdown, last = output.summary_lines(summary)
  out.stream:write(breakdown, "\n", last, "\n")
  out.stream:flush()
  return (c.failures + c.errors == 0 and not interrupted) and 0 or 1
end

return M
