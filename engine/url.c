/* url.c: "sluice.url", the crawler's URL toolkit: RFC 3986 resolution and normalization of
 * http(s) URLs, parse, origin, fingerprints. It sits on the module's other files: hosts
 * are in url_host.c, seen sets in seen.c, and the escapes and hash all three use in
 * url_util.c. */
#include <stdlib.h>
#include <string.h>

#include "sluice.h"
#include "url.h"

/* One URL reference split into its five parts (RFC 3986, appendix B). Each part points
 * into the string split; a NULL pointer means the part (and its delimiter) is absent. */
typedef struct url_ref {
  const char *scheme, *auth, *path, *query, *frag;
  size_t scheme_len, auth_len, path_len, query_len, frag_len;
} url_ref;

static const char HEX[] = "0123456789ABCDEF";

/* ------------------------------------------------------------ characters */

static int url_is_alpha(unsigned c) {
  return (c | 32) - 'a' < 26;
}

static int url_is_digit(unsigned c) {
  return c - '0' < 10;
}

/* ALPHA DIGIT - . _ ~: their escapes are decoded. */
static int url_is_unreserved(unsigned c) {
  return url_is_alpha(c) || url_is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Bytes that may not appear raw in a path or query: they are written as %XX. */
static int url_must_encode(unsigned c) {
  return c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' ||
         c == '^' || c == '`' || c == '{' || c == '|' || c == '}';
}

/* Whether a[0..an) and b[0..bn) are equal but for the case of letters. */
static int url_ieq(const char *a, size_t an, const char *b, size_t bn) {
  size_t i;
  if (an != bn)
    return 0;
  for (i = 0; i < an; i++) {
    unsigned x = (unsigned char)a[i], y = (unsigned char)b[i];
    if ((url_is_alpha(x) ? x | 32 : x) != (url_is_alpha(y) ? y | 32 : y))
      return 0;
  }
  return 1;
}

/* ------------------------------------------------------------ splitting */

/* Splits s[0..n) as RFC 3986's appendix B regular expression does. A prefix before ':'
 * that is not a valid scheme name leaves the reference schemeless ("./a:b" is a path). */
static void url_split(const char *s, size_t n, url_ref *r) {
  size_t i = 0, j;
  memset(r, 0, sizeof *r);
  if (n > 0 && url_is_alpha((unsigned char)s[0])) {
    for (j = 1; j < n; j++) {
      unsigned c = (unsigned char)s[j];
      if (!url_is_alpha(c) && !url_is_digit(c) && c != '+' && c != '-' && c != '.')
        break;
    }
    if (j < n && s[j] == ':') {
      r->scheme = s;
      r->scheme_len = j;
      i = j + 1;
    }
  }
  if (i + 1 < n && s[i] == '/' && s[i + 1] == '/') {
    i += 2;
    r->auth = s + i;
    while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
      i++;
    r->auth_len = (size_t)(s + i - r->auth);
  }
  r->path = s + i;
  while (i < n && s[i] != '?' && s[i] != '#')
    i++;
  r->path_len = (size_t)(s + i - r->path);
  if (i < n && s[i] == '?') {
    r->query = s + ++i;
    while (i < n && s[i] != '#')
      i++;
    r->query_len = (size_t)(s + i - r->query);
  }
  if (i < n && s[i] == '#') {
    r->frag = s + i + 1;
    r->frag_len = n - i - 1;
  }
}

/* Checks the scheme of r: 1 for http, 2 for https, -1 with e set otherwise. */
static int url_scheme(const url_ref *r, sl_url_err *e) {
  if (r->scheme == NULL)
    return sl_url_einval(e, "relative URL without a base");
  if (url_ieq(r->scheme, r->scheme_len, "http", 4))
    return 1;
  if (url_ieq(r->scheme, r->scheme_len, "https", 5))
    return 2;
  e->code = "ENOTSUP";
  e->why = "unsupported scheme";
  e->what = r->scheme;
  e->what_len = r->scheme_len;
  return -1;
}

/* ------------------------------------------------------------ ports */
/* Hosts and ports are parsed in url_host.c (sl_url_authority). */

/* Writes ":port" unless the port is absent (< 0) or dflt. Returns the bytes written. */
static size_t url_put_port(char *out, int port, int dflt) {
  char digits[8];
  size_t n = 0, o = 0;
  if (port < 0 || port == dflt)
    return 0;
  do {
    digits[n++] = (char)('0' + port % 10);
    port /= 10;
  } while (port > 0);
  out[o++] = ':';
  while (n > 0)
    out[o++] = digits[--n];
  return o;
}

/* ------------------------------------------------------ path and query */

/* Copies s[0..n) to out normalizing percent-encoding: escapes get upper-case hex digits,
 * escapes of unreserved characters are decoded, a stray '%' becomes %25, and bytes that may
 * not appear raw are encoded. Writes at most 3n bytes; returns how many. */
static size_t url_pct(const char *s, size_t n, char *out) {
  size_t i = 0, o = 0;
  while (i < n) {
    unsigned c = (unsigned char)s[i];
    if (c == '%') {
      int v = sl_url_escape_at(s + i, n - i);
      if (v >= 0 && url_is_unreserved((unsigned)v)) {
        out[o++] = (char)v;
        i += 3;
        continue;
      }
      out[o++] = '%';
      if (v < 0) {
        out[o++] = '2';
        out[o++] = '5';
        i++;
      } else {
        out[o++] = HEX[v >> 4];
        out[o++] = HEX[v & 15];
        i += 3;
      }
    } else if (url_must_encode(c)) {
      out[o++] = '%';
      out[o++] = HEX[c >> 4];
      out[o++] = HEX[c & 15];
      i++;
    } else {
      out[o++] = (char)c;
      i++;
    }
  }
  return o;
}

/* RFC 3986 §5.2.4 on a path that starts with '/', in place: "." and ".." segments go, and
 * ".." never climbs above the root. The write position never passes the read position,
 * so the segments can be moved down within the same buffer. Returns the new length. */
static size_t url_remove_dots(char *p, size_t n) {
  size_t i = 0, o = 0;
  while (i < n) {
    size_t j = i + 1, len;
    int last;
    while (j < n && p[j] != '/')
      j++;
    len = j - i - 1;
    last = j == n;
    if (len == 1 && p[i + 1] == '.') {
      if (last)
        p[o++] = '/';
    } else if (len == 2 && p[i + 1] == '.' && p[i + 2] == '.') {
      while (o > 0 && p[--o] != '/')
        ;
      if (last)
        p[o++] = '/';
    } else {
      memmove(p + o, p + i, len + 1);
      o += len + 1;
    }
    i = j;
  }
  return o;
}

/* ------------------------------------------------------------ normalize */

size_t sl_url_bound(size_t n, size_t blen) {
  return 5 * (n + blen) + 64;
}

/* Trims leading and trailing C0 controls and spaces and drops tabs, CR and LF inside, as
 * browsers do with href values. Returns s itself when nothing inside had to go, else the
 * cleaned copy in scratch (n bytes at most). */
static const char *url_clean(const char *s, size_t *n, char *scratch) {
  size_t len = *n, i, o = 0;
  while (len > 0 && (unsigned char)s[0] <= 0x20)
    s++, len--;
  while (len > 0 && (unsigned char)s[len - 1] <= 0x20)
    len--;
  *n = len;
  for (i = 0; i < len; i++)
    if (s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
      break;
  if (i == len)
    return s;
  for (i = 0; i < len; i++)
    if (s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
      scratch[o++] = s[i];
  *n = o;
  return scratch;
}

/* Resolves r against base (RFC 3986 §5.2.2, non-strict: "http:g" with an http base is
 * relative) into t. The merged path of §5.2.3, when one is needed, is built in scratch. */
static int url_resolve(const url_ref *r, const char *base, size_t blen, url_ref *t,
                       char *scratch, sl_url_err *e) {
  url_ref b;
  if (r->scheme != NULL && (base == NULL || r->auth != NULL)) {
    *t = *r;
    return 0;
  }
  if (base == NULL)
    return sl_url_einval(e, "relative URL without a base");
  url_split(base, blen, &b);
  if (b.scheme == NULL || b.auth == NULL || url_scheme(&b, e) < 0)
    return sl_url_einval(e, "base is not an absolute http(s) URL");
  if (r->scheme != NULL && !url_ieq(r->scheme, r->scheme_len, b.scheme, b.scheme_len)) {
    *t = *r;                   /* "https:g" against an http base: absolute, and hostless */
    return 0;
  }
  *t = *r;
  t->scheme = b.scheme;
  t->scheme_len = b.scheme_len;
  if (r->auth != NULL)
    return 0;
  t->auth = b.auth;
  t->auth_len = b.auth_len;
  if (r->path_len == 0) {
    t->path = b.path;
    t->path_len = b.path_len;
    if (r->query == NULL) {
      t->query = b.query;
      t->query_len = b.query_len;
    }
  } else if (r->path[0] != '/') {
    size_t keep = b.path_len;
    while (keep > 0 && b.path[keep - 1] != '/')
      keep--;
    if (keep == 0)
      scratch[keep++] = '/';   /* a base with an authority and an empty path */
    else
      memcpy(scratch, b.path, keep);
    memcpy(scratch + keep, r->path, r->path_len);
    t->path = scratch;
    t->path_len = keep + r->path_len;
  }
  return 0;
}

ptrdiff_t sl_url_normalize(const char *s, size_t n, const char *base, size_t blen,
                           char *out, sl_url_err *e) {
  char *scratch = out + 3 * (n + blen) + 32;  /* see sl_url_bound */
  url_ref r, t;
  sl_url_auth a;
  size_t o = 0, p0;
  int https;
  s = url_clean(s, &n, scratch);
  url_split(s, n, &r);
  if (r.scheme != NULL && url_scheme(&r, e) < 0)
    return -1;
  if (url_resolve(&r, base, blen, &t, scratch + n, e) < 0)
    return -1;
  if ((https = url_scheme(&t, e)) < 0)
    return -1;
  https = https == 2;
  if (t.auth == NULL)
    return sl_url_einval(e, "no host");
  if (sl_url_authority(t.auth, t.auth_len, &a, e) < 0)
    return -1;
  memcpy(out, https ? "https://" : "http://", o = https ? 8 : 7);
  memcpy(out + o, a.host, a.host_len);
  o += a.host_len;
  o += url_put_port(out + o, a.port, https ? 443 : 80);
  p0 = o;
  if (t.path_len == 0) {
    out[o++] = '/';
  } else {
    o += url_pct(t.path, t.path_len, out + o);
    o = p0 + url_remove_dots(out + p0, o - p0);
  }
  if (t.query != NULL && t.query_len > 0) {
    out[o++] = '?';
    o += url_pct(t.query, t.query_len, out + o);
  }
  return (ptrdiff_t)o;
}

int sl_url_fail(lua_State *L, const sl_url_err *e) {
  if (e->what == NULL)
    return sl_fail(L, e->code, "%s", e->why);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s '", e->code, e->why);
  lua_pushlstring(L, e->what, e->what_len < 32 ? e->what_len : 32);
  lua_pushliteral(L, "'");
  lua_concat(L, 3);
  lua_pushstring(L, e->code);
  return 3;
}

/* A scratch area of n bytes: on the C stack when small, else a userdata left on the Lua
 * stack (collected later), so no path leaks on an error. */
static char *url_scratch(lua_State *L, char *local, size_t local_size, size_t n) {
  return n <= local_size ? local : (char *)lua_newuserdatauv(L, n, 0);
}

/* url.normalize(s [, base]) -> string | nil, msg, code */
static int url_normalize_l(lua_State *L) {
  size_t n, blen = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *base = luaL_optlstring(L, 2, NULL, &blen);
  char local[2048], *out;
  sl_url_err e;
  ptrdiff_t len;
  if (n + blen > ((size_t)-1 - 64) / 5)
    return sl_fail(L, "EINVAL", "URL too long");
  out = url_scratch(L, local, sizeof local, sl_url_bound(n, blen));
  len = sl_url_normalize(s, n, base, blen, out, &e);
  if (len < 0)
    return sl_url_fail(L, &e);
  lua_pushlstring(L, out, (size_t)len);
  return 1;
}

/* Splits an absolute http(s) URL and checks its authority, for parse and origin. Returns
 * 1 for http, 2 for https, or -1 with e set. */
static int url_absolute(const char *s, size_t n, url_ref *r, sl_url_auth *a, sl_url_err *e) {
  int kind;
  url_split(s, n, r);
  if (r->scheme == NULL)
    return sl_url_einval(e, "not an absolute URL");
  if ((kind = url_scheme(r, e)) < 0)
    return -1;
  if (r->auth == NULL)
    return sl_url_einval(e, "no host");
  if (sl_url_authority(r->auth, r->auth_len, a, e) < 0)
    return -1;
  return kind;
}

static void url_setfield_opt(lua_State *L, const char *name, const char *s, size_t n) {
  if (s == NULL)
    return;
  lua_pushlstring(L, s, n);
  lua_setfield(L, -2, name);
}

/* url.parse(s) -> {scheme, host, port, path, query, fragment} | nil, msg, code */
static int url_parse_l(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  url_ref r;
  sl_url_auth a;
  sl_url_err e;
  int kind = url_absolute(s, n, &r, &a, &e);
  if (kind < 0)
    return sl_url_fail(L, &e);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, kind == 2 ? "https" : "http");
  lua_setfield(L, -2, "scheme");
  if (a.host[0] == '[')
    lua_pushlstring(L, a.host + 1, a.host_len - 2);
  else
    lua_pushlstring(L, a.host, a.host_len);
  lua_setfield(L, -2, "host");
  lua_pushinteger(L, a.port >= 0 ? a.port : kind == 2 ? 443 : 80);
  lua_setfield(L, -2, "port");
  lua_pushlstring(L, r.path, r.path_len);
  lua_setfield(L, -2, "path");
  url_setfield_opt(L, "query", r.query, r.query_len);
  url_setfield_opt(L, "fragment", r.frag, r.frag_len);
  return 1;
}

/* url.origin(s) -> "scheme://host:port" | nil, msg, code. No table, one string. */
static int url_origin_l(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char local[512], out[SL_URL_MAX_HOST + 32], *scratch;
  url_ref r;
  sl_url_auth a;
  sl_url_err e;
  int kind, port;
  size_t o;
  scratch = url_scratch(L, local, sizeof local, n);
  s = url_clean(s, &n, scratch);
  if ((kind = url_absolute(s, n, &r, &a, &e)) < 0)
    return sl_url_fail(L, &e);
  port = a.port >= 0 ? a.port : kind == 2 ? 443 : 80;
  memcpy(out, kind == 2 ? "https://" : "http://", o = kind == 2 ? 8 : 7);
  memcpy(out + o, a.host, a.host_len);
  o += a.host_len;
  o += url_put_port(out + o, port, -1);   /* no default: the port is always written */
  lua_pushlstring(L, out, o);
  return 1;
}

/* ---------------------------------------------------------- fingerprint */

/* url.normalize_escapes(s) -> string: a path's (or query's) percent-encoding as
 * url.normalize writes it, nothing else changed (dot segments stay): robots.txt rules are
 * compared with normalized URLs this way. */
static int url_normalize_escapes_l(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char local[2048], *out;
  if (n > ((size_t)-1 - 1) / 3)
    return luaL_error(L, "string too long");
  out = url_scratch(L, local, sizeof local, 3 * n + 1);
  lua_pushlstring(L, out, url_pct(s, n, out));
  return 1;
}

/* url.fingerprint(s) -> integer */
static int url_fingerprint_l(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushinteger(L, (lua_Integer)sl_url_hash(s, n));
  return 1;
}

int luaopen_sluice_url(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"normalize", url_normalize_l},
    {"parse", url_parse_l},
    {"origin", url_origin_l},
    {"fingerprint", url_fingerprint_l},
    {"normalize_escapes", url_normalize_escapes_l},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  sl_seen_register(L);
  return 1;
}
