-- JUnit XML output, for CI systems: one <testsuite> per spec file written once the run ends
-- (the closing summary lines go to stderr so that stdout stays a valid XML document).

local output = require "sluice.test.output"

local Junit = {}
Junit.__index = Junit

--- Creates the handler.
function Junit.new(opts)
  return setmetatable({opts = opts, stream = io.stderr}, Junit)
end

function Junit:start() end
function Junit:list(r) output.list_line(r) end
function Junit:result() end

local ENTITIES = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
                  ["'"] = "&apos;"}

-- Escapes text for an attribute or element; control characters XML 1.0 forbids are dropped.
local function xml(s)
  s = tostring(s):gsub("[&<>\"']", ENTITIES)
  return (s:gsub("[%z\1-\8\11\12\14-\31]", ""))
end

-- Groups results by file, keeping the order files were first seen in.
local function by_file(results)
  local files, order = {}, {}
  for _, r in ipairs(results) do
    local f = r.file or "?"
    if not files[f] then files[f] = {}; order[#order + 1] = f end
    table.insert(files[f], r)
  end
  return files, order
end

function Junit:finish(s)
  local out = {'<?xml version="1.0" encoding="UTF-8"?>'}
  out[#out + 1] = ('<testsuites tests="%d" failures="%d" errors="%d" skipped="%d" time="%.3f">')
    :format(#s.results, s.failures, s.errors, s.skipped, s.duration)
  local files, order = by_file(s.results)
  for _, f in ipairs(order) do
    local rs = files[f]
    local count = {failure = 0, error = 0, pending = 0, success = 0}
    local time = 0
    for _, r in ipairs(rs) do
      count[r.status] = count[r.status] + 1
      time = time + (r.duration or 0)
    end
    out[#out + 1] = ('  <testsuite name="%s" tests="%d" failures="%d" errors="%d" skipped="%d" time="%.3f">')
      :format(xml(f), #rs, count.failure, count.error, count.pending, time)
    for _, r in ipairs(rs) do
      local name = r.name
      if r.phase then name = name .. " (" .. r.phase .. ")" end
      out[#out + 1] = ('    <testcase classname="%s" name="%s" file="%s" line="%d" time="%.3f">')
        :format(xml(f), xml(name), xml(f), r.line or 0, r.duration or 0)
      if r.status == "pending" then
        local why = r.problems[1] and r.problems[1].message or "pending"
        out[#out + 1] = ('      <skipped message="%s"/>'):format(xml(why))
      elseif r.status ~= "success" then
        local first = r.problems[1] and r.problems[1].message or r.status
        local first_line = tostring(first):match("[^\n]*")
        out[#out + 1] = ('      <%s message="%s">%s</%s>'):format(
          r.status, xml(first_line), xml(output.result_text(r)), r.status)
      end
      out[#out + 1] = "    </testcase>"
    end
    out[#out + 1] = "  </testsuite>"
  end
  out[#out + 1] = "</testsuites>"
  io.stdout:write(table.concat(out, "\n"), "\n")
  io.stdout:flush()
end

return Junit
