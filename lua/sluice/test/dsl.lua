-- The spec language: describe/it/pending/hooks build a tree of blocks and tests that
-- sluice.test.exec runs. Also the table `require "busted"` returns.

local errors = require "sluice.test.errors"

local M = {}

-- What is being built or run right now. The runner runs one thing at a time, so plain
-- module state is enough: `block` receives registrations, `test` is the running test.
M.state = {block = nil, test = nil}

local HOOKS = {"before_each", "after_each", "strict_setup", "lazy_setup",
               "strict_teardown", "lazy_teardown"}

--- Creates a block node. kind: "file" | "describe" | "insulate" | "expose".
function M.new_block(kind, name, fn, parent, where, opts)
  local b = {kind = kind, name = name, fn = fn, parent = parent, children = {},
             file = where and where.file, line = where and where.line, opts = opts or {}}
  for _, h in ipairs(HOOKS) do b[h] = {} end
  return b
end

-- Location of the spec line that called an API function (two levels up from here).
local function caller()
  local info = debug.getinfo(3, "Sl")
  return {file = info.short_src, line = info.currentline}
end

local function current_block(fname)
  if M.state.test then
    error(fname .. "() cannot be called inside a running test", 3)
  end
  local b = M.state.block
  if not b then
    error(fname .. "() must be called while a spec file or describe block is being loaded", 3)
  end
  return b
end

-- Checks the options table of it/describe: nil or {timeout = positive seconds}.
local function check_opts(opts, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(fname .. "(): the options must be a table such as {timeout = 10}, got "
          .. type(opts), 3)
  end
  for k, v in pairs(opts) do
    if k ~= "timeout" then
      error(("%s(): unknown option '%s' (the only option is timeout)"):format(fname, tostring(k)), 3)
    end
    if type(v) ~= "number" or not (v > 0) then
      error(fname .. "(): timeout must be a positive number of seconds, got " .. tostring(v), 3)
    end
  end
  return opts
end

-- Accepts (name, fn, opts) and, for insulate/expose, (fn) alone.
local function block_api(kind, fname)
  return function(name, fn, opts)
    if type(name) == "function" then name, fn, opts = nil, name, fn end
    local parent = current_block(fname)
    if name ~= nil and type(name) ~= "string" then
      error(fname .. "(): the name must be a string, got " .. type(name), 2)
    end
    if type(fn) ~= "function" then
      error(fname .. "(): expected a function as the body, got " .. type(fn), 2)
    end
    opts = check_opts(opts, fname)
    local b = M.new_block(kind, name or kind, fn, parent, caller(), opts)
    b.anonymous = name == nil
    parent.children[#parent.children + 1] = b
  end
end

M.describe = block_api("describe", "describe")
M.context = M.describe
M.insulate = block_api("insulate", "insulate")
M.expose = block_api("expose", "expose")

--- it(name, fn [, opts]): registers a test; without fn the test is pending.
--- opts.timeout overrides the per-test timeout (seconds).
function M.it(name, fn, opts)
  local parent = current_block("it")
  if type(name) ~= "string" then
    error("it(): the name must be a string, got " .. type(name), 2)
  end
  if fn ~= nil and type(fn) ~= "function" then
    error("it(): expected a function as the body, got " .. type(fn), 2)
  end
  opts = check_opts(opts, "it")
  local where = caller()
  parent.children[#parent.children + 1] = {
    kind = "test", name = name, fn = fn, parent = parent, opts = opts,
    file = where.file, line = where.line, pending = fn == nil and "not implemented" or nil,
  }
end
M.spec = M.it
M.test = M.it

--- pending(name): outside a test, registers a pending test; inside a running test,
--- stops it and marks it pending with `name` as the reason.
function M.pending(name)
  if M.state.test then error(errors.pending(name), 0) end
  local parent = current_block("pending")
  local where = caller()
  parent.children[#parent.children + 1] = {
    kind = "test", name = tostring(name), parent = parent, opts = {},
    file = where.file, line = where.line, pending = "pending",
  }
end

local function hook_api(slot, fname)
  return function(fn)
    local b = current_block(fname)
    if type(fn) ~= "function" then
      error(fname .. "(): expected a function, got " .. type(fn), 2)
    end
    local where = caller()
    local list = b[slot == "setup" and M.setup_slot or slot == "teardown" and M.teardown_slot
                   or slot]
    list[#list + 1] = {fn = fn, file = where.file, line = where.line, name = fname}
  end
end

-- `setup`/`teardown` are strict unless the runner was started with --lazy (as in busted).
M.setup_slot, M.teardown_slot = "strict_setup", "strict_teardown"

M.before_each = hook_api("before_each", "before_each")
M.after_each = hook_api("after_each", "after_each")
M.setup = hook_api("setup", "setup")
M.teardown = hook_api("teardown", "teardown")
M.lazy_setup = hook_api("lazy_setup", "lazy_setup")
M.lazy_teardown = hook_api("lazy_teardown", "lazy_teardown")
M.strict_setup = hook_api("strict_setup", "strict_setup")
M.strict_teardown = hook_api("strict_teardown", "strict_teardown")

--- finally(fn): inside a running test, registers fn to run after the test and its
--- after_each hooks, whatever the outcome (last registered runs first).
function M.finally(fn)
  local t = M.state.test
  if not t then error("finally() can only be called inside a running test", 2) end
  if type(fn) ~= "function" then
    error("finally(): expected a function, got " .. type(fn), 2)
  end
  local where = caller()
  t.finally[#t.finally + 1] = {fn = fn, file = where.file, line = where.line, name = "finally"}
end

--- randomize([on]): inside a describe, shuffle the order of its children (default on).
function M.randomize(on)
  current_block("randomize").randomize = on ~= false
end

--- Full name of a node: the names of its enclosing describes and its own, space separated.
function M.full_name(node)
  local parts = {}
  while node and node.kind ~= "file" do
    if not node.anonymous then table.insert(parts, 1, node.name) end
    node = node.parent
  end
  return table.concat(parts, " ")
end

--- Tags of a test: every `#word` in its full name.
function M.tags(node)
  local tags = {}
  for tag in M.full_name(node):gmatch("#([%w_%-%.]+)") do tags[tag] = true end
  return tags
end

--- The effective timeout of a node: its own opts.timeout or the nearest enclosing one.
function M.timeout_of(node, default)
  while node do
    if node.opts and node.opts.timeout then return node.opts.timeout end
    node = node.parent
  end
  return default
end

--- The public API, as globals in specs and as `require "busted"`.
function M.api()
  local api = {}
  for _, k in ipairs{"describe", "context", "insulate", "expose", "it", "spec", "test",
                     "pending", "before_each", "after_each", "setup", "teardown",
                     "lazy_setup", "lazy_teardown", "strict_setup", "strict_teardown",
                     "finally", "randomize"} do
    api[k] = M[k]
  end
  errors.patch_luassert()
  api.assert = require "luassert"
  api.spy = require "luassert.spy"
  api.stub = require "luassert.stub"
  api.mock = require "luassert.mock"
  api.match = require "luassert.match"
  return api
end

return M
