-- dns_out_of_fds_spec.lua: found while fixing issue 9's defect 6. glibc's getaddrinfo
-- answers EAI_NONAME when it cannot open /etc/hosts for lack of descriptors, and the DNS
-- cache kept that answer for 5 s: a crawl that ran out of sockets went on failing to
-- resolve its hosts after they were back, and recorded pages as unknown hosts. A lookup
-- without descriptors now fails with EMFILE (transient, what the crawler waits out) and is
-- not cached.
local H = require "spec.helpers"

describe("a name lookup while descriptors have run out", function()
  it("fails with EMFILE and is not remembered once descriptors are back", function()
    local r = H.sh(("sh -c 'ulimit -n 64 && exec \"$0\" \"$1\"' %s %s 2>&1")
      :format(H.quote(H.bin), H.quote("spec/fixtures/regress/dns_out_of_fds.lua")))
    assert.are.equal("starved\tEMFILE\nafter\t200\n", r)
  end)
end)
