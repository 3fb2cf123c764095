-- `require "busted"` inside a spec run by `sluice test`: the runner's public API (describe,
-- it, pending, hooks, finally, assert, spy, stub, mock, match), as busted's module gives.

return require("sluice.test").install_globals()
