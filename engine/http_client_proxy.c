/* http_client_proxy.c: which proxy a request goes through. Proxies come from a request's
 * `proxy` option, the client's, or the environment as curl reads it (http_proxy,
 * https_proxy, all_proxy, no_proxy and their upper-case forms, but not HTTP_PROXY, which a
 * CGI program may get from a request's Proxy: header). A client interns each proxy once;
 * origins (and so pools) are keyed by the proxy too. The handshakes with the proxy are in
 * http_client_tunnel.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_client.h"
#include "sluice.h"
#include "url.h"

struct hc_proxies {
  hc_proxy *all;               /* every proxy interned, freed with the client */
  int nall;
  uint8_t set;                 /* the client's proxy option was given: opt, not the env */
  hc_proxy *opt;               /* the client's proxy option (NULL: false) */
  hc_proxy *http, *https;      /* from the environment (all_proxy where unset) */
  char *no_proxy;              /* the client's no_proxy option, else the environment's */
};

/* Past this many proxies a client refuses new ones (a request's proxy option interns
 * each URL it is given for the client's lifetime). */
#define MAX_PROXIES 256

/* ------------------------------------------------------------- parsing */

static int unhex(int c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
         c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* s[0..n) percent-decoded into a new string (NULL out of memory). */
static char *pct_decode(const char *s, size_t n) {
  char *d = (char *)malloc(n + 1);
  size_t i, j = 0;
  if (d == NULL)
    return NULL;
  for (i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n &&
        unhex((unsigned char)s[i + 1]) >= 0 && unhex((unsigned char)s[i + 2]) >= 0) {
      d[j++] = (char)(unhex((unsigned char)s[i + 1]) * 16 + unhex((unsigned char)s[i + 2]));
      i += 2;
    } else {
      d[j++] = s[i];
    }
  }
  d[j] = '\0';
  return d;
}

static size_t base64(const unsigned char *in, size_t n, char *out) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i, j = 0;
  for (i = 0; i + 2 < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    out[j++] = tab[v >> 18];
    out[j++] = tab[(v >> 12) & 63];
    out[j++] = tab[(v >> 6) & 63];
    out[j++] = tab[v & 63];
  }
  if (i < n) {
    unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
    out[j++] = tab[v >> 18];
    out[j++] = tab[(v >> 12) & 63];
    out[j++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    out[j++] = '=';
  }
  return j;
}

static void proxy_free(hc_proxy *p) {
  free(p->url);
  free(p->auth);
  free(p->user);
  free(p->pass);
  free(p);
}

/* Parses a proxy URL: [scheme://][user[:password]@]host[:port][/], the scheme http
 * (the default), socks5 or socks5h, the port 1080 by default (as curl). NULL with the
 * reason in why. */
