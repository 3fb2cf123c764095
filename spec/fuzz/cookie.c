/* cookie.c (fuzz harness): the cookie jar (engine/http_cookie.c, http_cookie_date.c) fed
 * Set-Cookie values from hostile servers.
 *
 * Input: lines; each line's first byte picks the response's host (one of HOSTS), whether
 * it came over https and the request path, the rest is a Set-Cookie value. The whole input
 * is also read as an Expires date.
 *
 * Invariants, beyond "no error and no sanitizer report": the jar keeps its limits (cookies
 * per domain and in all) and its counts equal what its lists hold; a stored cookie has a
 * name, no control byte, a path starting with '/', name and value within 4096 bytes, and
 * was not stored expired; a Domain cookie's domain is the host or a parent of it; a
 * Cookie header holds no control byte, and https gets at least the cookies http gets; a
 * date that parses lies between 1601 and 9999. */
#include <string.h>

#include "fuzz.h"
#include "http_cookie.h"

static const char *const HOSTS[] = {"a.example.com", "example.com", "b.a.example.com",
                                    "127.0.0.1", "www.example.co.uk", "localhost"};
static const char *const PATHS[] = {"/", "/a/b", "/a/", ""};
#define NOW 1700000000

static void check_jar(sl_cookie_jar *j) {
  sl_queue *q;
  size_t i;
  int n = 0, ndoms = 0;
  SL_QUEUE_FOREACH(q, &j->all) {
    sl_cookie *c = SL_QUEUE_DATA(q, sl_cookie, node);
    size_t k;
    n++;
    FUZZ_CHECK(c->name_len > 0 && c->name_len + c->value_len <= SL_COOKIE_MAX_SIZE,
               "a cookie of %zu + %zu bytes", c->name_len, c->value_len);
    FUZZ_CHECK(c->path_len > 0 && c->path[0] == '/', "path '%s'", c->path);
    FUZZ_CHECK(c->expiry > NOW, "an expired cookie stored");
    for (k = 0; k < c->name_len + 1 + c->value_len; k++) {
      unsigned char ch = (unsigned char)c->name[k];
      FUZZ_CHECK(k == c->name_len || (ch >= 0x20 && ch != 0x7f), "control byte %u", ch);
    }
  }
  FUZZ_CHECK(n == j->n && n <= j->max_total, "%d cookies, counted %d", n, j->n);
  for (i = 0; i < j->nbuckets; i++) {
    sl_cookie_dom *d;
    for (d = j->buckets[i]; d != NULL; d = d->hnext) {
      sl_cookie *c;
      int m = 0;
      size_t hi, hl;
      int ok = 0;
      ndoms++;
      for (hi = 0; hi < 6 && !ok; hi++) {
        hl = strlen(HOSTS[hi]);
        ok = strcmp(HOSTS[hi], d->name) == 0 ||
             (hl > d->len && HOSTS[hi][hl - d->len - 1] == '.' &&
              strcmp(HOSTS[hi] + hl - d->len, d->name) == 0);
      }
      FUZZ_CHECK(ok, "domain '%s' is no host's", d->name);
      for (c = d->first; c != NULL; c = c->next, m++)
        FUZZ_CHECK(c->dom == d, "a cookie in the wrong domain list");
      FUZZ_CHECK(m == d->n && m > 0 && m <= j->max_per_domain, "domain %s: %d, counted %d",
                 d->name, m, d->n);
    }
  }
  FUZZ_CHECK((size_t)ndoms == j->ndoms, "%d domains, counted %zu", ndoms, j->ndoms);
}

static void check_header(sl_cookie_jar *j, const char *host, const char *path) {
  sl_buf a = {0}, b = {0};
  size_t k;
  int na = sl_cookie_header(j, host, path, strlen(path), 0, NOW, &a);
  int nb = sl_cookie_header(j, host, path, strlen(path), 1, NOW, &b);
  FUZZ_CHECK(na >= 0 && nb >= na && nb <= j->n, "http %d, https %d of %d", na, nb, j->n);
  for (k = 0; k < a.len; k++)
    FUZZ_CHECK((unsigned char)a.p[k] >= 0x20, "control byte in Cookie");
  sl_buf_free(&a);
  sl_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data, *end = s + size;
  sl_cookie_jar *j = sl_cookie_jar_new();
  int64_t t;
  size_t h;
  FUZZ_CHECK(j != NULL, "out of memory");
  j->max_total = 12;
  j->max_per_domain = 4;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s)), *why;
    size_t len = (size_t)((nl != NULL ? nl : end) - s);
    if (len > 0) {
      unsigned sel = (unsigned char)s[0];
      const char *host = HOSTS[sel % 6], *path = PATHS[(sel / 12) % 4];
      int r = sl_cookie_set(j, host, path, strlen(path), (sel / 6) & 1, s + 1, len - 1, NOW,
                            &why);
      FUZZ_CHECK(r >= 0, "out of memory");
      FUZZ_CHECK(r == 1 || why != NULL, "ignored without a reason");
      check_jar(j);
    }
    s += len + 1;
  }
  for (h = 0; h < 6; h++) {
    check_header(j, HOSTS[h], "/a/b/c");
    check_header(j, HOSTS[h], "/");
  }
  if (sl_cookie_parse_date((const char *)data, size, &t) == 0)
    FUZZ_CHECK(t >= -11644473600LL && t < 253402300800LL, "date %lld", (long long)t);
  sl_cookie_jar_unref(j);
  return 0;
}
