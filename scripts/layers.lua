-- layers.lua: which engine files call which, and the circles among them.
--
--   ./sluice scripts/layers.lua [build-dir]     (default: build)
--
-- Reads the symbol tables of the engine's object files with nm: a file that
-- leaves a symbol undefined calls (or reads) the file that defines it. Calls
-- through function pointers (libuv callbacks, Lua C functions, hooks) are not
-- references, so "called back only through callbacks it registered" is what
-- this graph leaves out. Prints each file's callees, then every set of files
-- that reach one another (a strongly connected component of more than one
-- file); exits 1 if there is any.
local dir = arg[1] or "build"

local function nm(flags, obj)
  local p = assert(io.popen("nm " .. flags .. " " .. obj .. " 2>/dev/null"))
  local out = p:read("a")
  p:close()
  return out
end

local objs = {}
local p = assert(io.popen("ls " .. dir .. "/*.o 2>/dev/null"))
for path in p:lines() do
  local name = path:match("([^/]+)%.o$")
  if name ~= "embedded" and not name:match("^llhttp_") then
    objs[#objs + 1] = name
  end
end
p:close()
if #objs == 0 then
  io.stderr:write("layers: no object files in " .. dir .. " (run make first)\n")
  os.exit(2)
end
table.sort(objs)

local owner = {}
for _, o in ipairs(objs) do
  for sym in nm("-g --defined-only", dir .. "/" .. o .. ".o"):gmatch("%x*%s+[A-Z]%s+(%S+)") do
    owner[sym] = o
  end
end
local edges = {}
for _, o in ipairs(objs) do
  local set = {}
  for sym in nm("-u", dir .. "/" .. o .. ".o"):gmatch("U%s+(%S+)") do
    local to = owner[sym]
    if to and to ~= o then set[to] = true end
  end
  local list = {}
  for to in pairs(set) do list[#list + 1] = to end
  table.sort(list)
  edges[o] = list
end

-- Tarjan's strongly connected components.
local index, low, onstack, stack, n, comps = {}, {}, {}, {}, 0, {}
local function visit(v)
  n = n + 1
  index[v], low[v] = n, n
  stack[#stack + 1] = v
  onstack[v] = true
  for _, w in ipairs(edges[v]) do
    if not index[w] then
      visit(w)
      low[v] = math.min(low[v], low[w])
    elseif onstack[w] then
      low[v] = math.min(low[v], index[w])
    end
  end
  if low[v] == index[v] then
    local comp = {}
    repeat
      local w = table.remove(stack)
      onstack[w] = nil
      comp[#comp + 1] = w
    until w == v
    if #comp > 1 then
      table.sort(comp)
      comps[#comps + 1] = comp
    end
  end
end
for _, o in ipairs(objs) do
  if not index[o] then visit(o) end
end

for _, o in ipairs(objs) do
  print(string.format("%-18s -> %s", o, table.concat(edges[o], " ")))
end
if #comps == 0 then
  print(string.format("\n%d files, no circles", #objs))
  os.exit(0)
end
print("")
for _, c in ipairs(comps) do
  print("circle: " .. table.concat(c, " "))
end
os.exit(1)