static hc_proxy *proxy_parse(const char *u, size_t n, char *why, size_t whylen) {
  const char *p = u, *end = u + n, *t, *at = NULL, *s;
  int kind = HC_PX_HTTP;
  sl_url_auth a;
  sl_url_err e;
  hc_proxy *px;
  size_t hl;
  s = strstr(u, "://");
  if (s != NULL && (size_t)(s - u) < n) {
    size_t sl = (size_t)(s - u);
    if (sl == 4 && strncasecmp(u, "http", 4) == 0)
      kind = HC_PX_HTTP;
    else if (sl == 6 && strncasecmp(u, "socks5", 6) == 0)
      kind = HC_PX_SOCKS5;
    else if (sl == 7 && strncasecmp(u, "socks5h", 7) == 0)
      kind = HC_PX_SOCKS5H;
    else {
      snprintf(why, whylen, "unsupported proxy scheme '%.*s' (http, socks5 and socks5h are)",
               (int)(sl > 20 ? 20 : sl), u);
      return NULL;
    }
    p = s + 3;
  }
  for (t = p; t < end && *t != '/' && *t != '?' && *t != '#'; t++)
    if (*t == '@')
      at = t;
  if (t < end && !(*t == '/' && t + 1 == end)) {
    snprintf(why, whylen, "a proxy URL has no path: %.100s", u);
    return NULL;
  }
  if (sl_url_authority(at ? at + 1 : p, (size_t)(t - (at ? at + 1 : p)), &a, &e) < 0) {
    snprintf(why, whylen, "%s in proxy URL: %.100s", e.why, u);
    return NULL;
  }
  hl = a.host_len;
  px = (hc_proxy *)calloc(1, sizeof(*px) + hl + 1);
  if (px == NULL || (px->url = (char *)malloc(n + 1)) == NULL) {
    free(px);
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  memcpy(px->url, u, n);
  px->url[n] = '\0';
  px->kind = (uint8_t)kind;
  px->port = a.port > 0 ? a.port : 1080;
  if (a.host[0] == '[') {
    memcpy(px->host, a.host + 1, hl - 2);
    px->host[hl - 2] = '\0';
  } else {
    memcpy(px->host, a.host, hl + 1);
  }
  if (at != NULL) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *ue = colon ? colon : at;
    px->user = pct_decode(p, (size_t)(ue - p));
    px->pass = colon ? pct_decode(colon + 1, (size_t)(at - colon - 1)) : pct_decode("", 0);
    if (px->user == NULL || px->pass == NULL)
      goto nomem;
    if (kind != HC_PX_HTTP && (strlen(px->user) > 255 || strlen(px->pass) > 255)) {
      snprintf(why, whylen, "SOCKS5 user names and passwords have at most 255 bytes");
      proxy_free(px);
      return NULL;
    }
    if (kind == HC_PX_HTTP) {
      size_t ul = strlen(px->user), pl = strlen(px->pass), i;
      unsigned char *cred = (unsigned char *)malloc(ul + pl + 2);
      if (cred == NULL || (px->auth = (char *)malloc((ul + pl + 3) / 3 * 4 + 40)) == NULL) {
        free(cred);
        goto nomem;
      }
      memcpy(cred, px->user, ul);
      cred[ul] = ':';
      memcpy(cred + ul + 1, px->pass, pl);
      for (i = 0; i < ul + pl + 1; i++)
        if (cred[i] < 0x20 || cred[i] == 0x7f) {
          free(cred);
          snprintf(why, whylen, "a control character in the proxy's credentials");
          proxy_free(px);
          return NULL;
        }
      i = (size_t)sprintf(px->auth, "Proxy-Authorization: Basic ");
      i += base64(cred, ul + pl + 1, px->auth + i);
      memcpy(px->auth + i, "\r\n", 3);
      px->auth_len = i + 2;
      free(cred);
    }
  }
  return px;
nomem:
  proxy_free(px);
  snprintf(why, whylen, "out of memory");
  return NULL;
}

/* The client's proxy for URL u[0..n), interned: the same URL gives the same proxy (and so
 * the same pools). NULL with why set. */
