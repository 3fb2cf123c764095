# sluice: one hand-written Makefile. `make` builds ./sluice; `make test`, `make asan`,
# `make bench`, `make demo`, `make fuzz`. Missing Debian packages are installed with apt-get
# when root.

CC      ?= cc
PKGS    := lua5.4 libuv libxml-2.0 openssl sqlite3 libbrotlidec libzstd libcares libpsl
DEBS    := liblua5.4-dev lua5.4 libuv1-dev lua-cjson-dev lua-luassert pkg-config gcc make \
           zlib1g-dev libxml2-dev libssl-dev openssl libsqlite3-dev sqlite3 python3 \
           libbrotli-dev libzstd-dev brotli zstd curl libc-ares-dev libpsl-dev publicsuffix \
           dnsmasq-base tinyproxy dante-server
# Optional: installed when missing if possible, and the build goes on without them otherwise.
DEBS_OPT := libreadline-dev
WARN    := -std=c11 -Wall -Wextra -Wshadow -Wundef -Wwrite-strings -Wmissing-prototypes \
           -Wstrict-prototypes
CFLAGS  ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -MMD -MP
BUILD   := build

SRCS    := $(wildcard engine/*.c)
LUASRC  := $(shell find lua -name '*.lua' 2>/dev/null | sort)
# llhttp (Node's HTTP parser): Debian ships its generated C in node-llhttp, with no -dev
# package. We compile those files; when the package is not installed, its .deb is
# downloaded and unpacked under build/ so that nodejs is not pulled in.
LLHTTP_SRC := api http llhttp
LLHTTP  := $(BUILD)/llhttp
OBJS    := $(SRCS:engine/%.c=$(BUILD)/%.o) $(BUILD)/embedded.o \
           $(LLHTTP_SRC:%=$(BUILD)/llhttp_%.o)
ASANOBJS := $(SRCS:engine/%.c=$(BUILD)/asan/%.o) $(BUILD)/asan/embedded.o \
           $(LLHTTP_SRC:%=$(BUILD)/asan/llhttp_%.o)

# Filled in once the dependencies are present (see the deps rule).
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I$(LLHTTP)/include
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) \
             $(firstword $(wildcard /usr/lib/*/liblua5.4-cjson.a)) -lz -lm $(RL_LIBS)
# GNU readline gives the REPL line editing, history and completion when its headers exist
# (checked when used, so after the deps rule may have installed them).
HAVE_RL    = $(shell test -f /usr/include/readline/readline.h && echo 1)
RL_CFLAGS  = $(if $(HAVE_RL),-DSLUICE_READLINE)
RL_LIBS    = $(if $(HAVE_RL),-lreadline)
ASANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# No built-in rules: they would try to remake the .d files from objects.
MAKEFLAGS += -r
.SUFFIXES:

.PHONY: all deps test asan bench demo clean install valgrind fuzz

all: sluice

