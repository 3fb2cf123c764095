-- Command-line options of `sluice test` and the `.busted` config file: one table of option
-- descriptions drives parsing, validation, config keys and the help text.

local output = require "sluice.test.output"

local M = {}

-- Each option: long name, short letter, kind, value name, help.
-- Kinds: flag (with --no-NAME to turn off), value, number, integer, list (comma-separated,
-- repeatable, accumulates), multi (repeatable, accumulates, no comma splitting).
local SPEC = {
  {"output", "o", "value", "NAME", "output format: " .. table.concat(output.names(), ", ")
    .. " (default plainTerminal)"},
  {"verbose", "v", "flag", nil, "one line per test, with its time"},
  {"list", "l", "flag", nil, "list the selected tests (file:line: name) instead of running"},
  {"pattern", "p", "value", "LUAPAT", "file name pattern for directories (default _spec%.lua$)"},
  {"exclude-pattern", nil, "multi", "LUAPAT", "skip files (in directories) matching this"},
  {"tags", "t", "list", "TAGS", "run only tests with one of these #tags (comma-separated)"},
  {"exclude-tags", nil, "list", "TAGS", "skip tests with one of these #tags"},
  {"filter", nil, "multi", "LUAPAT", "run only tests whose full name matches (repeatable)"},
  {"filter-out", nil, "multi", "LUAPAT", "skip tests whose full name matches (repeatable)"},
  {"timeout", nil, "number", "S", "deadline of each test and hook in seconds (default 5)"},
  {"shuffle", nil, "flag", nil, "shuffle files and tests (same as both options below)"},
  {"shuffle-files", nil, "flag", nil, "run files in random order"},
  {"shuffle-tests", nil, "flag", nil, "run the tests of each block in random order"},
  {"seed", nil, "integer", "N", "seed for the shuffles (default: the time)"},
  {"lazy", nil, "flag", nil, "setup/teardown mean lazy_setup/lazy_teardown"},
  {"auto-insulate", nil, "flag", nil, "insulate each file (default on; --no-auto-insulate)"},
  {"keep-going", nil, "flag", nil, "go on after a failure (default on; --no-keep-going)"},
  {"fail-fast", nil, "flag", nil, "stop after the first failure or error"},
  {"lpath", "m", "value", "PATH", "prepend to package.path (e.g. './src/?.lua')"},
  {"cpath", nil, "value", "PATH", "prepend to package.cpath"},
  {"helper", nil, "value", "FILE", "Lua file to run before the specs"},
  {"run", "r", "value", "NAME", "profile of the .busted file to use (default 'default')"},
  {"config-file", "f", "value", "FILE", "config file instead of ./.busted"},
  {"help", "h", "flag", nil, "show this help"},
}

local BY_LONG, BY_SHORT = {}, {}
for _, o in ipairs(SPEC) do
  local opt = {long = o[1], short = o[2], kind = o[3], arg = o[4], help = o[5],
               key = o[1]:gsub("-", "_")}
  BY_LONG[opt.long] = opt
  if opt.short then BY_SHORT[opt.short] = opt end
end

--- Fresh options with the defaults.
function M.defaults()
  return {paths = {}, output = "plainTerminal", pattern = "_spec%.lua$", tags = {},
          exclude_pattern = {},
          exclude_tags = {}, filter = {}, filter_out = {}, timeout = 5, auto_insulate = true,
          keep_going = true, run = "default", config_file = ".busted"}
end

