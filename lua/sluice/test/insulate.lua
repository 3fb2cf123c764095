-- Saving and restoring the global state (_G and package.loaded) around insulate blocks and
-- spec files, and pushing an expose block's changes out through the enclosing insulations.

local M = {}

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- Makes `live` hold exactly the pairs in `saved`, keeping the table's identity (code holds
-- references to _G and package.loaded, so they must not be replaced).
local function reset(live, saved)
  for k in pairs(live) do
    if saved[k] == nil then rawset(live, k, nil) end
  end
  for k, v in pairs(saved) do
    if rawget(live, k) ~= v then rawset(live, k, v) end
  end
end

--- Takes a snapshot of the globals and of the loaded modules.
function M.save()
  return {g = copy(_G), loaded = copy(package.loaded)}
end

--- Puts the globals and loaded modules back as they were in `snap`.
function M.restore(snap)
  reset(_G, snap.g)
  reset(package.loaded, snap.loaded)
end

-- Copies the pairs of `live` that changed since `before` into `target`.
local function export(live, before, target)
  for k, v in pairs(live) do
    if before[k] ~= v then target[k] = v end
  end
end

--- Applies what changed since `snap` (taken when an expose block began) to every snapshot
--- in `stack`, so that restoring the enclosing insulations keeps those changes.
function M.expose(snap, stack)
  for _, outer in ipairs(stack) do
    export(_G, snap.g, outer.g)
    export(package.loaded, snap.loaded, outer.loaded)
  end
end

return M
