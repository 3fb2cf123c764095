-- repl.lua: the REPL (`sluice -i`, or `sluice` alone on a terminal) on the live loop. Each
-- input runs as a task while the tasks started earlier keep running; values are pretty-printed.
-- The C half (engine/repl.c, "sluice.repl_core") reads lines and routes Ctrl-C.
local sl = require "sluice"
local core = require "sluice.repl_core"

local M = {}

local type, tostring, pcall, xpcall, select = type, tostring, pcall, xpcall, select
local rawget, next, getmetatable = rawget, next, debug.getmetatable
local concat, sort, pack = table.concat, table.sort, table.pack

-- Pretty printing -------------------------------------------------------------------------

local MAX_DEPTH = 5        -- deeper tables show as {...}
local MAX_ITEMS = 100      -- entries shown per table
local WIDTH = 72           -- a table fitting in this many columns stays on one line

local ESCAPES = {["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r", ["\\"] = "\\\\",
                 ['"'] = '\\"', ["\0"] = "\\0"}

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or ("\\%d"):format(c:byte())
  end) .. '"'
end

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
    and not ({["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1, ["elseif"] = 1,
              ["end"] = 1, ["false"] = 1, ["for"] = 1, ["function"] = 1, ["goto"] = 1,
              ["if"] = 1, ["in"] = 1, ["local"] = 1, ["nil"] = 1, ["not"] = 1, ["or"] = 1,
              ["repeat"] = 1, ["return"] = 1, ["then"] = 1, ["true"] = 1, ["until"] = 1,
              ["while"] = 1})[s]
end

-- tostring through a __tostring metamethod, which may fail (or try to wait): never raises.
local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return ("%s (its __tostring failed)"):format(type(v))
end

-- Numbers first (in order), then strings, then the rest by their text; never calls __lt.
local KEY_RANK = {number = 1, string = 2, boolean = 3}
local function key_less(a, b)
  local ra, rb = KEY_RANK[type(a)] or 4, KEY_RANK[type(b)] or 4
  if ra ~= rb then return ra < rb end
  if ra <= 2 then return a < b end
  return safe_tostring(a) < safe_tostring(b)
end

local show

local function show_table(t, depth, path)
  local mt = getmetatable(t)
  if mt and type(rawget(mt, "__tostring")) == "function" then return safe_tostring(t) end
  if path[t] then return "<cycle>" end
  if next(t) == nil then return "{}" end
  if depth >= MAX_DEPTH then return "{...}" end
  path[t] = true
  local items, n = {}, 0
  local len = 0
  while rawget(t, len + 1) ~= nil do len = len + 1 end
  for i = 1, math.min(len, MAX_ITEMS) do
    items[#items + 1] = show(rawget(t, i), depth + 1, path)
  end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= len) then keys[#keys + 1] = k end
  end
  sort(keys, key_less)
  for _, k in ipairs(keys) do
    if #items >= MAX_ITEMS then break end
    local ks = is_identifier(k) and k or "[" .. show(k, MAX_DEPTH, path) .. "]"
    items[#items + 1] = ks .. " = " .. show(rawget(t, k), depth + 1, path)
  end
  n = len + #keys - #items
  if n > 0 then items[#items + 1] = ("... (%d more)"):format(n) end
  path[t] = nil
  local one = "{" .. concat(items, ", ") .. "}"
  if #one <= WIDTH and not one:find("\n", 1, true) then return one end
  return "{\n  " .. concat(items, ",\n"):gsub("\n", "\n  ") .. "\n}"
end

--- Renders a value for the REPL: strings quoted, tables expanded (nesting, cycles as <cycle>,
-- deeper than 5 levels as {...}), other values as tostring shows them.
function show(v, depth, path)
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if tv == "table" then return show_table(v, depth or 0, path or {}) end
  if tv == "function" then
    local info = debug.getinfo(v, "S")
    if info.what ~= "C" then
      return ("%s (%s:%d)"):format(tostring(v), info.short_src, info.linedefined)
    end
  end
  return safe_tostring(v)
end
M.show = show

-- Completion ------------------------------------------------------------------------------

local KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function",
                  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
                  "true", "until", "while"}

-- The fields of v that completion may offer: its own keys (if a table) and those of the
-- __index tables of its metatables. Reads with rawget and next only: no metamethod runs.
local function fields(v, out, seen)
  for _ = 1, 10 do
    if type(v) == "table" and not seen[v] then
      seen[v] = true
      for k, x in next, v do
        if is_identifier(k) and out[k] == nil then out[k] = x end
      end
    end
    local mt = getmetatable(v)
    local index = type(mt) == "table" and rawget(mt, "__index") or nil
    if type(index) ~= "table" then return out end
    v = index
  end
  return out
end

-- Looks a dotted path up from the globals without running any code; nil if it fails.
local function resolve(path)
  local v = _G
  for name in path:gmatch("[^.]+") do
    if not is_identifier(name) then return nil end
    local f = fields(v, {}, {})
    v = f[name]
    if v == nil then return nil end
  end
  return v
end

--- Tab completion: every way to finish `word` (a global, or a path like `sl.sle` or `t:jo`).
-- Functions get "(" appended and tables ".". Never calls user code.
function M.complete(word)
  local prefix, sep, last = word:match("^(.*)([.:])([%w_]*)$")
  local candidates
  if prefix then
    if prefix == "" or not prefix:match("^[%a_][%w_.]*$") or prefix:find("%.%.") then
      return {}
    end
    local v = resolve(prefix)
    if v == nil then return {} end
    candidates = fields(v, {}, {})
  else
    if not word:match("^[%a_]?[%w_]*$") then return {} end
    prefix, sep, last = "", "", word
    candidates = fields(_G, {}, {})
    for _, k in ipairs(KEYWORDS) do candidates[k] = candidates[k] or false end
  end
  local out = {}
  for k, v in pairs(candidates) do
    if k:sub(1, #last) == last and (sep ~= ":" or type(v) == "function") then
      local tail = type(v) == "function" and "(" or (type(v) == "table" and sep ~= ":") and "."
                   or ""
      out[#out + 1] = prefix .. sep .. k .. tail
    end
  end
  sort(out)
  return out
end

-- tasks() ---------------------------------------------------------------------------------

--- tasks(): prints every task alive (except the REPL itself) with its state, where it waits
-- and the line of user code it is at.
function M.tasks()
  local list = core.tasks()
  local shown = 0
  for _, d in ipairs(list) do
    if shown >= 50 then
      print(("... and %d more"):format(#list - shown))
      break
    end
    shown = shown + 1
    local what = d.status
    if d.wait then what = what .. " in " .. d.wait end
    if d.left then what = what .. (" (%.1f s left)"):format(d.left) end
    if d.task == M.input then what = what .. " (this input)" end
    print((("task %-4d %-36s %s%s"):format(d.id, what, d.where or "", d.job and " [job]" or "")
           :gsub("%s+$", "")))
  end
  print(("%d task%s"):format(#list, #list == 1 and "" or "s"))
end

-- Running inputs --------------------------------------------------------------------------

local EXIT = setmetatable({}, {__tostring = function() return "os.exit" end})
local ERR = {}   -- metatable of a formatted error: {text = message and traceback}

-- Error handler of each input: the message with a traceback cut where the REPL's own frames
-- start. Cancellation and os.exit pass through untouched.
local function msgh(e)
  if sl.is_cancelled(e) or e == EXIT then return e end
  local msg
  if type(e) == "string" or type(e) == "number" then
    msg = tostring(e)
  else
    local mt = getmetatable(e)
    msg = mt and rawget(mt, "__tostring") and safe_tostring(e)
          or "(error object is " .. show(e) .. ")"
  end
  local tb = debug.traceback(msg, 2)
  local cut = tb:find("\n\t[C]: in function 'xpcall'", 1, true)
  if cut then tb = tb:sub(1, cut - 1) end
  return setmetatable({text = tb}, ERR)
end

local function input_body(fn)
  return pack(xpcall(fn, msgh))
end

-- Compiles buf as an expression (so its values print) or else as statements. Returns the
-- function, or nil and "incomplete" when more lines are needed, or nil and the error.
local function compile(buf)
  local fn, err1 = load("return " .. buf, "=stdin", "t")
  if fn then return fn end
  local fn2, err2 = load(buf, "=stdin", "t")
  if fn2 then return fn2 end
  if err2:sub(-5) == "<eof>" or err1:sub(-5) == "<eof>" then return nil, "incomplete" end
  return nil, err2
end

local state   -- {tty, exit_code} while main runs

-- Runs one compiled input as a task and shows what came of it.
local function run(fn)
  local t = sl.spawn(input_body, fn)
  M.input = t
  core.set_input(t)
  t:wait()
  local by_ctrl_c = core.set_input(nil)
  M.input = nil
  local ok, r = t:result()
  if ok and r[1] then
    if r.n > 1 then
      local parts = {}
      for i = 2, r.n do parts[i - 1] = show(r[i]) end
      io.stdout:write(concat(parts, "\t"), "\n")
      _G._ = r[2]
    end
    io.stdout:flush()
    return
  end
  local e = ok and r[2] or r
  io.stdout:flush()
  if e == EXIT then return end
  if sl.is_cancelled(e) then
    io.stderr:write(by_ctrl_c and state.tty and "\n" or "", "cancelled\n")
  elseif getmetatable(e) == ERR then
    io.stderr:write(e.text, "\n")
  else
    io.stderr:write(show(e), "\n")
  end
  io.stderr:flush()
end

-- Leaving ---------------------------------------------------------------------------------

-- os.exit inside an input leaves the REPL the way Ctrl-D does (tasks are cancelled and their
-- cleanups run); from any other task it exits at once, as in a script, after putting the
-- terminal back and saving the history.
local real_exit = os.exit
local function repl_exit(code, close)
  if code == nil or code == true then code = 0 elseif code == false then code = 1 end
  if M.input ~= nil and sl.current() == M.input then
    state.exit_code = math.tointeger(code) or 1
    error(EXIT, 0)
  end
  core.stop()
  return real_exit(code, close)
end

-- Cancels every task still running, so that their cleanups run before the process ends.
local function cancel_the_rest()
  local me, n = sl.current(), 0
  local list = sl.tasks()
  for _, t in ipairs(list) do
    if t ~= me and not t:done() then n = n + 1 end
  end
  if n > 0 then
    io.stderr:write(("sluice: cancelling %d running task%s\n"):format(n, n == 1 and "" or "s"))
    io.stderr:flush()
    for _, t in ipairs(list) do
      if t ~= me then t:cancel() end
    end
  end
end

-- The session -----------------------------------------------------------------------------

local function history_path()
  local home = os.getenv("HOME")
  if home and home ~= "" then return home .. "/.sluice_history" end
end

--- Runs the REPL in the calling task (the main task) until the end of input, Ctrl-D or
-- os.exit(); returns the exit status.
function M.main()
  local kind, tty = core.start{history = history_path(), complete = M.complete}
  state = {tty = tty}
  if rawget(_G, "sl") == nil then _G.sl = sl end
  if rawget(_G, "tasks") == nil then _G.tasks = M.tasks end
  os.exit = repl_exit
  if tty then
    io.stdout:write(("%s (%s) on a live loop: each input runs as a task. tasks() lists "
                     .. "tasks;\nCtrl-C cancels the running input, Ctrl-D leaves.%s\n")
                    :format(sl.version, _VERSION,
                            kind == "readline" and "" or " (no line editing in this build)"))
  end
  local ok, err = pcall(function()
    local buf
    while state.exit_code == nil do
      local line = core.read(buf and ">> " or "> ")
      if line == nil then
        if buf then   -- the input ended inside a statement: say what is wrong with it
          local _, cerr = load(buf, "=stdin", "t")
          io.stderr:write(cerr, "\n")
        end
        break
      end
      if line == false then
        buf = nil
      else
        if line:find("%S") then core.history_add(line) end
        buf = buf and buf .. "\n" .. line or line
        if not buf:find("%S") then
          buf = nil
        else
          local fn, cerr = compile(buf)
          if fn then
            buf = nil
            run(fn)
          elseif cerr ~= "incomplete" then
            buf = nil
            io.stderr:write(cerr, "\n")
            io.stderr:flush()
          end
        end
      end
    end
  end)
  core.stop()
  if os.exit == repl_exit then os.exit = real_exit end
  if not ok then error(err, 0) end
  cancel_the_rest()
  return state.exit_code or 0
end

return M