--- The help text.
function M.usage()
  local lines = {"usage: sluice test [options] [files or directories...]",
                 "Runs the *_spec.lua files under spec/ (or the given paths) as busted would,",
                 "each test as a task with a deadline. Options:"}
  for _, o in ipairs(SPEC) do
    local left = (o[2] and ("-" .. o[2] .. ", ") or "    ") .. "--" .. o[1]
      .. (o[4] and (" " .. o[4]) or "")
    lines[#lines + 1] = ("  %-30s %s"):format(left, o[5])
  end
  lines[#lines + 1] = "Per test: it(name, fn, {timeout = S}); per block: describe(name, fn, {timeout = S})."
  lines[#lines + 1] = "Options also come from the 'default' profile of ./.busted (a Lua file returning"
  lines[#lines + 1] = "{default = {verbose = true, ROOT = {'spec'}, ...}}); the command line wins."
  lines[#lines + 1] = "Exit status 0 when everything passed, else 1; the last line of output is"
  lines[#lines + 1] = "'N passed, N failed' (', N skipped' added), on stderr for json and junit."
  return table.concat(lines, "\n")
end

local function split_list(v)
  local out = {}
  for item in tostring(v):gmatch("[^,]+") do
    item = item:match("^%s*(.-)%s*$"):gsub("^#", "")
    if item ~= "" then out[#out + 1] = item end
  end
  return out
end

-- Stores one value into opts, converting and checking it; returns nil, message on error.
local function set(opts, opt, value, from)
  local k = opt.key
  if opt.kind == "flag" then
    if type(value) ~= "boolean" then
      return nil, ("%s: option '%s' takes true or false"):format(from, opt.long)
    end
    if k == "shuffle" then opts.shuffle_files, opts.shuffle_tests = value, value
    elseif k == "fail_fast" then opts.keep_going = not value
    else opts[k] = value end
  elseif opt.kind == "number" or opt.kind == "integer" then
    local n = tonumber(value)
    if not n or (opt.kind == "integer" and math.type(n) ~= "integer")
      or (k == "timeout" and n <= 0) then
      return nil, ("%s: option '%s' needs a %s, got '%s'"):format(from, opt.long,
        k == "timeout" and "positive number of seconds" or opt.kind, tostring(value))
    end
    opts[k] = n
  elseif opt.kind == "list" or opt.kind == "multi" then
    local items = type(value) == "table" and value or {value}
    for _, v in ipairs(items) do
      if opt.kind == "list" then
        for _, item in ipairs(split_list(v)) do opts[k][#opts[k] + 1] = item end
      else
        opts[k][#opts[k] + 1] = tostring(v)
      end
    end
  else
    opts[k] = tostring(value)
  end
  return true
end

--- Parses the words after `sluice test`. Returns opts, or nil and a message.
--- Command-line values are applied on top of `base` (the config file's), if given.
function M.parse(args, base)
  local opts = base or M.defaults()
  local cli_lists = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value, opt
    if a == "--" then
      table.move(args, i + 1, #args, #opts.paths + 1, opts.paths)
      break
    elseif a:sub(1, 2) == "--" then
      name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      opt = BY_LONG[name]
      if not opt and name:sub(1, 3) == "no-" and BY_LONG[name:sub(4)]
        and BY_LONG[name:sub(4)].kind == "flag" and not value then
        opt, value = BY_LONG[name:sub(4)], false
      end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      opt = BY_SHORT[a:sub(2, 2)]
      name = a:sub(2, 2)
      if #a > 2 then value = a:sub(3) end
    else
      opts.paths[#opts.paths + 1] = a
    end
    if name then
      if not opt then return nil, ("unknown option '%s' (see sluice test --help)"):format(a) end
      if opt.kind == "flag" then
        if value == nil then value = true
        elseif type(value) == "string" then
          return nil, ("option '%s' takes no value"):format(opt.long)
        end
      elseif value == nil then
        i = i + 1
        value = args[i]
        if value == nil then return nil, ("option '%s' needs a value"):format(opt.long) end
      end
      -- A list given on the command line replaces the config file's instead of adding to it.
      if (opt.kind == "list" or opt.kind == "multi") and not cli_lists[opt.key] then
        cli_lists[opt.key] = true
        opts[opt.key] = {}
      end
      local ok, err = set(opts, opt, value, "command line")
      if not ok then return nil, err end
    end
    i = i + 1
  end
  for _, pat in ipairs(opts.filter) do
    if not pcall(string.find, "", pat) then return nil, ("bad --filter pattern '%s'"):format(pat) end
  end
  for _, pat in ipairs(opts.filter_out) do
    if not pcall(string.find, "", pat) then return nil, ("bad --filter-out pattern '%s'"):format(pat) end
  end
  if not pcall(string.find, "", opts.pattern) then
    return nil, ("bad --pattern '%s'"):format(opts.pattern)
  end
  for _, pat in ipairs(opts.exclude_pattern) do
    if not pcall(string.find, "", pat) then
      return nil, ("bad --exclude-pattern '%s'"):format(pat)
    end
  end
  return opts
end

-- Applies one profile table of a config file to opts.
local function apply_profile(opts, profile, from, warn)
  for k, v in pairs(profile) do
    if k == "ROOT" then
      opts.paths = type(v) == "table" and table.move(v, 1, #v, 1, {}) or {tostring(v)}
    else
      local opt = BY_LONG[tostring(k):gsub("_", "-")] or BY_SHORT[k]
      if not opt then
        warn(("%s: ignoring unknown option '%s'"):format(from, tostring(k)))
      else
        local ok, err = set(opts, opt, v, from)
        if not ok then return nil, err end
      end
    end
  end
  return true
end

--- Reads the config file (default ./.busted; a missing default is fine) into fresh
--- options: the `_all` profile, then the chosen one. Returns opts or nil, message.
--- `profile` and `file` come from a first pass over the command line (-r, -f).
function M.load_config(file, profile, warn)
  local opts = M.defaults()
  local path = file or ".busted"
  local f = io.open(path, "r")
  if not f then
    if file and file ~= ".busted" then return nil, ("cannot open config file '%s'"):format(path) end
    return opts
  end
  f:close()
  local chunk, err = loadfile(path, "t")
  if not chunk then return nil, ("config file: %s"):format(err) end
  local ok, conf = pcall(chunk)
  if not ok then return nil, ("config file %s: %s"):format(path, tostring(conf)) end
  if type(conf) ~= "table" then
    return nil, ("config file %s must return a table of profiles"):format(path)
  end
  local name = profile or "default"
  if profile and profile ~= "default" and type(conf[profile]) ~= "table" then
    return nil, ("config file %s has no profile '%s'"):format(path, profile)
  end
  for _, pname in ipairs{"_all", name} do
    if type(conf[pname]) == "table" then
      local good, perr = apply_profile(opts, conf[pname], path .. " [" .. pname .. "]", warn)
      if not good then return nil, perr end
    end
  end
  return opts
end

--- Full option processing: finds -r/-f on the command line, loads the config file, then
--- applies the command line on top. Returns opts or nil, message.
function M.process(args, warn)
  local first, err = M.parse(args)
  if not first then return nil, err end
  if first.help then return first end
  local base, cerr = M.load_config(first.config_file ~= ".busted" and first.config_file or nil,
                                   first.run ~= "default" and first.run or nil, warn)
  if not base then return nil, cerr end
  local config_paths = base.paths
  base.paths = {}
  local opts, perr = M.parse(args, base)
  if not opts then return nil, perr end
  if #opts.paths == 0 then opts.paths = config_paths end
  return opts
end

return M