static hc_proxy *intern(hc_client *c, const char *u, size_t n, char *why, size_t whylen) {
  hc_proxies *x = c->px;
  hc_proxy *p;
  if (x == NULL && (x = c->px = (hc_proxies *)calloc(1, sizeof(*x))) == NULL) {
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  for (p = x->all; p != NULL; p = p->next)
    if (p->kind != 0 && strlen(p->url) == n && memcmp(p->url, u, n) == 0)
      return p;
  if (x->nall >= MAX_PROXIES) {
    snprintf(why, whylen, "more than %d proxies in one client", MAX_PROXIES);
    return NULL;
  }
  if ((p = proxy_parse(u, n, why, whylen)) == NULL)
    return NULL;
  p->next = x->all;
  x->all = p;
  x->nall++;
  return p;
}

void sl_client_proxy_free_all(hc_client *c) {
  hc_proxies *x = c->px;
  hc_proxy *p, *next;
  if (x == NULL)
    return;
  for (p = x->all; p != NULL; p = next) {
    next = p->next;
    proxy_free(p);
  }
  free(x->no_proxy);
  free(x);
  c->px = NULL;
}

/* ------------------------------------------------------------- options */

/* The first of the environment variables names that is set and not empty. */
static const char *env(const char *a, const char *b) {
  const char *v = getenv(a);
  if ((v == NULL || *v == '\0') && b != NULL)
    v = getenv(b);
  return v != NULL && *v != '\0' ? v : NULL;
}

/* A proxy of the environment. A bad one does not raise (the default client is made when
 * sluice.http is loaded): it becomes a proxy of kind 0 that fails the requests sent
 * through it with EPROXY, its message in auth. */
static hc_proxy *env_proxy(lua_State *L, hc_client *c, const char *a, const char *b) {
  const char *v = env(a, b), *name = getenv(a) && *getenv(a) ? a : b;
  char why[200];
  hc_proxy *p;
  if (v == NULL)
    return NULL;
  if ((p = intern(c, v, strlen(v), why, sizeof why)) != NULL)
    return p;
  if (c->px == NULL || (p = (hc_proxy *)calloc(1, sizeof(*p) + 1)) == NULL)
    luaL_error(L, "out of memory");
  p->url = strdup("");         /* never found by a request's option */
  p->auth = (char *)malloc(300);
  if (p->url == NULL || p->auth == NULL) {
    proxy_free(p);
    luaL_error(L, "out of memory");
    return NULL;
  }
  snprintf(p->auth, 300, "bad proxy in %s: %s", name, why);
  p->next = c->px->all;
  c->px->all = p;
  return p;
}

void sl_client_proxy_client_opts(lua_State *L, hc_client *c, int idx) {
  int t = idx != 0 ? lua_getfield(L, idx, "proxy") : LUA_TNIL;
  char why[200];
  const char *np = NULL;
  if (t == LUA_TSTRING) {
    size_t n;
    const char *u = lua_tolstring(L, -1, &n);
    hc_proxy *p = intern(c, u, n, why, sizeof why);
    if (p == NULL)
      sl_client_misuse(L, "bad option 'proxy' (%s)", why);
    c->px->set = 1;
    c->px->opt = p;
  } else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    return;                    /* proxy = false: direct, whatever the environment says */
  } else if (t != LUA_TNIL) {
    sl_client_misuse(L, "bad option 'proxy' (a proxy URL or false expected, got %s)",
                     luaL_typename(L, -1));
  } else {
    hc_proxy *h = env_proxy(L, c, "http_proxy", NULL);
    hc_proxy *s = env_proxy(L, c, "https_proxy", "HTTPS_PROXY");
    hc_proxy *all = env_proxy(L, c, "all_proxy", "ALL_PROXY");
    if (c->px != NULL) {
      c->px->http = h ? h : all;
      c->px->https = s ? s : all;
    }
  }
  lua_pop(L, 1);
  if (c->px == NULL)
    return;                    /* no proxy: no_proxy does not matter */
  if (idx != 0 && (t = lua_getfield(L, idx, "no_proxy")) != LUA_TNIL) {
    if (t != LUA_TSTRING)
      sl_client_misuse(L, "bad option 'no_proxy' (a string expected, got %s)",
                       luaL_typename(L, -1));
    np = lua_tostring(L, -1);
  } else {
    np = env("no_proxy", "NO_PROXY");
  }
  if (np != NULL && *np != '\0' && (c->px->no_proxy = strdup(np)) == NULL)
    luaL_error(L, "out of memory");
  if (idx != 0)
    lua_pop(L, 1);
}

hc_proxy *sl_client_proxy_req_opt(lua_State *L, hc_client *c) {
  char why[200];
  hc_proxy *p = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *u = lua_tolstring(L, -1, &n);
    if ((p = intern(c, u, n, why, sizeof why)) == NULL)
      sl_client_misuse(L, "bad option 'proxy' (%s)", why);
  } else if (!(lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
    sl_client_misuse(L, "bad option 'proxy' (a proxy URL or false expected, got %s)",
                     luaL_typename(L, -1));
  }
  return p;
}

/* ------------------------------------------------------------- choosing */

/* Whether the IP address host is inside the CIDR block a/bits. */
static int cidr_match(const char *host, const char *a, int bits) {
  unsigned char h[16], m[16];
  int len, i;
  if (uv_inet_pton(AF_INET, host, h) == 0 && uv_inet_pton(AF_INET, a, m) == 0)
    len = 4;
  else if (uv_inet_pton(AF_INET6, host, h) == 0 && uv_inet_pton(AF_INET6, a, m) == 0)
    len = 16;
  else
    return 0;
  if (bits < 0 || bits > len * 8)
    return 0;
  for (i = 0; i < len && bits > 0; i++, bits -= 8) {
    int mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((h[i] & mask) != (m[i] & mask))
      return 0;
  }
  return 1;
}

/* One no_proxy entry e[0..n) against host and port: "*"; a name matching the host or a
 * domain containing it (a leading "." or "*." is ignored); an IP address, maybe with a
 * /bits CIDR suffix; any of them with ":port" (IPv6 then in brackets) to match that
 * port only. */
