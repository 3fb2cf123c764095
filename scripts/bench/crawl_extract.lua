-- crawl_extract.lua: the crawl_extract benchmarks' sluice crawler when scripts/crawl.lua has
-- no --handler: sluice.crawl with crawl.lua's settings and a handler file's function.
--
-- usage: sluice crawl_extract.lua HANDLER.lua --limit L --per-host H --out FILE (SEED... | -f FILE)
local crawl = require "sluice.crawl"

local opts, seeds, i = {handler = dofile(arg[1])}, {}, 2
while arg[i] do
  local a, v = arg[i], arg[i + 1]
  if a == "--limit" or a == "--per-host" then
    opts[a == "--limit" and "limit" or "per_host"] = math.tointeger(tonumber(v))
    i = i + 2
  elseif a == "--out" then
    opts.out, i = v, i + 2
  elseif a == "-f" then
    for line in io.lines(v) do if line ~= "" then seeds[#seeds + 1] = line end end
    i = i + 2
  else
    seeds[#seeds + 1], i = a, i + 1
  end
end
opts.seeds = seeds
crawl.run(opts)
