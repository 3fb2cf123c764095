-- Output handlers for the spec runner: picks one by name and holds what they share (how a
-- result and a problem are written as text, the closing summary lines).

local M = {}

-- Names accepted by --output, with the module implementing each.
local HANDLERS = {
  plainTerminal = "sluice.test.output_plain",
  utfTerminal = "sluice.test.output_plain",
  TAP = "sluice.test.output_tap",
  json = "sluice.test.output_json",
  junit = "sluice.test.output_junit",
}

--- Names accepted by --output, sorted, for help and error messages.
function M.names()
  local names = {}
  for k in pairs(HANDLERS) do names[#names + 1] = k end
  table.sort(names)
  return names
end

--- Creates the output handler called `name`; nil and a message when there is none.
--- A handler has start(info), result(r), list(r), finish(summary) and `stream`, the file
--- that gets the closing summary lines.
function M.new(name, opts)
  local modname = HANDLERS[name]
  if not modname then
    for k in pairs(HANDLERS) do
      if k:lower() == tostring(name):lower() then modname, name = HANDLERS[k], k end
    end
  end
  if not modname then
    return nil, ("unknown output %q (expected one of: %s)"):format(
      tostring(name), table.concat(M.names(), ", "))
  end
  return require(modname).new(opts, name)
end

--- "file:line" of a result, or just the file for whole-file problems.
function M.location(r)
  if r.line and r.line > 0 then return r.file .. ":" .. r.line end
  return r.file or "?"
end

--- One-line title of a result: location, name, and the phase for block problems.
function M.title(r)
  local t = M.location(r)
  if r.kind == "test" then
    t = t .. ": " .. r.name
  elseif r.name and r.name ~= r.file and r.name ~= "" then
    t = t .. ": " .. r.name
  end
  if r.phase then t = t .. " (" .. r.phase .. ")" end
  return t
end

--- Text of one problem: which hook it came from, the message, and a traceback for errors.
function M.problem_text(p, with_traceback)
  local lines = {}
  if p.hook then
    lines[#lines + 1] = ("in %s at %s:%d:"):format(p.phase, p.hook.file, p.hook.line)
  end
  lines[#lines + 1] = tostring(p.message)
  if with_traceback ~= false and p.kind ~= "failure" and p.kind ~= "pending"
    and p.traceback and p.traceback:find("%S") then
    lines[#lines + 1] = p.traceback_title or "stack traceback:"
    lines[#lines + 1] = p.traceback
  end
  return table.concat(lines, "\n")
end

--- All the problems of a result as one text block.
function M.result_text(r, with_traceback)
  local parts = {}
  for i, p in ipairs(r.problems) do parts[i] = M.problem_text(p, with_traceback) end
  return table.concat(parts, "\n")
end

local function plural(n, word)
  return ("%d %s%s"):format(n, word, n == 1 and "" or "s")
end

--- The two closing lines: the breakdown of what failed, then exactly
--- "N passed, N failed" with ", N skipped" when tests were skipped.
function M.summary_lines(s)
  local breakdown = ("%s, %s (%.2f s)"):format(plural(s.failures, "failure"),
                                             plural(s.errors, "error"), s.duration)
  if s.seed then breakdown = breakdown .. (" seed %d"):format(s.seed) end
  if s.interrupted then breakdown = "interrupted: " .. breakdown end
  local last = ("%d passed, %d failed"):format(s.passed, s.failures + s.errors)
  if s.skipped > 0 then last = last .. (", %d skipped"):format(s.skipped) end
  return breakdown, last
end

--- Default --list line, shared by every handler: "file:line: full name".
function M.list_line(r)
  io.stdout:write(M.location(r), ": ", r.name, "\n")
end

return M
