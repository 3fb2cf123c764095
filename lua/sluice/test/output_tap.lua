-- TAP (Test Anything Protocol, version 13) output: one "ok"/"not ok" line per test, the
-- details as "# " diagnostics, and the plan at the end since the count is known only then.

local output = require "sluice.test.output"

local Tap = {}
Tap.__index = Tap

--- Creates the handler.
function Tap.new(opts)
  return setmetatable({opts = opts, stream = io.stdout, n = 0}, Tap)
end

function Tap:start(info)
  io.stdout:write("TAP version 13\n")
  if info.seed then io.stdout:write(("# randomized with seed %d\n"):format(info.seed)) end
end

function Tap:list(r) output.list_line(r) end

-- Writes text as diagnostic lines.
local function diag(text)
  for line in (text .. "\n"):gmatch("(.-)\n") do
    io.stdout:write("# ", line, "\n")
  end
end

-- "#" in a TAP description starts a directive, so the tags of test names are escaped.
local function description(r)
  return (output.title(r):gsub("#", "\\#"))
end

function Tap:result(r)
  self.n = self.n + 1
  local out = io.stdout
  if r.status == "success" then
    out:write(("ok %d - %s\n"):format(self.n, description(r)))
  elseif r.status == "pending" then
    local why = r.problems[1] and r.problems[1].message or "pending"
    out:write(("ok %d - %s # SKIP %s\n"):format(self.n, description(r), why))
  else
    out:write(("not ok %d - %s\n"):format(self.n, description(r)))
    diag(r.status .. ": " .. output.result_text(r))
  end
  out:flush()
end

function Tap:finish()
  io.stdout:write(("1..%d\n"):format(self.n))
  io.stdout:flush()
end

return Tap
