/* http_cookie.h: the cookie jar (RFC 6265): http_cookie.c stores and matches cookies,
 * http_cookie_jar.c is its Lua object (http.cookiejar) and the cookies.txt files. The HTTP
 * client (http_client_cookie.c) holds a jar and asks it for Cookie headers. */
#ifndef SLUICE_HTTP_COOKIE_H
#define SLUICE_HTTP_COOKIE_H

#include <stdint.h>
#include <time.h>

#include "queue.h"
#include "sluice.h"

#define SL_COOKIE_JAR_MT "sluice.http.cookiejar"

/* A stored cookie: one allocation, its strings after the record. */
typedef struct sl_cookie {
  struct sl_cookie *next;      /* in its domain's list */
  sl_queue node;               /* in the jar's list, oldest first (eviction, listing) */
  struct sl_cookie_dom *dom;   /* the domain it is stored under */
  char *name, *value, *path;   /* NUL-terminated, inside the allocation */
  size_t name_len, value_len, path_len;
  int64_t expiry;              /* Unix seconds; INT64_MAX for a session cookie */
  uint64_t creation;           /* the jar's counter: the order of sending and eviction */
  uint8_t host_only, secure, http_only, samesite; /* samesite: 0 none given, 1 Strict,
                                                   * 2 Lax, 3 None (kept, not enforced) */
} sl_cookie;

/* The cookies of one domain (the host of a host-only cookie, or a Domain attribute). */
typedef struct sl_cookie_dom {
  struct sl_cookie_dom *hnext; /* hash chain */
  sl_cookie *first;
  int n;
  uint32_t hash;
  size_t len;
  char name[];                 /* lower case, NUL-terminated */
} sl_cookie_dom;

typedef struct sl_cookie_jar {
  sl_cookie_dom **buckets;
  size_t nbuckets, ndoms;
  sl_queue all;                /* every cookie, oldest first */
  int n;                       /* cookies stored */
  int max_total, max_per_domain;
  uint64_t counter;            /* creation stamps */
  int refs;                    /* the Lua object and each client holding it */
} sl_cookie_jar;

/* Limits (browsers: about 50 per domain, 3000 in all, 4096 bytes a cookie). */
#define SL_COOKIE_MAX_SIZE 4096 /* name and value together */
#define SL_COOKIE_MAX_ATTR 1024 /* a longer attribute value is ignored (RFC 6265bis) */
#define SL_COOKIE_MAX_EXPIRY 253402300799LL /* 9999-12-31 23:59:59: later dates are it */

/* http_cookie.c */
sl_cookie_jar *sl_cookie_jar_new(void);             /* NULL when out of memory; refs 1 */
void sl_cookie_jar_unref(sl_cookie_jar *j);
void sl_cookie_jar_clear(sl_cookie_jar *j);
/* Stores the cookie of one Set-Cookie value sc[0..n), received from host (lower case, IPv6
 * without brackets) for a request to path[0..plen) over TLS or not. Returns 1 when stored
 * (or when it deleted a cookie), 0 when ignored, with why. */
int sl_cookie_set(sl_cookie_jar *j, const char *host, const char *path, size_t plen,
                  int secure, const char *sc, size_t n, int64_t now, const char **why);
/* Appends the Cookie header's value for a request (no "Cookie: "; nothing when no cookie
 * matches) to out, after sep when out is not empty. Returns the number of cookies, or -1
 * when out of memory. */
int sl_cookie_header(sl_cookie_jar *j, const char *host, const char *path, size_t plen,
                     int secure, int64_t now, sl_buf *out);
/* Adds a cookie read from a file, as given (no public-suffix check: the file is trusted as
 * curl trusts it); expired ones are skipped. Returns 1, 0 (skipped) or -1 (memory). */
int sl_cookie_add(sl_cookie_jar *j, const char *domain, int host_only, const char *path,
                  int secure, int http_only, int64_t expiry, const char *name,
                  const char *value, int64_t now);
void sl_cookie_purge(sl_cookie_jar *j, int64_t now); /* drops expired cookies */
/* RFC 6265 5.1.1: the date of an Expires attribute as Unix seconds; -1 when it is no date. */
int sl_cookie_parse_date(const char *s, size_t n, int64_t *t);

/* http_cookie_jar.c */
sl_cookie_jar *sl_cookie_jar_check(lua_State *L, int idx);   /* the jar object at idx */
sl_cookie_jar *sl_cookie_jar_test(lua_State *L, int idx);    /* or NULL */
void sl_cookie_jar_push(lua_State *L, sl_cookie_jar *j);     /* a new object for j */
/* The path of an absolute URL (what follows the authority, before '?' and '#'). */
const char *sl_cookie_url_path(const char *url, size_t n, size_t *plen);
void sl_cookie_register(lua_State *L);   /* adds cookiejar() to the table at the top */

#endif
