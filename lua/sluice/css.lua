-- css.lua: PLACEHOLDER, to be replaced at merge by the real CSS-to-XPath compiler of issue 10
-- (written in another branch). It handles only what html_doc's specs need: type, *, .class,
-- #id, the descendant and child combinators, groups, and parsel's ::text and ::attr(name).
local M = {}

local function compound(s, sel)
  local tag, rest = s:match("^([%w%-_]*%*?)(.*)$")
  local conds = {}
  for kind, name in rest:gmatch("([%.#])([%w%-_]+)") do
    if kind == "#" then
      conds[#conds + 1] = "@id = '" .. name .. "'"
    else
      conds[#conds + 1] = "@class and contains(concat(' ', normalize-space(@class), ' '), ' "
        .. name .. " ')"
    end
  end
  if rest:gsub("[%.#][%w%-_]+", "") ~= "" then
    error(string.format("bad CSS selector '%s' (placeholder sluice.css)", sel), 0)
  end
  local x = tag ~= "" and tag or "*"
  if #conds > 0 then x = x .. "[" .. table.concat(conds, " and ") .. "]" end
  return x
end

local function one(sel)
  local s, pseudo = sel:match("^%s*(.-)%s*(::.*)$")
  s = s or sel:match("^%s*(.-)%s*$")
  local out, axis = {}, "descendant-or-self::"
  for part in s:gsub("%s*>%s*", " > "):gmatch("%S+") do
    if part == ">" then
      axis = "/"
    else
      if s == "" then break end
      out[#out + 1] = axis .. compound(part, sel)
      axis = "/descendant::"
    end
  end
  if #out == 0 then error(string.format("bad CSS selector '%s'", sel), 0) end
  local x = table.concat(out, "")
  if pseudo == "::text" then
    x = x .. "/text()"
  elseif pseudo then
    local name = pseudo:match("^::attr%(([%w%-_:]+)%)$")
    if not name then error(string.format("bad CSS selector '%s'", sel), 0) end
    x = x .. "/@" .. name
  end
  return x
end

--- The XPath 1.0 expression, relative to the context node, that selects what sel does.
function M.xpath(sel)
  local parts = {}
  for s in (sel .. ","):gmatch("([^,]*),") do parts[#parts + 1] = one(s) end
  return table.concat(parts, " | ")
end

return M
