-- Specs of `make install` (the Makefile's install target) and of the man page it installs,
-- scripts/sluice.1: staged installs into a temporary DESTDIR, never into the system.
local H = require "spec.helpers"

local function rm_rf(dir)
  assert(dir:find("^/tmp/"), "refusing to remove " .. dir)
  os.execute("rm -rf " .. H.quote(dir))
end

-- Runs `make install` with these variables, taking ./sluice as it is (-o: never rebuilt here,
-- `make test` and `make asan` have built it). Returns make's output and exit status.
local function make_install(vars)
  return H.sh(("make -s -o sluice install %s 2>&1"):format(vars))
end

local function mode_of(path)
  return (H.sh("stat -c %a " .. H.quote(path)):gsub("%s+$", ""))
end

-- The first man page formatter found, as a command that prints warnings only, or nil.
local function lint_command(page)
  if H.sh("command -v mandoc") ~= "" then
    return "mandoc -Tlint -Wwarning " .. H.quote(page) .. " 2>&1"
  elseif H.sh("command -v groff") ~= "" then
    return "groff -man -Tutf8 -ww -z " .. H.quote(page) .. " 2>&1"
  elseif H.sh("command -v man") ~= "" then
    return "MANWIDTH=80 man --warnings -l " .. H.quote(page) .. " 2>&1 >/dev/null"
  end
end

describe("make install", function()
  local dest

  before_each(function()
    assert(io.open("sluice", "rb"), "./sluice is not built (run make)"):close()
    dest = H.tmpdir()
  end)

  after_each(function()
    rm_rf(dest)
  end)

  it("puts the binary and the man page under DESTDIR and the default PREFIX /usr/local",
     function()
    local out, code = make_install("DESTDIR=" .. H.quote(dest))
    assert.are.equal(0, code, out)
    local bin = dest .. "/usr/local/bin/sluice"
    local man = dest .. "/usr/local/share/man/man1/sluice.1"
    assert.are.equal(H.read_file("sluice"), H.read_file(bin))
    assert.are.equal("755", mode_of(bin))
    assert.are.equal(H.read_file("scripts/sluice.1"), H.read_file(man))
    assert.are.equal("644", mode_of(man))
  end)

  it("honours PREFIX", function()
    local out, code = make_install("DESTDIR=" .. H.quote(dest) .. " PREFIX=/opt/sl")
    assert.are.equal(0, code, out)
    assert.is_true(#H.read_file(dest .. "/opt/sl/bin/sluice") > 0)
    assert.is_true(#H.read_file(dest .. "/opt/sl/share/man/man1/sluice.1") > 0)
    assert.are.equal("", H.sh("ls " .. H.quote(dest) .. "/usr 2>/dev/null"))
  end)

  it("installs a binary that runs scripts anywhere, with its Lua modules inside", function()
    local _, code = make_install("DESTDIR=" .. H.quote(dest))
    assert.are.equal(0, code)
    local elsewhere = H.tmpdir()
    H.write_file(elsewhere .. "/job.lua", [[
      local sl = require "sluice"
      local url = require "sluice.url"
      local http = require "sluice.http"
      local shell = require "sluice.shell"
      local t = sl.spawn(function(x) sl.sleep(0.01) return x * 2 end, 21)
      print(t:join(), url.normalize("HTTP://Example.COM:80/a/../b"), type(http.get),
            type(shell.fetch), ...)
    ]])
    -- No SLUICE_LUA_PATH, and a directory with no lua/ in it: the embedded modules serve.
    local out, st = H.sh(("cd %s && env -u SLUICE_LUA_PATH %s job.lua arg1 2>&1"):format(
      H.quote(elsewhere), H.quote(dest .. "/usr/local/bin/sluice")))
    rm_rf(elsewhere)
    assert.are.equal(0, st, out)
    assert.are.equal("42\thttp://example.com/b\tfunction\tfunction\targ1\n", out)
  end)
end)

describe("the man page scripts/sluice.1", function()
  local page = "scripts/sluice.1"

  local lint = lint_command(page)
  if not lint then
    pending("renders without warnings (no man page formatter: mandoc, groff or man)")
  else
    it("renders without warnings (" .. lint:match("^%S+ ?%S*") .. ")", function()
      local out = H.sh(lint)
      assert.are.equal("", out)
    end)
  end

  it("has the synopsis of every command and the crawl options", function()
    local text = H.read_file(page)
    for _, s in ipairs{".B sluice shell", ".B sluice test", ".B sluice crawl", ".SH EXIT STATUS",
                       ".SH ENVIRONMENT", ".B SLUICE_LUA_PATH", "\\-\\-handler",
                       "\\-\\-format", "\\-\\-state", "\\-\\-per\\-host", ".SH SEE ALSO"} do
      H.has(s, text)
    end
  end)
end)
