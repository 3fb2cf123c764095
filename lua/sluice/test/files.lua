-- Finding spec files: given files are taken as they are, directories are searched
-- recursively for names matching the pattern. The result is sorted so runs are repeatable.

local M = {}

-- errno of reading a directory as a file on Linux (EISDIR).
local EISDIR = 21

--- "file", "directory" or nil, message for a path.
function M.kind(path)
  local f, err = io.open(path, "r")
  if not f then return nil, err end
  local _, _, code = f:read(0)
  f:close()
  return code == EISDIR and "directory" or "file"
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Plain Lua cannot list a directory, and the runner must not depend on modules beyond
-- luassert, so directories are walked with find(1). It runs once before any test starts.
local function walk(dir)
  local p = io.popen("find " .. shell_quote(dir) .. " -type f -name '*.lua' 2>/dev/null")
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- True when a file name found in a directory should run.
local function wanted(name, pattern, excludes)
  if not name:find(pattern) then return false end
  for _, pat in ipairs(excludes or {}) do
    if name:find(pat) then return false end
  end
  return true
end

--- Expands paths into the list of spec files: names in directories must match `pattern`
--- and none of `excludes` (Lua patterns on the file name). Returns files and a list of
--- problems ({path, message}) for paths that do not exist.
function M.find(paths, pattern, excludes)
  local files, seen, problems = {}, {}, {}
  local function add(f)
    f = f:gsub("^%./", "")
    if not seen[f] then seen[f] = true; files[#files + 1] = f end
  end
  for _, path in ipairs(paths) do
    local kind, err = M.kind(path)
    if kind == "file" then
      add(path)
    elseif kind == "directory" then
      local found = walk(path)
      table.sort(found)
      for _, f in ipairs(found) do
        if wanted(f:match("[^/]*$"), pattern, excludes) then add(f) end
      end
    else
      problems[#problems + 1] = {path = path, message = err}
    end
  end
  return files, problems
end

return M
