-- Kinds of test outcome other than success: failures (assertions), pending markers and errors.
-- Kinds are told apart by metatable, never by matching message strings.

local sl = require "sluice"

local M = {}

-- Frames belonging to luassert are skipped when looking for the line that made an assertion.
local function in_luassert(source)
  return source:find("luassert[/%.]") ~= nil
end

--- Metatable of assertion failures; `tostring(f)` gives "file:line: message".
M.Failure = {__name = "sluice.test.failure"}
M.Failure.__tostring = function(f) return f.message end

--- Metatable of the pending marker raised by `pending()` inside a running test.
M.Pending = {__name = "sluice.test.pending"}
M.Pending.__tostring = function(p) return "pending: " .. tostring(p.message) end

--- Builds a failure object; `where` is "file:line" of the assertion (may be nil).
function M.failure(msg, where)
  local text = tostring(msg)
  if where then text = where .. ": " .. text end
  return setmetatable({message = text, where = where}, M.Failure)
end

--- Builds the pending marker.
function M.pending(msg)
  return setmetatable({message = msg or "pending"}, M.Pending)
end

function M.is_failure(e) return getmetatable(e) == M.Failure end
function M.is_pending(e) return getmetatable(e) == M.Pending end

--- Returns "file:line" of the first Lua frame at or above `level` (of the caller) whose source
--- is not luassert's and whose function is not in `skip`; nil when there is none.
function M.where(level, skip)
  level = level + 1
  while true do
    local info = debug.getinfo(level, "Slf")
    if not info then return nil end
    if info.what ~= "C" and info.currentline > 0 and not in_luassert(info.source)
      and not (skip and skip[info.func]) then
      return info.short_src .. ":" .. info.currentline
    end
    level = level + 1
  end
end

-- luassert 1.8 raises plain strings, which would make an assertion indistinguishable from
-- any other error once it crossed a task boundary (t:join() re-raises). So the chained
-- assertions (assert.equals, assert.is_not.same, assert.spy(s).was.called ...) are patched
-- once to raise Failure objects instead. Plain `assert(v, msg)` is left alone because
-- library code calls it too; the test error handler classifies it by call site instead.
local patched = false
local wrapper_funcs = {}

--- Makes luassert's chained assertions raise Failure objects. Idempotent.
function M.patch_luassert()
  if patched then return end
  patched = true
  local luassert = require "luassert"
  local state_meta = getmetatable(luassert.state())
  local original = state_meta.__call
  local function on_error(e)
    -- level 3 is the function that called error(): luassert's own __call means the
    -- assertion itself failed; anything else (bad arguments, misuse) stays an error.
    local info = debug.getinfo(3, "f")
    if type(e) == "string" and info and info.func == original then
      return M.failure(e, M.where(3, wrapper_funcs))
    end
    return e
  end
  local function call(self, ...)
    local res = table.pack(xpcall(original, on_error, self, ...))
    if not res[1] then error(res[2], 0) end
    return table.unpack(res, 2, res.n)
  end
  wrapper_funcs[call] = true
  state_meta.__call = call
  M.plain_assert = getmetatable(luassert).__call
end

-- Keeps only the frames of a traceback that belong to the spec's code: the header, the
-- error() call and the runner's own modules go, and so does everything from the xpcall
-- that ran the spec code downwards. Returns the frame lines, tab-indented.
local function trim_traceback(tb)
  local out = {}
  for line in tb:gmatch("[^\n]+") do
    if line:find("in function 'xpcall'", 1, true) then break end
    if line:find("^%s") and not line:find("^%s*%[C%]: in function 'error'")
      and not line:find("sluice/test/%w+%.lua:") then
      out[#out + 1] = line
    end
  end
  return table.concat(out, "\n")
end

-- Formats any error value as a readable message.
local function describe_value(e)
  if type(e) == "string" then return e end
  local mt = getmetatable(e)
  if mt and mt.__tostring then return tostring(e) end
  if type(e) == "table" and e.message ~= nil then return tostring(e.message) end
  return tostring(e)
end

--- xpcall message handler for spec code. Returns a problem record
--- {kind = "failure"|"error"|"pending"|"cancelled", message, where, traceback, err}.
--- `spec_source` ("@path") lets a plain `assert(false)` written in the spec count as failure.
function M.handler_for(spec_source)
  return function(e)
    if M.is_failure(e) then
      return {kind = "failure", message = e.message, where = e.where, err = e}
    elseif M.is_pending(e) then
      return {kind = "pending", message = e.message, err = e}
    elseif sl.is_cancelled(e) then
      return {kind = "cancelled", message = describe_value(e), err = e,
              traceback = trim_traceback(debug.traceback("", 2))}
    end
    -- level 2 is error() itself, 3 the function that called it.
    local raiser = debug.getinfo(3, "f")
    local caller = debug.getinfo(4, "S")
    if M.plain_assert and raiser and raiser.func == M.plain_assert
      and caller and caller.source == spec_source then
      return {kind = "failure", message = describe_value(e), where = M.where(4), err = e}
    end
    local msg = describe_value(e)
    return {kind = "error", message = msg, err = e, where = M.where(2),
            traceback = trim_traceback(debug.traceback("", 2))}
  end
end

return M
