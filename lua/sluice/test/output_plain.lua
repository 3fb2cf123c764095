-- The terminal outputs, plainTerminal and utfTerminal: a progress mark per test (or a line
-- per test with --verbose), then the details of what failed, then the summary.

local output = require "sluice.test.output"

local Plain = {}
Plain.__index = Plain

-- Progress marks and verbose labels per status; utfTerminal adds symbols and colour.
local MARKS = {
  plain = {success = "+", failure = "-", error = "*", pending = "."},
  utf = {success = "●", failure = "✗", error = "✱", pending = "○"},
}
local LABELS = {success = "ok", failure = "FAIL", error = "ERROR", pending = "SKIP"}
local COLOURS = {success = "32", failure = "31", error = "35", pending = "33"}

--- Creates the handler; name is "plainTerminal" or "utfTerminal".
function Plain.new(opts, name)
  local utf = name == "utfTerminal"
  return setmetatable({
    opts = opts, stream = io.stdout, marks = MARKS[utf and "utf" or "plain"],
    -- Colour only on utfTerminal, and never when NO_COLOR is set (no-color.org).
    colour = utf and (os.getenv("NO_COLOR") or "") == "",
    column = 0,
  }, Plain)
end

function Plain:paint(status, text)
  if not self.colour then return text end
  return "\27[" .. COLOURS[status] .. "m" .. text .. "\27[0m"
end

function Plain:start(info)
  if info.seed then io.stdout:write(("Randomized with seed %d\n"):format(info.seed)) end
  io.stdout:flush()
end

function Plain:list(r) output.list_line(r) end

function Plain:result(r)
  local out = io.stdout
  if self.opts.verbose then
    local label = LABELS[r.status]
    out:write(self:paint(r.status, ("%-5s"):format(label)), " ", output.title(r),
              (" (%.3f s)"):format(r.duration or 0), "\n")
    if r.status == "pending" then
      local why = r.problems[1] and r.problems[1].message
      if why and why ~= "pending" then out:write("      ", why, "\n") end
    end
  else
    -- Wrap the progress line so a long suite stays readable.
    if self.column >= 72 then out:write("\n"); self.column = 0 end
    out:write(self:paint(r.status, self.marks[r.status]))
    self.column = self.column + 1
  end
  out:flush()
end

-- Writes the details of the failures or errors, each in a paragraph of its own.
function Plain:section(results, status, heading)
  for _, r in ipairs(results) do
    if r.status == status then
      io.stdout:write("\n", self:paint(status, heading), " ", output.title(r), "\n",
                      output.result_text(r), "\n")
    end
  end
end

-- Pending tests get one line each (and their reason when it says more than "pending").
function Plain:pending(results)
  local first = true
  for _, r in ipairs(results) do
    if r.status == "pending" then
      if first then io.stdout:write("\n"); first = false end
      local why = r.problems[1] and r.problems[1].message
      io.stdout:write(self:paint("pending", "Pending"), " ", output.title(r),
                      (why and why ~= "pending") and (" (" .. why .. ")") or "", "\n")
    end
  end
end

function Plain:finish(summary)
  if not self.opts.verbose and self.column > 0 then io.stdout:write("\n") end
  local results = summary.results
  if not self.opts.verbose then self:pending(results) end
  self:section(results, "failure", "Failure")
  self:section(results, "error", "Error")
  io.stdout:write("\n")
  io.stdout:flush()
end

return Plain