static int entry_match(const char *e, size_t n, const char *host, int port) {
  char buf[300];
  const char *colon, *slash;
  size_t hl = strlen(host);
  int eport = -1;
  if (n == 1 && e[0] == '*')
    return 1;
  if (n >= 2 && e[0] == '*' && e[1] == '.')
    e++, n--;
  if (n > 0 && e[0] == '.')
    e++, n--;
  if (n == 0 || n >= sizeof buf)
    return 0;
  memcpy(buf, e, n);
  buf[n] = '\0';
  if (buf[0] == '[') {         /* [v6]:port or [v6] */
    char *rb = strchr(buf, ']');
    if (rb == NULL)
      return 0;
    if (rb[1] == ':')
      eport = atoi(rb + 2);
    *rb = '\0';
    memmove(buf, buf + 1, strlen(buf + 1) + 1);
  } else if ((colon = strchr(buf, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
    eport = atoi(colon + 1);   /* one colon: host:port (a bare IPv6 has several) */
    buf[colon - buf] = '\0';
  }
  if (eport >= 0 && eport != port)
    return 0;
  n = strlen(buf);
  while (n > 0 && buf[n - 1] == '.')
    buf[--n] = '\0';
  if ((slash = strchr(buf, '/')) != NULL) {
    buf[slash - buf] = '\0';
    return cidr_match(host, buf, atoi(slash + 1));
  }
  if (hl == n)
    return strcasecmp(host, buf) == 0;
  return hl > n && host[hl - n - 1] == '.' && strcasecmp(host + hl - n, buf) == 0;
}

/* Whether the comma-separated list np exempts host:port from the proxy. */
static int no_proxy_match(const char *np, const char *host, int port) {
  while (*np != '\0') {
    const char *e, *end;
    while (*np == ' ' || *np == '\t' || *np == ',')
      np++;
    for (end = np; *end != '\0' && *end != ','; end++)
      ;
    for (e = end; e > np && (e[-1] == ' ' || e[-1] == '\t'); e--)
      ;
    if (e > np && entry_match(np, (size_t)(e - np), host, port))
      return 1;
    np = end;
  }
  return 0;
}

hc_proxy *sl_client_proxy_pick(hc_client *c, const hc_req *r) {
  hc_proxies *x = c->px;
  hc_proxy *p;
  if (r->px_given)
    return r->px_opt;
  if (x == NULL)
    return NULL;
  p = x->set ? x->opt : r->tls ? x->https : x->http;
  if (p != NULL && x->no_proxy != NULL && no_proxy_match(x->no_proxy, r->host, r->port))
    return NULL;
  return p;
}

/* ------------------------------------------------------------- requests */

const char *sl_client_proxy_blame(hc_req *r, const char *name) {
  char m[sizeof r->err_msg];
  if (r->proxy->kind != HC_PX_HTTP || r->tls || r->headers_done ||
      (strcmp(name, "EPROTO") != 0 && strcmp(name, "ECONNRESET") != 0))
    return name;
  snprintf(m, sizeof m, "%s", r->err_msg);
  snprintf(r->err_msg, sizeof r->err_msg, "proxy %s:%d: %s: %.400s", r->proxy->host,
           r->proxy->port, name, m);
  return "EPROXY";
}

/* Inserts n bytes at off in b. */
static int buf_insert(sl_buf *b, size_t off, const char *s, size_t n) {
  if (sl_buf_reserve(b, n) < 0)
    return -1;
  memmove(b->p + off + n, b->p + off, b->len - off);
  memcpy(b->p + off, s, n);
  b->len += n;
  return 0;
}

int sl_client_proxy_head(hc_req *r) {
  char origin[300];
  int ipv6 = strchr(r->host, ':') != NULL, n;
  char *sp = memchr(r->wbuf.p, ' ', r->wbuf.len), *eol;
  size_t off;
  if (sp == NULL)
    return 0;
  off = (size_t)(sp - r->wbuf.p) + 1;
  if (r->port != 80)
    n = snprintf(origin, sizeof origin, ipv6 ? "http://[%s]:%d" : "http://%s:%d", r->host,
                 r->port);
  else
    n = snprintf(origin, sizeof origin, ipv6 ? "http://[%s]" : "http://%s", r->host);
  if (buf_insert(&r->wbuf, off, origin, (size_t)n) < 0)
    return -1;
  if (r->proxy->auth != NULL) {
    eol = memchr(r->wbuf.p, '\n', r->wbuf.len);
    if (eol != NULL &&
        buf_insert(&r->wbuf, (size_t)(eol - r->wbuf.p) + 1, r->proxy->auth,
                   r->proxy->auth_len) < 0)
      return -1;
  }
  return 0;
}
