-- crawl.lua: the ready-made crawler, as a script: the same as `sluice crawl` (whose code is
-- lua/sluice/crawl/cli.lua, in the binary), kept so existing command lines keep working.
-- usage: sluice scripts/crawl.lua [options] (URL... | -f FILE); --help lists the options.
--
-- Example (the offline test site; see README):
--   sluice scripts/crawl.lua --limit 32 --per-host 4 --out pages.jsonl http://127.0.0.1:8000/
require("sluice.crawl.cli").main("sluice scripts/crawl.lua", ...)
