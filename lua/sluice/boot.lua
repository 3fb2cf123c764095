-- boot.lua: the body of the main task. It runs the command line's -l and -e actions and the
-- script in order, so all of them can wait; `sluice test` and the REPL start from here too.
local sl = require "sluice"

return function(actions, mode)
  if mode == "test" then
    return require("sluice.test").main(actions)
  end
  for _, a in ipairs(actions) do
    if a.require then
      _G[a.global or a.require] = require(a.require)
    else
      a.fn(table.unpack(a, 1, a.n or 0))
    end
  end
  if mode == "repl" then
    return require("sluice.repl").main()
  end
  return sl and nil
end
