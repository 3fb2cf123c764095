-- sluice.http: the HTTP/1.1 client and server of sluice's own (uv_tcp + llhttp), one module.
-- The client lives in sluice.http.client (C core: sluice.http.client_core), the server in
-- sluice.http.server (C core: sluice.http.server_core).
local M = {}

local function merge(name)
  local ok, mod = pcall(require, name)
  if not ok then
    -- a missing half is a build problem, not something to hide
    error("sluice.http: cannot load " .. name .. ": " .. tostring(mod), 2)
  end
  for k, v in pairs(mod) do M[k] = v end
end

merge("sluice.http.client")
merge("sluice.http.server")

return M