# Installs what is missing, once; records success in a stamp file.
deps: $(BUILD)/.deps
$(BUILD)/.deps: Makefile
	@mkdir -p $(BUILD)
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "sluice: installing missing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "sluice: run as root or install:$$missing" >&2; exit 1; fi; \
	  (apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) \
	    >$(BUILD)/apt.log 2>&1 || { tail -20 $(BUILD)/apt.log; exit 1; }; \
	fi
	@missing=""; for p in $(DEBS_OPT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
	  echo "sluice: installing optional Debian packages:$$missing"; \
	  (apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) \
	    >>$(BUILD)/apt.log 2>&1 || echo "sluice: could not install$$missing; building without"; \
	elif [ -n "$$missing" ]; then \
	  echo "sluice: optional packages missing (building without):$$missing"; \
	fi
	@touch $@

# Copies llhttp's sources from the installed package, or from its unpacked .deb.
$(LLHTTP)/.stamp: $(BUILD)/.deps
	@mkdir -p $(LLHTTP)/include $(LLHTTP)/src
	@if [ ! -f /usr/share/llhttp/llhttp.c ]; then \
	  echo "sluice: fetching node-llhttp's C sources (apt-get download)"; \
	  rm -rf $(LLHTTP)/deb && mkdir -p $(LLHTTP)/deb && cd $(LLHTTP)/deb && \
	  { apt-get download node-llhttp >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get download node-llhttp >/dev/null; }; } && \
	  dpkg-deb -x node-llhttp_*.deb root; \
	fi
	@root=$$( [ -f /usr/share/llhttp/llhttp.c ] && echo "" || echo "$(LLHTTP)/deb/root" ); \
	  cp $$root/usr/share/llhttp/*.c $(LLHTTP)/src/ && \
	  cp $$root/usr/share/include/llhttp/llhttp.h $(LLHTTP)/include/
	@touch $@

$(BUILD)/llhttp_%.o: $(LLHTTP)/.stamp
	$(CC) -O2 -g -I$(LLHTTP)/include -c -o $@ $(LLHTTP)/src/$*.c

$(BUILD)/asan/llhttp_%.o: $(LLHTTP)/.stamp
	@mkdir -p $(BUILD)/asan
	$(CC) -O1 -g $(ASANFLAGS) -I$(LLHTTP)/include -c -o $@ $(LLHTTP)/src/$*.c

sluice: $(BUILD)/.deps $(OBJS)
	$(CC) $(CFLAGS) -o $@ $(OBJS) $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/%.o: engine/%.c $(BUILD)/.deps $(LLHTTP)/.stamp
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(PKG_CFLAGS) $(RL_CFLAGS) -c -o $@ $<

$(BUILD)/embedded.c: $(LUASRC) scripts/embed.lua $(BUILD)/.deps
	lua5.4 scripts/embed.lua $@ $(LUASRC)

$(BUILD)/embedded.o: $(BUILD)/embedded.c $(LLHTTP)/.stamp
	$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

# The sanitizer build lives beside the normal one and runs the whole spec suite.
$(BUILD)/asan/%.o: engine/%.c $(BUILD)/.deps $(LLHTTP)/.stamp
	@mkdir -p $(BUILD)/asan
	$(CC) $(CPPFLAGS) $(WARN) -O1 -g $(ASANFLAGS) $(PKG_CFLAGS) $(RL_CFLAGS) -c -o $@ $<

$(BUILD)/asan/embedded.o: $(BUILD)/embedded.c $(LLHTTP)/.stamp
	@mkdir -p $(BUILD)/asan
	$(CC) $(CPPFLAGS) -O1 -g $(ASANFLAGS) $(PKG_CFLAGS) -c -o $@ $<

sluice-asan: $(ASANOBJS)
	$(CC) -g $(ASANFLAGS) -o $@ $(ASANOBJS) $(PKG_LIBS)

test: sluice
	./sluice test spec

asan: sluice sluice-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 SLUICE_BIN=./sluice-asan ./sluice-asan test spec

valgrind: sluice
	valgrind --error-exitcode=1 --leak-check=full ./sluice test spec

bench: sluice
	bash scripts/bench/run.sh

# The seeds' limited_as_completed demo, their HTTP client against a local delay server, then
# a crawl of the offline test site, ending with the crawler's summary, and a scrape of its shop
# into SQLite (three rows printed with sqlite3).
demo: sluice
	./sluice scripts/demo.lua
	bash scripts/demo_http.sh
	bash scripts/demo_crawl.sh
	bash scripts/demo_scrape.sh

# The binary holds its Lua modules, so it needs nothing else installed beside it; the man
# page (scripts/sluice.1) goes where man(1) finds it. DESTDIR is for staged installs.
PREFIX ?= /usr/local
install: sluice
	install -D -m 755 sluice $(DESTDIR)$(PREFIX)/bin/sluice
	install -D -m 644 scripts/sluice.1 $(DESTDIR)$(PREFIX)/share/man/man1/sluice.1

# ---------------------------------------------------------------- fuzzing
# libFuzzer harnesses (spec/fuzz/<name>.c, seeds in spec/fuzz/<name>/) built with clang in
# build/fuzz/: the engine with coverage and sanitizers, minus main.c, each harness linked
# with libFuzzer's main. `make fuzz` runs each for FUZZ_SECONDS (spec/fuzz/run.sh); clang
# and libFuzzer's runtime are installed here, not for the other targets.
FUZZ_ALL     := url html_links http_response http_request robots cookie
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 60
FUZZ_CC      := clang
FUZZ_DEBS    := clang libclang-rt-dev llvm
FUZZ         := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_OBJS    := $(filter-out $(FUZZ)/engine/main.o,$(SRCS:engine/%.c=$(FUZZ)/engine/%.o)) \
                $(FUZZ)/engine/embedded.o $(LLHTTP_SRC:%=$(FUZZ)/engine/llhttp_%.o) \
                $(FUZZ)/spec/fuzz.o

fuzz: $(FUZZ_TARGETS:%=$(FUZZ)/bin/%)
	FUZZ_DIR=$(FUZZ) bash spec/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Installs clang and libFuzzer's runtime when missing, then checks that a harness links.
$(FUZZ)/.deps: $(BUILD)/.deps
	@mkdir -p $(FUZZ)
	@missing=""; for p in $(FUZZ_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "sluice: installing missing Debian packages for fuzzing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "sluice: run as root or install:$$missing" >&2; exit 1; fi; \
	  (apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) \
	    >$(FUZZ)/apt.log 2>&1 || { tail -20 $(FUZZ)/apt.log; exit 1; }; \
	fi
	@printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
	  >$(FUZZ)/probe.c
	@$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $(FUZZ)/probe $(FUZZ)/probe.c || \
	  { echo "sluice: $(FUZZ_CC) -fsanitize=fuzzer does not link (libFuzzer's runtime is in libclang-rt-*-dev)" >&2; exit 1; }
	@touch $@

$(FUZZ)/engine/%.o: engine/%.c $(FUZZ)/.deps $(LLHTTP)/.stamp
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(WARN) $(FUZZ_CFLAGS) $(PKG_CFLAGS) $(RL_CFLAGS) -c -o $@ $<

$(FUZZ)/engine/embedded.o: $(BUILD)/embedded.c $(FUZZ)/.deps $(LLHTTP)/.stamp
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) -O1 -g $(FUZZ_SAN) $(PKG_CFLAGS) -c -o $@ $<

$(FUZZ)/engine/llhttp_%.o: $(LLHTTP)/.stamp $(FUZZ)/.deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(LLHTTP)/include -c -o $@ $(LLHTTP)/src/$*.c

$(FUZZ)/spec/%.o: spec/fuzz/%.c $(FUZZ)/.deps $(LLHTTP)/.stamp
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(WARN) $(FUZZ_CFLAGS) $(PKG_CFLAGS) -Iengine -c -o $@ $<

# (kept: make would delete them as intermediate files of the pattern below)
.SECONDARY: $(FUZZ_OBJS) $(FUZZ_ALL:%=$(FUZZ)/spec/%.o)

$(FUZZ)/bin/%: $(FUZZ)/spec/%.o $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -g $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)

clean:
	rm -rf $(BUILD) sluice sluice-asan

-include $(SRCS:engine/%.c=$(BUILD)/%.d) $(SRCS:engine/%.c=$(BUILD)/asan/%.d) \
         $(wildcard $(FUZZ)/engine/*.d $(FUZZ)/spec/*.d)
