/* fuzz.h: what the libFuzzer harnesses of spec/fuzz/ share: the entry point libFuzzer calls,
 * a check that turns a broken invariant into a crash, read splits, and a Lua state. */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "sluice.h"

/* Called by libFuzzer with each input; returns 0 (any other value is reserved). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: prints what broke and aborts, so libFuzzer saves the input as a
 * crash-* file and the run fails. Use FUZZ_CHECK(cond, "fmt", ...). */
void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));
#define FUZZ_CHECK(cond, ...) \
  ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__))

/* Prints s[0..n) to stderr escaped and cut at 300 bytes, after a label: for messages. */
void fuzz_show(const char *label, const char *s, size_t n);

/* How an input is cut into reads. A split is deterministic: the same input and mode give
 * the same reads, so every crash reproduces. */
enum fuzz_split_mode {
  FUZZ_WHOLE,                  /* one read of everything */
  FUZZ_BYTES,                  /* one read per byte */
  FUZZ_RANDOM                  /* reads of 1 to 64 bytes, now and then larger */
};

typedef struct fuzz_split {
  int mode;                    /* enum fuzz_split_mode */
  uint64_t rng;                /* xorshift state for FUZZ_RANDOM, seeded from the input */
  size_t left;                 /* bytes not handed out yet */
} fuzz_split;

void fuzz_split_init(fuzz_split *sp, int mode, const uint8_t *data, size_t size);
/* The length of the next read (at least 1), or 0 when everything was handed out. */
size_t fuzz_split_next(fuzz_split *sp);

/* A Lua state with the standard libraries and sluice's modules in package.preload: the C
 * ones that need no loop ("sluice.url", "sluice.html") and every embedded Lua module. Each
 * harness makes one and keeps it for the whole run. */
lua_State *fuzz_lua_state(void);
/* require(name) on L, pushing the module; aborts when it cannot be loaded. */
void fuzz_require(lua_State *L, const char *name);

#endif
