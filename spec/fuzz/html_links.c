/* html_links.c (fuzz harness): the SAX link extractor of engine/html.c on arbitrary bytes,
 * driven through its Lua API (html.links, and html.parser's feed and finish).
 *
 * Invariants, beyond "no sanitizer report":
 * - html.links(body) and a parser fed the body at once (p:feed, p:finish) give the same
 *   links in the same order, and the same base and robots directives;
 * - every link, and the effective base, is a normalized URL: sl_url_normalize(link) ==
 *   link; no link appears twice; whatever the reads the page came in;
 * - with SLUICE_FUZZ_STRICT set in the environment, the page fed in reads that end before
 *   a '<', in random reads, and a byte at a time gives the same as fed at once. Not checked
 *   by default: libxml2 2.9's push parser itself reads malformed markup differently when it
 *   is cut, even between tags ("<s\" f=\"><a href=\">" cut before "<a" gains a link). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "url.h"

#define BASE "http://example.com/dir/page.html"   /* the page's own URL */
#define BYTES_MAX 2048         /* pages up to this size are also fed one byte at a time */

static lua_State *L;           /* made once; the sluice.html module stays at index 1 */

/* html.links(body, BASE): pushes links and info. */
static void links_whole(const char *body, size_t n) {
  lua_getfield(L, 1, "links");
  lua_pushlstring(L, body, n);
  lua_pushliteral(L, BASE);
  lua_call(L, 2, 2);
}

/* Reads that end only just before a '<': every read holds whole tags (split mode). */
#define SPLIT_TAGS 100

/* The length of the next read at off for mode: a fuzz_split mode, or SPLIT_TAGS, which
 * ends the read before one of the next few '<' (chosen by the split's random numbers). */
static size_t next_read(fuzz_split *sp, int mode, const char *body, size_t off, size_t n) {
  size_t end = off + 1, skip;
  if (mode != SPLIT_TAGS)
    return fuzz_split_next(sp);
  if (off >= n)
    return 0;
  skip = fuzz_split_next(sp) % 4;   /* a random number, here: how many '<' to pass */
  for (;;) {
    const char *lt = (const char *)memchr(body + end, '<', n - end);
    if (lt == NULL)
      return n - off;
    end = (size_t)(lt - body);
    if (skip-- == 0)
      return end - off;
    end++;
  }
}

/* The same through a parser fed in the reads of a split: pushes links and info. */
static void links_split(const char *body, size_t n, int mode) {
  fuzz_split sp;
  size_t off = 0, len;
  int p;
  lua_getfield(L, 1, "parser");
  lua_pushliteral(L, BASE);
  lua_call(L, 1, 1);
  p = lua_gettop(L);
  fuzz_split_init(&sp, mode == SPLIT_TAGS ? FUZZ_RANDOM : mode, (const uint8_t *)body, n);
  if (mode == SPLIT_TAGS)
    sp.left = (size_t)-1;      /* used only for its random numbers */
  while ((len = next_read(&sp, mode, body, off, n)) > 0) {
    lua_getfield(L, p, "feed");
    lua_pushvalue(L, p);
    lua_pushlstring(L, body + off, len);
    lua_call(L, 2, 0);
    off += len;
  }
  lua_getfield(L, p, "finish");
  lua_pushvalue(L, p);
  lua_call(L, 1, 2);
  lua_remove(L, p);
}

/* A normalized URL normalizes to itself. */
static void check_normalized(const char *what, const char *u, size_t n) {
  size_t bound = sl_url_bound(n, 0);
  char *out = (char *)malloc(bound);
  sl_url_err e;
  ptrdiff_t r;
  FUZZ_CHECK(out != NULL, "out of memory");
  r = sl_url_normalize(u, n, NULL, 0, out, &e);
  if (r < 0 || (size_t)r != n || memcmp(out, u, n) != 0) {
    fuzz_show(what, u, n);
    if (r >= 0)
      fuzz_show("normalized", out, (size_t)r);
    FUZZ_CHECK(0, "%s is not a normalized URL", what);
  }
  free(out);
}

/* The links at idx (and info at idx + 1) are all normalized, each once. */
static void check_links(int idx) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  size_t len;
  const char *s;
  lua_newtable(L);             /* seen */
  for (i = 1; i <= n; i++) {
    FUZZ_CHECK(lua_rawgeti(L, idx, i) == LUA_TSTRING, "link %lld is not a string",
               (long long)i);
    s = lua_tolstring(L, -1, &len);
    check_normalized("link", s, len);
    lua_pushvalue(L, -1);
    FUZZ_CHECK(lua_rawget(L, -3) == LUA_TNIL, "link %s appears twice", s);
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx + 1, "base") == LUA_TSTRING) {
    s = lua_tolstring(L, -1, &len);
    check_normalized("base", s, len);
  }
  lua_pop(L, 1);
}

static void expect_equal(int a, int b, const char *what, const char *how) {
  size_t an = 0, bn = 0;
  const char *as, *bs;
  if (lua_rawequal(L, a, b))
    return;
  as = lua_tolstring(L, a, &an);
  bs = lua_tolstring(L, b, &bn);
  fuzz_show("one feed", as ? as : "(nil)", as ? an : 5);
  fuzz_show(how, bs ? bs : "(nil)", bs ? bn : 5);
  FUZZ_CHECK(0, "%s differs between the page fed at once and fed %s", what, how);
}

/* links and info at a equal those at b. */
static void compare(int a, int b, const char *how) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, a), m = (lua_Integer)lua_rawlen(L, b);
  /* Not the title: libxml2's push parser cuts the text of malformed markup inside <title>
   * differently at the ends of chunks ("<title><style></>>"), which costs nothing but a
   * title; links, the base and robots directives must not depend on reads. */
  static const char *const fields[] = {"base", "robots"};
  int top = lua_gettop(L);
  size_t f;
  for (i = 1; i <= (n > m ? n : m); i++) {
    lua_rawgeti(L, a, i);
    lua_rawgeti(L, b, i);
    expect_equal(top + 1, top + 2, "a link", how);
    lua_settop(L, top);
  }
  for (f = 0; f < sizeof fields / sizeof fields[0]; f++) {
    lua_getfield(L, a + 1, fields[f]);
    lua_getfield(L, b + 1, fields[f]);
    expect_equal(top + 1, top + 2, fields[f], how);
    lua_settop(L, top);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int strict;
  const char *body = (const char *)data;
  if (L == NULL) {
    L = fuzz_lua_state();
    fuzz_require(L, "sluice.html");
    strict = getenv("SLUICE_FUZZ_STRICT") != NULL;
  }
  lua_settop(L, 1);
  links_split(body, size, FUZZ_WHOLE);    /* 2, 3: one p:feed */
  check_links(2);
  links_whole(body, size);                /* 4, 5: html.links */
  compare(2, 4, "to html.links");
  /* Split reads run always (for the sanitizers); their results are compared when strict. */
  links_split(body, size, SPLIT_TAGS);    /* 6, 7 */
  check_links(6);
  if (strict)
    compare(2, 6, "in reads of whole tags");
  links_split(body, size, FUZZ_RANDOM);   /* 8, 9 */
  check_links(8);
  if (strict)
    compare(2, 8, "in random reads");
  if (size <= BYTES_MAX) {
    links_split(body, size, FUZZ_BYTES);  /* 10, 11 */
    check_links(10);
    if (strict)
      compare(2, 10, "a byte at a time");
  }
  lua_settop(L, 1);
  return 0;
}
