/* url.c (fuzz harness): sl_url_normalize, url.parse and url.origin on arbitrary bytes. The
 * input is a URL, optionally followed by '\n' and a base URL to resolve it against.
 *
 * Invariants, beyond "no sanitizer report":
 * - the output fits in sl_url_bound bytes (the buffer is exactly that size, so ASan sees any
 *   write past it) and is plain: "http://" or "https://", no blank, control, non-ASCII,
 *   '#' or other byte a URL may not hold raw, every '%' starting an upper-case escape;
 * - normalizing is idempotent: normalize(n) == n, and normalize(n, base) == n;
 * - resolving against a base equals resolving against the normalized base (for bases with
 *   no blank and no dot segment: see base_is_plain);
 * - url.parse(n) succeeds, and formatting its parts back into a URL normalizes to n;
 * - without a base: url.parse(s) succeeding implies normalize(s) succeeds and
 *   normalize(format(parse(s))) == normalize(s); url.origin(s) succeeds exactly when
 *   normalize(s) does, and equals url.origin(normalize(s)). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "url.h"

static lua_State *L;           /* made once; the sluice.url module stays at index 1 */

/* sl_url_normalize into a heap buffer of exactly sl_url_bound bytes. Returns that buffer
 * (the caller frees it) with the length in *len, or NULL when the URL was refused. */
static char *norm(const char *s, size_t n, const char *base, size_t blen, size_t *len) {
  size_t bound = sl_url_bound(n, blen);
  char *out = (char *)malloc(bound);
  sl_url_err e;
  ptrdiff_t r;
  FUZZ_CHECK(out != NULL, "out of memory");
  memset(&e, 0, sizeof e);
  r = sl_url_normalize(s, n, base, blen, out, &e);
  if (r < 0) {
    FUZZ_CHECK(e.code != NULL && e.why != NULL, "refused without a reason");
    FUZZ_CHECK(strcmp(e.code, "EINVAL") == 0 || strcmp(e.code, "ENOTSUP") == 0,
               "unexpected code %s", e.code);
    free(out);
    return NULL;
  }
  FUZZ_CHECK((size_t)r <= bound, "%td bytes written for a bound of %zu", r, bound);
  *len = (size_t)r;
  return out;
}

