/* url.h: sluice.url's internals (url.c on top of url_host.c and seen.c, all three on
 * url_util.c), also used by the HTTP client (hosts) and sluice.html (resolving links). */
#ifndef SLUICE_URL_H
#define SLUICE_URL_H

#include "sluice.h"

#define SL_URL_SEEN_SET_MT "sluice.url.seen_set"
#define SL_URL_MAX_HOST    255   /* bytes of a normalized host name, brackets included */

/* Why a URL was refused: code is "EINVAL" or "ENOTSUP", why a static reason, and what (when
 * not NULL) the offending scheme, quoted after the reason. */
typedef struct sl_url_err {
  const char *code, *why;
  const char *what;
  size_t what_len;
} sl_url_err;

/* Bytes the out buffer of sl_url_normalize needs for an n-byte URL and a blen-byte base. */
size_t sl_url_bound(size_t n, size_t blen);
/* Resolves s[0..n) against base (NULL for none) and normalizes it into out (which it also
 * uses as scratch space). Returns the length, or -1 with e set. */
ptrdiff_t sl_url_normalize(const char *s, size_t n, const char *base, size_t blen,
                           char *out, sl_url_err *e);
int sl_url_fail(lua_State *L, const sl_url_err *e);  /* pushes the fail triple; returns 3 */

/* url_util.c */
int sl_url_einval(sl_url_err *e, const char *why);   /* sets an EINVAL; returns -1 */
int sl_url_hexval(unsigned c);                       /* a hex digit's value, or -1 */
int sl_url_escape_at(const char *s, size_t n);       /* the byte "%XX" at s stands for, or -1 */
uint64_t sl_url_hash(const char *s, size_t n);       /* url.fingerprint */
uint64_t sl_url_mix(uint64_t h);                     /* a 64-bit finalizer (fmix64) */

/* The authority of an http(s) URL once checked (url_host.c). */
typedef struct sl_url_auth {
  char host[SL_URL_MAX_HOST + 1]; /* normalized and NUL-ended; IPv6 keeps its brackets */
  size_t host_len;
  int port;                    /* the explicit port (1-65535), or -1 when absent or empty */
} sl_url_auth;

/* Parses the authority s[0..n) as the WHATWG URL standard parses a special URL's host and
 * port: IPv4 addresses in any number form become dotted quads, IPv6 literals are validated
 * and written canonically, other hosts are percent-decoded and lower-cased. User info, port
 * 0 and characters outside ALPHA DIGIT - . _ ~ are refused. Returns 0, or -1 with e set. */
int sl_url_authority(const char *s, size_t n, sl_url_auth *a, sl_url_err *e);

/* seen.c: adds url.seen_set to the table at the top. */
void sl_seen_register(lua_State *L);

#endif
