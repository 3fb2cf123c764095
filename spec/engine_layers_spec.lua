-- The engine's layout keeps the promises of engine/README.md: no circles of files that call
-- one another (scripts/layers.lua reads the calls from the object files' symbol tables),
-- and no C file over 600 lines.
local H = require "spec.helpers"

-- The objects of the binary under test: make asan's when that is what runs.
local function objdir()
  if H.bin:match("%-asan$") and H.sh("ls build/asan/*.o 2>/dev/null"):match("%.o") then
    return "build/asan"
  end
  return "build"
end

describe("the engine's layout", function()
  it("has no circles of files calling one another", function()
    local r = H.run({"scripts/layers.lua", objdir()})
    -- the graph was read: main calls the task layer and the HTTP client
    assert.truthy(r.out:match("\nmain%s+%->[^\n]* task[ \n]"), r.out .. r.err)
    assert.truthy(r.out:match("\nmain%s+%->[^\n]* http_client[ \n]"), r.out .. r.err)
    assert.is_nil(r.out:match("circle: [^\n]*"))
    assert.equal(0, r.code)
    assert.truthy(r.out:match("no circles"))
  end)

  it("has no C file over 600 lines", function()
    local long = {}
    local n = 0
    for path in H.sh("ls engine/*.c"):gmatch("[^\n]+") do
      n = n + 1
      local lines = #H.lines(H.read_file(path))
      if lines > 600 then long[#long + 1] = path .. ": " .. lines end
    end
    assert.is_true(n > 30)
    assert.same({}, long)
  end)
end)
