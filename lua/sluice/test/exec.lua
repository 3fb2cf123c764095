-- Runs spec files: each hook and each test body in its own task under a deadline, then
-- reports (and cancels) the tasks a test left behind, and reports the libuv handles it left
-- open. Results go to an output handler.

local sl = require "sluice"
local dsl = require "sluice.test.dsl"
local errors = require "sluice.test.errors"
local insulate = require "sluice.test.insulate"
local output = require "sluice.test.output"
local tasks = require "sluice.test.tasks"
local astate = require "luassert.state"

local Runner = {}
Runner.__index = Runner

local function now() return sl.now() end

-- A small seeded generator (xorshift64), so that shuffling is reproducible with --seed
-- and does not disturb (nor depend on) the math.random state the specs use.
local function new_rng(seed)
  local x = (seed ~ 0x2545F4914F6CDD1D)
  if x == 0 then x = 1 end
  return function(n)
    x = x ~ (x << 13); x = x ~ (x >> 7); x = x ~ (x << 17)
    return x % n + 1
  end
end

local function shuffled(list, rng)
  local out = table.move(list, 1, #list, 1, {})
  for i = #out, 2, -1 do
    local j = rng(i)
    out[i], out[j] = out[j], out[i]
  end
  return out
end

--- Creates a runner. opts: the parsed options (see sluice.test.options); out: an output
--- handler with start/result/finish methods.
function Runner.new(opts, out)
  return setmetatable({opts = opts, out = out, stop = false, insulations = {},
                       handle_baselines = {},
                       counts = {passed = 0, failures = 0, errors = 0, skipped = 0},
                       results = {}, rng = new_rng(opts.seed or 0)}, Runner)
end

---------------------------------------------------------------------------------------------
-- Selection and recording

--- True when the test passes --tags, --exclude-tags, --filter and --filter-out.
function Runner:selected(test)
  local o = self.opts
  local name = dsl.full_name(test)
  if #o.tags > 0 or #o.exclude_tags > 0 then
    local tags = dsl.tags(test)
    for _, t in ipairs(o.exclude_tags) do
      if tags[t] then return false end
    end
    if #o.tags > 0 then
      local any = false
      for _, t in ipairs(o.tags) do any = any or tags[t] == true end
      if not any then return false end
    end
  end
  for _, pat in ipairs(o.filter_out) do
    if name:find(pat) then return false end
  end
  if #o.filter > 0 then
    for _, pat in ipairs(o.filter) do
      if name:find(pat) then return true end
    end
    return false
  end
  return true
end

-- A result's status from its problems: any error wins over failures, failures over pending.
local function status_of(problems)
  local status = "success"
  for _, p in ipairs(problems) do
    if p.kind == "error" then return "error" end
    if p.kind == "failure" then status = "failure"
    elseif p.kind == "pending" and status == "success" then status = "pending" end
  end
  return status
end

--- Counts a result (a test, or a problem of a block) and hands it to the output.
function Runner:record(result)
  result.status = result.status or status_of(result.problems)
  local c = self.counts
  if result.status == "success" then c.passed = c.passed + 1
  elseif result.status == "failure" then c.failures = c.failures + 1
  elseif result.status == "pending" then c.skipped = c.skipped + 1
  else c.errors = c.errors + 1 end
  self.results[#self.results + 1] = result
  if self.opts.list then
    -- Listing runs no test, so only problems of files and blocks get here.
    io.stderr:write(output.title(result), ": ",
                    tostring(result.problems[1].message), "\n")
  else
    self.out:result(result)
  end
  if not self.opts.keep_going and (result.status == "failure" or result.status == "error") then
    self.stop = true
  end
end

-- Records a problem of a block as a result of its own (load errors, setup/teardown).
function Runner:block_error(block, phase, p, hook)
  if p.kind == "pending" then
    p = {kind = "error", message = "pending() called outside a test: " .. p.message}
  end
  p.phase, p.hook = phase, hook
  local name = block.kind == "file" and block.name or dsl.full_name(block)
  self:record({kind = "block", name = name, file = block.file, line = block.line,
               phase = phase, problems = {p}, duration = 0})
end

---------------------------------------------------------------------------------------------
-- Tests and blocks

-- Spies and stubs made in a test (or a block's hooks) are reverted when it ends, as busted
-- does, through luassert's snapshots. pcall: a spec may have reverted them already.
local function snapshot() return astate.snapshot() end
local function revert(snap) pcall(astate.revert, snap) end

-- Enclosing blocks of a node, outermost first.
local function chain_of(node)
  local chain = {}
  local b = node.parent
  while b do table.insert(chain, 1, b); b = b.parent end
  return chain
end

-- Runs the lazy setups of every enclosing block that has not run them yet (busted's lazy
-- semantics: only when a test under the block actually runs). False if one failed.
function Runner:ensure_lazy(chain, source)
  for _, b in ipairs(chain) do
    if b.lazy_state == "failed" then return false end
    if not b.lazy_state then
      b.lazy_state = "ran"
      for _, h in ipairs(b.lazy_setup) do
        local p = tasks.phase(h.fn, dsl.timeout_of(b, self.opts.timeout), source)
        if p then
          b.lazy_state = "failed"
          self:block_error(b, h.name, p, h)
          return false
        end
      end
    end
  end
  return true
end

-- Runs a list of hooks in order, adding their problems to `problems`; stops at the first
-- problem when `stop_early` (before_each) and reports whether all succeeded.
function Runner:hooks(list, timeout, source, problems, stop_early)
  for _, h in ipairs(list) do
    local p = tasks.phase(h.fn, timeout, source)
    if p then
      p.phase, p.hook = h.name, h
      problems[#problems + 1] = p
      if stop_early then return false end
    end
  end
  return true
end

--- Runs one test with its before_each/after_each hooks and finally callbacks.
function Runner:run_test(test, source)
  if not self:selected(test) then return end
  local result = {kind = "test", node = test, name = dsl.full_name(test), file = test.file,
                  line = test.line, problems = {}, duration = 0}
  if self.opts.list then
    self.out:list(result)
    return
  end
  if test.pending then
    result.status = "pending"
    result.problems[1] = {kind = "pending", message = test.pending}
    return self:record(result)
  end
  local chain = chain_of(test)
  if not self:ensure_lazy(chain, source) then return end
  local timeout = dsl.timeout_of(test, self.opts.timeout)
  local problems = result.problems
  local start = now()
  local baseline = tasks.set()
  local handles = tasks.handles()
  local snap = snapshot()
  test.finally = {}
  dsl.state.test = test
  local ok = true
  for _, b in ipairs(chain) do
    ok = ok and self:hooks(b.before_each, timeout, source, problems, true)
  end
  if ok then
    local p = tasks.phase(test.fn, timeout, source)
    if p then problems[#problems + 1] = p end
  end
  for i = #chain, 1, -1 do
    self:hooks(chain[i].after_each, timeout, source, problems)
  end
  for i = #test.finally, 1, -1 do
    self:hooks({test.finally[i]}, timeout, source, problems)
  end
  dsl.state.test = nil
  revert(snap)
  local p = tasks.leftovers(baseline, "the test")
  if p then problems[#problems + 1] = p end
  p = tasks.leaked_handles(handles, "the test", self.handle_baselines)
  if p then problems[#problems + 1] = p end
  result.duration = now() - start
  self:record(result)
end

--- Runs a block: its body (which registers children), setups, children, teardowns.
--- Insulating blocks (and files, unless --no-auto-insulate) restore the globals afterwards.
function Runner:run_block(block, source)
  if self.stop then return end
  local insulating = block.kind == "insulate"
    or (block.kind == "file" and self.opts.auto_insulate)
  local snap = (insulating or block.kind == "expose") and insulate.save()
  if insulating then table.insert(self.insulations, snap) end
  local baseline = tasks.set()
  local handles = tasks.handles()
  table.insert(self.handle_baselines, handles)
  local spies = snapshot()

  local prev = dsl.state.block
  dsl.state.block = block
  local ok, p = xpcall(block.fn, errors.handler_for(source))
  dsl.state.block = prev
  if not ok then
    self:block_error(block, block.kind == "file" and "load" or block.kind, p)
  else
    local timeout = dsl.timeout_of(block, self.opts.timeout)
    local problems = {}
    local children = block.children
    if block.randomize or self.opts.shuffle_tests then children = shuffled(children, self.rng) end
    local run = self.opts.list or self:hooks(block.strict_setup, timeout, source, problems, true)
    for _, child in ipairs(children) do
      if not run or self.stop then break end
      if child.kind == "test" then self:run_test(child, source)
      else self:run_block(child, source) end
    end
    if not self.opts.list then
      self:hooks(block.strict_teardown, timeout, source, problems)
      if block.lazy_state == "ran" then
        self:hooks(block.lazy_teardown, timeout, source, problems)
      end
    end
    for _, prob in ipairs(problems) do self:block_error(block, prob.phase, prob, prob.hook) end
  end
  revert(spies)
  local left = tasks.leftovers(baseline, block.kind == "file" and "the file" or "the block")
  if left then self:block_error(block, "teardown", left) end
  table.remove(self.handle_baselines)
  left = tasks.leaked_handles(handles, block.kind == "file" and "the file" or "the block",
                              self.handle_baselines)
  if left then self:block_error(block, "teardown", left) end

  if insulating then
    table.remove(self.insulations)
    insulate.restore(snap)
  elseif snap then
    insulate.expose(snap, self.insulations)
  end
end

--- Loads and runs one spec file; a file that does not compile is reported as an error.
function Runner:run_file(path)
  local chunk, err = loadfile(path, "bt")
  local block = dsl.new_block("file", path, chunk, nil, {file = path, line = 0})
  if not chunk then
    return self:block_error(block, "load", {kind = "error", message = err})
  end
  self:run_block(block, "@" .. path)
end

--- Runs every file in order (shuffled with --shuffle-files); returns the counts.
function Runner:run_files(files)
  if self.opts.shuffle_files then files = shuffled(files, self.rng) end
  for _, path in ipairs(files) do
    if self.stop then break end
    self:run_file(path)
  end
  return self.counts
end

return Runner
