-- JSON output: one document on stdout once the run ends (the closing summary lines go to
-- stderr so that stdout stays valid JSON). Its shape is modelled on busted's json output.

local output = require "sluice.test.output"

local Json = {}
Json.__index = Json

--- Creates the handler.
function Json.new(opts)
  return setmetatable({opts = opts, stream = io.stderr}, Json)
end

-- A small encoder rather than cjson: cjson cannot tell an empty array from an empty object
-- in the version Debian ships, and this output needs both.
local ESCAPES = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                 ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function encode(v, out)
  local t = type(v)
  if t == "table" then
    if v[1] ~= nil or getmetatable(v) == "array" then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        encode(x, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(k) .. ":"
        encode(v[k], out)
      end
      out[#out + 1] = "}"
    end
  elseif t == "string" then
    out[#out + 1] = encode_string(v)
  elseif t == "number" then
    out[#out + 1] = (v ~= v or v == math.huge or v == -math.huge) and "null"
      or math.type(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  else
    out[#out + 1] = "null"
  end
end

-- Marks a table so that it encodes as an array even when empty.
local function array(t) return setmetatable(t, {__metatable = "array"}) end

function Json:start() end
function Json:list(r) output.list_line(r) end
function Json:result() end

-- One result as a JSON object.
local function element(r)
  local e = {name = r.name, file = r.file, line = r.line, status = r.status,
             duration = r.duration or 0, kind = r.kind, phase = r.phase}
  if r.status ~= "success" then
    e.message = output.result_text(r, false)
    local tbs = {}
    for _, p in ipairs(r.problems) do
      if p.traceback and p.kind ~= "failure" then tbs[#tbs + 1] = p.traceback end
    end
    if #tbs > 0 then e.traceback = table.concat(tbs, "\n") end
  end
  return e
end

function Json:finish(s)
  local doc = {successes = array{}, failures = array{}, errors = array{}, pendings = array{},
               duration = s.duration, seed = s.seed,
               counts = {passed = s.passed, failures = s.failures, errors = s.errors,
                         skipped = s.skipped}}
  local key = {success = "successes", failure = "failures", error = "errors",
               pending = "pendings"}
  for _, r in ipairs(s.results) do
    local list = doc[key[r.status]]
    list[#list + 1] = element(r)
  end
  local out = {}
  encode(doc, out)
  io.stdout:write(table.concat(out), "\n")
  io.stdout:flush()
end

return Json