static int hexdigit_upper(unsigned c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* What every normalized URL looks like. */
static void check_plain(const char *u, size_t n) {
  size_t i;
  FUZZ_CHECK((n >= 8 && memcmp(u, "http://", 7) == 0) ||
             (n >= 9 && memcmp(u, "https://", 8) == 0), "bad scheme in %.*s", (int)n, u);
  for (i = 0; i < n; i++) {
    unsigned c = (unsigned char)u[i];
    FUZZ_CHECK(c > 0x20 && c < 0x7f && strchr("\"<>\\^`{|}#", (int)c) == NULL,
               "byte 0x%02x at %zu of a normalized URL", c, i);
    if (c == '%')
      FUZZ_CHECK(i + 2 < n && hexdigit_upper((unsigned char)u[i + 1]) &&
                 hexdigit_upper((unsigned char)u[i + 2]), "bad escape at %zu", i);
  }
}

static void expect_same(const char *what, const char *a, size_t an, const char *b,
                        size_t bn) {
  if (an == bn && memcmp(a, b, an) == 0)
    return;
  fuzz_show("first", a, an);
  fuzz_show("second", b, bn);
  FUZZ_CHECK(0, "%s", what);
}

/* Calls url.<fn>(s) and leaves its first result on the stack (nil when refused). */
static int call_url(const char *fn, const char *s, size_t n) {
  lua_getfield(L, 1, fn);
  lua_pushlstring(L, s, n);
  lua_call(L, 1, 1);
  return !lua_isnil(L, -1);
}

/* Formats the table url.parse left at the top back into a URL, pushed as a string
 * (the table stays below it). */
static void format_parsed(void) {
  int t = lua_gettop(L);
  const char *host;
  FUZZ_CHECK(lua_getfield(L, t, "scheme") == LUA_TSTRING, "parse gave no scheme");
  lua_pushliteral(L, "://");
  FUZZ_CHECK(lua_getfield(L, t, "host") == LUA_TSTRING, "parse gave no host");
  host = lua_tostring(L, -1);
  if (strchr(host, ':') != NULL) {   /* an IPv6 address: parse takes its brackets off */
    lua_pushliteral(L, "[");
    lua_insert(L, -2);
    lua_pushliteral(L, "]");
  }
  lua_pushliteral(L, ":");
  FUZZ_CHECK(lua_getfield(L, t, "port") == LUA_TNUMBER, "parse gave no port");
  FUZZ_CHECK(lua_tointeger(L, -1) >= 0 && lua_tointeger(L, -1) <= 65535, "bad port");
  FUZZ_CHECK(lua_getfield(L, t, "path") == LUA_TSTRING, "parse gave no path");
  if (lua_getfield(L, t, "query") != LUA_TNIL) {
    lua_pushliteral(L, "?");
    lua_insert(L, -2);
  } else {
    lua_pop(L, 1);
  }
  if (lua_getfield(L, t, "fragment") != LUA_TNIL) {
    lua_pushliteral(L, "#");
    lua_insert(L, -2);
  } else {
    lua_pop(L, 1);
  }
  lua_concat(L, lua_gettop(L) - t);
}

/* n1 = normalize(s [, base]) holds: the checks that need only n1. */
static void check_normalized(const char *n1, size_t len1, const char *base, size_t blen) {
  size_t len2, flen;
  char *n2;
  const char *f;
  check_plain(n1, len1);
  n2 = norm(n1, len1, NULL, 0, &len2);
  FUZZ_CHECK(n2 != NULL, "a normalized URL is refused: %.*s", (int)len1, n1);
  expect_same("normalize is not idempotent", n1, len1, n2, len2);
  free(n2);
  if (base != NULL) {
    n2 = norm(n1, len1, base, blen, &len2);
    FUZZ_CHECK(n2 != NULL, "a normalized URL is refused with a base");
    expect_same("normalize(n, base) != n", n1, len1, n2, len2);
    free(n2);
  }
  FUZZ_CHECK(call_url("parse", n1, len1), "url.parse refuses a normalized URL");
  format_parsed();
  f = lua_tolstring(L, -1, &flen);
  n2 = norm(f, flen, NULL, 0, &len2);
  FUZZ_CHECK(n2 != NULL, "the formatted parts of url.parse are refused");
  expect_same("normalize(format(parse(n))) != n", n1, len1, n2, len2);
  free(n2);
}

/* Without a base: url.parse and url.origin agree with normalize on the raw input. */
static void check_raw(const char *s, size_t n, const char *n1, size_t len1) {
  size_t flen, olen1, olen2, len2;
  const char *f, *o1, *o2;
  char *n2;
  if (call_url("parse", s, n)) {
    FUZZ_CHECK(n1 != NULL, "url.parse accepts what normalize refuses");
    format_parsed();
    f = lua_tolstring(L, -1, &flen);
    n2 = norm(f, flen, NULL, 0, &len2);
    FUZZ_CHECK(n2 != NULL, "the formatted parts of url.parse are refused");
    expect_same("normalize(format(parse(s))) != normalize(s)", n1, len1, n2, len2);
    free(n2);
  }
  if (!call_url("origin", s, n)) {
    FUZZ_CHECK(n1 == NULL, "url.origin refuses what normalize accepts");
    return;
  }
  FUZZ_CHECK(n1 != NULL, "url.origin accepts what normalize refuses");
  o1 = lua_tolstring(L, -1, &olen1);
  FUZZ_CHECK(call_url("origin", n1, len1), "url.origin refuses a normalized URL");
  o2 = lua_tolstring(L, -1, &olen2);
  expect_same("origin(s) != origin(normalize(s))", o1, olen1, o2, olen2);
  /* "scheme://host:port": all but the port starts the normalized URL */
  while (olen2 > 0 && o2[olen2 - 1] != ':')
    olen2--;
  FUZZ_CHECK(olen2 > 1 && olen2 - 1 <= len1 && memcmp(o2, n1, olen2 - 1) == 0,
             "origin %s does not start %.*s", o2, (int)len1, n1);
}

/* A base that sl_url_normalize uses as it stands: no blank or control byte (the reference
 * is cleaned of them, a base is not) and no "." segment in its path (an RFC 3986 merge keeps
 * a base's dot segments, which normalizing it first would have removed). */
static int base_is_plain(const char *b, size_t n) {
  size_t i, p = 0;
  for (i = 0; i < n; i++)
    if ((unsigned char)b[i] <= 0x20)
      return 0;
  for (i = 0; i + 2 < n && p == 0; i++)
    if (b[i] == '/' && b[i + 1] == '/')
      for (p = i + 2; p < n && b[p] != '/' && b[p] != '?' && b[p] != '#'; p++)
        ;
  for (i = p; i < n && b[i] != '?' && b[i] != '#'; i++)
    if ((b[i] == '/' && i + 1 < n && b[i + 1] == '.') ||
        (b[i] == '%' && i + 2 < n && b[i + 1] == '2' && (b[i + 2] | 32) == 'e'))
      return 0;
  return 1;
}

/* Resolving against a base gives what resolving against the normalized base gives. */
static void check_base(const char *s, size_t n, const char *base, size_t blen,
                       const char *n1, size_t len1) {
  size_t len2, len3;
  char *b2, *n3;
  if (!base_is_plain(base, blen) || (b2 = norm(base, blen, NULL, 0, &len2)) == NULL)
    return;
  n3 = norm(s, n, b2, len2, &len3);
  if (n1 == NULL || n3 == NULL) {
    FUZZ_CHECK(n1 == NULL && n3 == NULL, "refused against only one of base and its "
               "normalized form %.*s", (int)len2, b2);
  } else {
    expect_same("normalize(s, base) != normalize(s, normalize(base))", n1, len1, n3, len3);
  }
  free(n3);
  free(b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data, *base = NULL;
  const char *nl = (const char *)memchr(data, '\n', size);
  size_t n = size, blen = 0, len1 = 0;
  char *n1;
  if (L == NULL) {
    L = fuzz_lua_state();
    fuzz_require(L, "sluice.url");
  }
  lua_settop(L, 1);
  if (nl != NULL) {
    n = (size_t)(nl - s);
    base = nl + 1;
    blen = size - n - 1;
  }
  n1 = norm(s, n, base, blen, &len1);
  if (n1 != NULL)
    check_normalized(n1, len1, base, blen);
  if (base == NULL)
    check_raw(s, n, n1, len1);
  else
    check_base(s, n, base, blen, n1, len1);
  free(n1);
  lua_settop(L, 1);
  return 0;
}
