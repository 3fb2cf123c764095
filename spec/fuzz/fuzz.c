/* fuzz.c: the helpers of fuzz.h, linked into every harness: invariant failures, read
 * splits, and the Lua state the harnesses drive sluice's modules through. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "\n==fuzz== invariant broken at %s:%d: %s\n==fuzz== ", file, line, cond);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  abort();
}

void fuzz_show(const char *label, const char *s, size_t n) {
  size_t i, shown = n < 300 ? n : 300;
  fprintf(stderr, "==fuzz== %s (%zu bytes): \"", label, n);
  for (i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\' || c == '"')
      fprintf(stderr, "\\%c", c);
    else if (c >= 0x20 && c < 0x7f)
      fputc(c, stderr);
    else
      fprintf(stderr, "\\x%02x", c);
  }
  fprintf(stderr, "\"%s\n", shown < n ? "..." : "");
}

/* ------------------------------------------------------------ splits */

/* FNV-1a over the input, so that a random split depends on every byte of it. */
static uint64_t fuzz_hash(const uint8_t *data, size_t size) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  size_t i;
  for (i = 0; i < size; i++)
    h = (h ^ data[i]) * UINT64_C(0x100000001b3);
  return h | 1;                /* xorshift needs a state other than 0 */
}

void fuzz_split_init(fuzz_split *sp, int mode, const uint8_t *data, size_t size) {
  sp->mode = mode;
  sp->rng = fuzz_hash(data, size);
  sp->left = size;
}

size_t fuzz_split_next(fuzz_split *sp) {
  size_t n;
  uint64_t x;
  if (sp->left == 0)
    return 0;
  if (sp->mode == FUZZ_WHOLE) {
    n = sp->left;
  } else if (sp->mode == FUZZ_BYTES) {
    n = 1;
  } else {
    x = sp->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sp->rng = x;
    /* Mostly short reads, which cut names, values and chunk sizes; one in eight up to 4 KiB. */
    n = (x >> 8) % 8 == 0 ? 1 + (size_t)((x >> 16) % 4096) : 1 + (size_t)((x >> 16) % 64);
    if (n > sp->left)
      n = sp->left;
  }
  sp->left -= n;
  return n;
}

/* ------------------------------------------------------------ Lua */

lua_State *fuzz_lua_state(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    abort();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_sluice_url);
  lua_setfield(L, -2, "sluice.url");
  lua_pushcfunction(L, luaopen_sluice_html);
  lua_setfield(L, -2, "sluice.html");
  lua_pop(L, 1);
  sl_embedded_install(L);
  return L;
}

void fuzz_require(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz: cannot load %s: %s\n", name, lua_tostring(L, -1));
    abort();
  }
}
