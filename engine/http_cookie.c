/* http_cookie.c: the cookie jar's storage and rules (RFC 6265 sections 5.1 to 5.4): parsing
 * Set-Cookie and its dates, the public-suffix check (libpsl), storing with limits, and the
 * Cookie header of a request. No Lua and no I/O: http_cookie_jar.c is the jar's Lua object.
 *
 * Cookies are kept by domain (a hash of domain records, each a short list), so a request
 * looks only at the lists of its host and the host's parent domains, and a store compares
 * against at most max_per_domain cookies: hostile input (a 1 MB header, 10,000 cookies)
 * costs linear time and never more than the limits' memory. */
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_cookie.h"
#include "sluice.h"

/* ------------------------------------------------------------- the jar */

sl_cookie_jar *sl_cookie_jar_new(void) {
  sl_cookie_jar *j = (sl_cookie_jar *)calloc(1, sizeof(*j));
  if (j == NULL)
    return NULL;
  j->nbuckets = 256;
  j->buckets = (sl_cookie_dom **)calloc(j->nbuckets, sizeof(*j->buckets));
  if (j->buckets == NULL) {
    free(j);
    return NULL;
  }
  sl_queue_init(&j->all);
  j->max_total = 3000;
  j->max_per_domain = 50;
  j->refs = 1;
  return j;
}

static uint32_t dom_hash(const char *d, size_t n) {
  return sl_fnv1a(SL_FNV_BASIS, d, n);
}

static sl_cookie_dom *dom_find(sl_cookie_jar *j, const char *d, size_t n, uint32_t h) {
  sl_cookie_dom *x;
  for (x = j->buckets[h & (j->nbuckets - 1)]; x != NULL; x = x->hnext)
    if (x->hash == h && x->len == n && memcmp(x->name, d, n) == 0)
      return x;
  return NULL;
}

/* Doubles the buckets once there are more domains than buckets (lists stay short). */
static void dom_grow(sl_cookie_jar *j) {
  size_t nb = j->nbuckets * 2, i;
  sl_cookie_dom **b = (sl_cookie_dom **)calloc(nb, sizeof(*b)), *x, *next;
  if (b == NULL)
    return;                    /* longer chains, still correct */
  for (i = 0; i < j->nbuckets; i++)
    for (x = j->buckets[i]; x != NULL; x = next) {
      next = x->hnext;
      x->hnext = b[x->hash & (nb - 1)];
      b[x->hash & (nb - 1)] = x;
    }
  free(j->buckets);
  j->buckets = b;
  j->nbuckets = nb;
}

static sl_cookie_dom *dom_get(sl_cookie_jar *j, const char *d, size_t n) {
  uint32_t h = dom_hash(d, n);
  sl_cookie_dom *x = dom_find(j, d, n, h);
  if (x != NULL)
    return x;
  if (j->ndoms >= j->nbuckets)
    dom_grow(j);
  x = (sl_cookie_dom *)calloc(1, sizeof(*x) + n + 1);
  if (x == NULL)
    return NULL;
  memcpy(x->name, d, n);
  x->len = n;
  x->hash = h;
  x->hnext = j->buckets[h & (j->nbuckets - 1)];
  j->buckets[h & (j->nbuckets - 1)] = x;
  j->ndoms++;
  return x;
}

static void dom_free(sl_cookie_jar *j, sl_cookie_dom *x) {
  sl_cookie_dom **pp = &j->buckets[x->hash & (j->nbuckets - 1)];
  while (*pp != x)
    pp = &(*pp)->hnext;
  *pp = x->hnext;
  j->ndoms--;
  free(x);
}

/* Takes c out of the jar and frees it; its domain record stays, maybe empty. */
static void cookie_unlink(sl_cookie_jar *j, sl_cookie *c) {
  sl_cookie_dom *d = c->dom;
  sl_cookie **pp = &d->first;
  while (*pp != c)
    pp = &(*pp)->next;
  *pp = c->next;
  sl_queue_remove(&c->node);
  j->n--;
  d->n--;
  free(c);
}

/* The same, freeing the domain record once empty. */
static void cookie_remove(sl_cookie_jar *j, sl_cookie *c) {
  sl_cookie_dom *d = c->dom;
  cookie_unlink(j, c);
  if (d->n == 0)
    dom_free(j, d);
}

void sl_cookie_jar_clear(sl_cookie_jar *j) {
  size_t i;
  sl_cookie_dom *x, *next;
  while (!sl_queue_empty(&j->all))
    cookie_unlink(j, SL_QUEUE_DATA(sl_queue_head(&j->all), sl_cookie, node));
  for (i = 0; i < j->nbuckets; i++) {
    for (x = j->buckets[i]; x != NULL; x = next) {
      next = x->hnext;
      free(x);
    }
    j->buckets[i] = NULL;
  }
  j->ndoms = 0;
}

void sl_cookie_jar_unref(sl_cookie_jar *j) {
  if (j == NULL || --j->refs > 0)
    return;
  sl_cookie_jar_clear(j);
  free(j->buckets);
  free(j);
}

void sl_cookie_purge(sl_cookie_jar *j, int64_t now) {
  sl_queue *q, *n;
  SL_QUEUE_FOREACH_SAFE(q, n, &j->all) {
    sl_cookie *c = SL_QUEUE_DATA(q, sl_cookie, node);
    if (c->expiry <= now)
      cookie_remove(j, c);
  }
}

static int is_digit(unsigned char ch) {
  return ch >= '0' && ch <= '9';
}

/* ------------------------------------------------------------- rules */

static const psl_ctx_t *psl(void) {
  static const psl_ctx_t *ctx;
  if (ctx == NULL) {
    /* The newest of Debian's publicsuffix list and libpsl's built-in one. */
    ctx = psl_latest(NULL);
    if (ctx == NULL)
      ctx = psl_builtin();
  }
  return ctx;
}

static int is_ip(const char *h) {
  size_t i;
  if (strchr(h, ':') != NULL)
    return 1;
  for (i = 0; h[i] != '\0'; i++)
    if (!is_digit((unsigned char)h[i]) && h[i] != '.')
      return 0;
  return 1;                    /* sl_url_authority wrote IPv4 in dotted form */
}

/* RFC 6265 5.1.3: host domain-matches d. */
static int domain_match(const char *host, size_t hlen, const char *d, size_t dlen) {
  if (hlen == dlen)
    return memcmp(host, d, dlen) == 0;
  return hlen > dlen && host[hlen - dlen - 1] == '.' && memcmp(host + hlen - dlen, d, dlen) == 0
         && !is_ip(host);
}

/* RFC 6265 5.1.4: the request path rp matches the cookie path cp. */
static int path_match(const char *rp, size_t rlen, const char *cp, size_t clen) {
  if (rlen < clen || memcmp(rp, cp, clen) != 0)
    return 0;
  return rlen == clen || cp[clen - 1] == '/' || rp[clen] == '/';
}

/* RFC 6265 5.1.4: the default path of a request path; sets *len. */
static const char *default_path(const char *p, size_t n, size_t *len) {
  size_t i;
  if (n == 0 || p[0] != '/') {
    *len = 1;
    return "/";
  }
  for (i = n; i > 0 && p[i - 1] != '/'; i--)
    ;
  *len = i <= 1 ? 1 : i - 1;
  return p;
}

static int wsp(char ch) {
  return ch == ' ' || ch == '\t';
}

static void trim(const char **s, const char **e) {
  while (*s < *e && wsp(**s))
    (*s)++;
  while (*e > *s && wsp((*e)[-1]))
    (*e)--;
}

/* Control bytes make a cookie ignored (RFC 6265bis 5.6), HTAB too here: cookies.txt
 * separates its fields with tabs, and no cookie-octet is one. */
static int has_ctl(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 1;
  return 0;
}

/* Makes room for one more cookie in d (NULL: a new domain) and in the jar: expired cookies
 * go first, then the oldest of the domain, then the oldest of all. d stays allocated, even
 * if empty: the caller stores into it. */
static void make_room(sl_cookie_jar *j, sl_cookie_dom *d, int64_t now) {
  sl_cookie *c, *next, *oldest;
  if (d != NULL && d->n >= j->max_per_domain) {
    for (c = d->first; c != NULL; c = next) {
      next = c->next;
      if (c->expiry <= now)
        cookie_unlink(j, c);
    }
    while (d->n >= j->max_per_domain) {
      for (oldest = c = d->first; c != NULL; c = c->next)
        if (c->creation < oldest->creation)
          oldest = c;
      cookie_unlink(j, oldest);
    }
  }
  while (j->n >= j->max_total && !sl_queue_empty(&j->all)) {
    c = SL_QUEUE_DATA(sl_queue_head(&j->all), sl_cookie, node);
    if (c->dom == d)
      cookie_unlink(j, c);
    else
      cookie_remove(j, c);
  }
}

/* Puts a cookie in the jar: replaces one of the same name, domain and path (keeping its
 * creation time), or adds it within the limits. An expired cookie only deletes. */
static int store(sl_cookie_jar *j, const char *domain, size_t dlen, int host_only,
                 const char *path, size_t plen, const char *name, size_t nlen,
                 const char *value, size_t vlen, int64_t expiry, int secure, int http_only,
                 int samesite, int64_t now) {
  sl_cookie_dom *d;
  sl_cookie *old = NULL, *c;
  uint32_t h = dom_hash(domain, dlen);
  char *p;
  d = dom_find(j, domain, dlen, h);
  if (d != NULL)
    for (old = d->first; old != NULL; old = old->next)
      if (old->name_len == nlen && old->path_len == plen && memcmp(old->name, name, nlen) == 0
          && memcmp(old->path, path, plen) == 0)
        break;
  if (expiry <= now) {
    if (old != NULL)
      cookie_remove(j, old);
    return old != NULL;
  }
  if (j->max_total <= 0 || j->max_per_domain <= 0)
    return 0;
  if (old == NULL) {
    make_room(j, d, now);
    if (d == NULL && (d = dom_get(j, domain, dlen)) == NULL)
      return -1;
  }
  c = (sl_cookie *)malloc(sizeof(*c) + nlen + vlen + plen + 3);
  if (c == NULL) {
    if (d->n == 0)
      dom_free(j, d);
    return -1;
  }
  p = (char *)(c + 1);
  c->name = p, memcpy(p, name, nlen), p[nlen] = '\0', p += nlen + 1;
  c->value = p, memcpy(p, value, vlen), p[vlen] = '\0', p += vlen + 1;
  c->path = p, memcpy(p, path, plen), p[plen] = '\0';
  c->name_len = nlen, c->value_len = vlen, c->path_len = plen;
  c->expiry = expiry;
  c->host_only = (uint8_t)host_only;
  c->secure = (uint8_t)secure;
  c->http_only = (uint8_t)http_only;
  c->samesite = (uint8_t)samesite;
  c->dom = d;
  if (old != NULL) {           /* in old's places: its creation time and list positions */
    c->creation = old->creation;
    c->next = old->next;
    old->next = c;
    sl_queue_insert_head(&old->node, &c->node);  /* right after old in the jar's list */
    d->n++;
    j->n++;
    cookie_remove(j, old);
  } else {
    c->creation = ++j->counter;
    c->next = d->first;
    d->first = c;
    sl_queue_insert_tail(&j->all, &c->node);
    d->n++;
    j->n++;
  }
  return 1;
}

int sl_cookie_add(sl_cookie_jar *j, const char *domain, int host_only, const char *path,
                  int secure, int http_only, int64_t expiry, const char *name,
                  const char *value, int64_t now) {
  size_t nlen = strlen(name), vlen = strlen(value);
  if (nlen == 0 || nlen + vlen > SL_COOKIE_MAX_SIZE || path[0] != '/' || domain[0] == '\0' ||
      has_ctl(name, nlen) || has_ctl(value, vlen) || strchr(name, '=') != NULL ||
      strchr(name, ';') != NULL || strchr(value, ';') != NULL || expiry <= now)
    return 0;
  return store(j, domain, strlen(domain), host_only, path, strlen(path), name, nlen, value,
               vlen, expiry, secure, http_only, 0, now);
}

#define ATTR_IS(s, len, lit) ((len) == sizeof(lit) - 1 && strncasecmp((s), (lit), (len)) == 0)

int sl_cookie_set(sl_cookie_jar *j, const char *host, const char *path, size_t plen,
                  int secure_req, const char *sc, size_t n, int64_t now, const char **why) {
  const char *end = sc + n, *semi = memchr(sc, ';', n), *nv_end = semi ? semi : end;
  const char *ns = sc, *ne, *vs, *ve, *a;
  const char *dom = NULL, *cpath = NULL;
  size_t domlen = 0, cplen = 0, hlen = strlen(host);
  int64_t expiry = INT64_MAX, expires = INT64_MAX;
  int have_max_age = 0, secure = 0, http_only = 0, samesite = 0, host_only, r;
  char ldom[256];
  *why = NULL;
  /* 5.2 steps 1-5: the name-value pair, up to the first ';' */
  ne = memchr(sc, '=', (size_t)(nv_end - sc));
  if (ne == NULL) {
    *why = "no '=' in the name-value pair";
    return 0;
  }
  vs = ne + 1, ve = nv_end;
  trim(&ns, &ne);
  trim(&vs, &ve);
  if (ns == ne) {
    *why = "empty cookie name";
    return 0;
  }
  if ((size_t)(ne - ns) + (size_t)(ve - vs) > SL_COOKIE_MAX_SIZE) {
    *why = "name and value longer than 4096 bytes";
    return 0;
  }
  if (has_ctl(ns, (size_t)(ne - ns)) || has_ctl(vs, (size_t)(ve - vs))) {
    *why = "control character in the name or value";
    return 0;
  }
  /* 5.2 step 6: the attributes; the last of each kind wins */
  for (a = nv_end; a < end;) {
    const char *as = a + 1, *ae, *an_end, *avs, *ave;
    size_t an, av;
    ae = memchr(as, ';', (size_t)(end - as));
    if (ae == NULL)
      ae = end;
    a = ae;
    an_end = memchr(as, '=', (size_t)(ae - as));
    if (an_end == NULL)
      an_end = ae;
    avs = an_end < ae ? an_end + 1 : ae, ave = ae;
    trim(&as, &an_end);
    trim(&avs, &ave);
    an = (size_t)(an_end - as), av = (size_t)(ave - avs);
    if (av > SL_COOKIE_MAX_ATTR)
      continue;
    if (ATTR_IS(as, an, "expires")) {
      int64_t t;
      if (sl_cookie_parse_date(avs, av, &t) == 0)
        expires = t;
    } else if (ATTR_IS(as, an, "max-age")) {
      size_t k = (avs < ave && *avs == '-') ? 1 : 0;
      int64_t delta = 0;
      if (k == av)
        continue;
      for (; k < av && is_digit((unsigned char)avs[k]); k++)
        delta = delta > INT64_MAX / 20 ? INT64_MAX / 20 : delta * 10 + (avs[k] - '0');
      if (k < av)
        continue;              /* not a number: ignored */
      have_max_age = 1;
      expiry = (*avs == '-' || delta == 0) ? INT64_MIN
               : delta > SL_COOKIE_MAX_EXPIRY - now ? SL_COOKIE_MAX_EXPIRY : now + delta;
    } else if (ATTR_IS(as, an, "domain")) {
      if (av > 0 && *avs == '.')
        avs++, av--;
      if (av > 0)
        dom = avs, domlen = av;
      else
        dom = NULL, domlen = 0;   /* an empty Domain is ignored: host-only */
    } else if (ATTR_IS(as, an, "path")) {
      if (av > 0 && *avs == '/')
        cpath = avs, cplen = av;
      else
        cpath = NULL, cplen = 0;  /* the default path */
    } else if (ATTR_IS(as, an, "secure")) {
      secure = 1;
    } else if (ATTR_IS(as, an, "httponly")) {
      http_only = 1;
    } else if (ATTR_IS(as, an, "samesite")) {
      samesite = ATTR_IS(avs, av, "strict") ? 1 : ATTR_IS(avs, av, "lax") ? 2
                 : ATTR_IS(avs, av, "none") ? 3 : samesite;
    }
  }
  if (!have_max_age && expires != INT64_MAX)
    expiry = expires;
  if (expiry != INT64_MAX && expiry > SL_COOKIE_MAX_EXPIRY)
    expiry = SL_COOKIE_MAX_EXPIRY;
  /* 5.3 steps 4-6: the domain */
  if (dom != NULL) {
    size_t i;
    if (domlen >= sizeof ldom) {
      *why = "Domain too long";
      return 0;
    }
    for (i = 0; i < domlen; i++) {
      unsigned char ch = (unsigned char)dom[i];
      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) ||
            ch == '-' || ch == '.' || ch == '_' || ch == ':')) {
        *why = "Domain is not a host name";
        return 0;
      }
      ldom[i] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
    }
    ldom[domlen] = '\0';
    if (psl_is_public_suffix2(psl(), ldom, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE)) {
      if (strcmp(ldom, host) != 0) {
        *why = "Domain is a public suffix";
        return 0;
      }
      dom = NULL;              /* the host itself: a host-only cookie */
    }
  }
  if (dom != NULL) {
    if (!domain_match(host, hlen, ldom, domlen)) {
      *why = "Domain does not match the host";
      return 0;
    }
    host_only = is_ip(ldom);
  } else {
    host_only = 1;
  }
  if (cpath == NULL)
    cpath = default_path(path, plen, &cplen);
  /* RFC 6265bis: only a secure origin sets Secure cookies; the __Secure- and __Host-
   * prefixes ask for Secure (and __Host- for a host-only cookie on "/"). */
  if (secure && !secure_req) {
    *why = "Secure cookie from an insecure origin";
    return 0;
  }
  if ((ne - ns >= 9 && strncmp(ns, "__Secure-", 9) == 0 && !secure) ||
      (ne - ns >= 7 && strncmp(ns, "__Host-", 7) == 0 &&
       (!secure || !host_only || cplen != 1 || cpath[0] != '/'))) {
    *why = "cookie prefix requirements not met";
    return 0;
  }
  r = store(j, host_only ? host : ldom, host_only ? hlen : domlen, host_only, cpath, cplen,
            ns, (size_t)(ne - ns), vs, (size_t)(ve - vs), expiry, secure, http_only,
            samesite, now);
  if (r < 0)
    *why = "out of memory";
  else if (r == 0)
    *why = expiry <= now ? "expired (nothing to delete)" : "the jar holds no cookies";
  return r;
}

/* ------------------------------------------------------------- sending */

static int by_path_then_age(const void *a, const void *b) {
  const sl_cookie *x = *(sl_cookie *const *)a, *y = *(sl_cookie *const *)b;
  if (x->path_len != y->path_len)
    return x->path_len > y->path_len ? -1 : 1;
  return x->creation < y->creation ? -1 : x->creation > y->creation;
}

int sl_cookie_header(sl_cookie_jar *j, const char *host, const char *path, size_t plen,
                     int secure, int64_t now, sl_buf *out) {
  sl_cookie *stack[64], **v = stack, *c, *next;
  size_t hlen = strlen(host), cap = 64, nv = 0, i;
  const char *d = host;
  int ip = is_ip(host), rc = 0;
  if (j->n == 0)
    return 0;
  if (plen == 0)
    path = "/", plen = 1;
  /* The host, then each parent domain (a name only: an address has none). */
  for (;;) {
    size_t dl = hlen - (size_t)(d - host);
    sl_cookie_dom *x = dom_find(j, d, dl, dom_hash(d, dl));
    for (c = x != NULL ? x->first : NULL; c != NULL; c = next) {
      next = c->next;
      if (c->expiry <= now) {
        cookie_unlink(j, c);
        continue;
      }
      if ((c->host_only && d != host) || (c->secure && !secure) ||
          !path_match(path, plen, c->path, c->path_len))
        continue;
      if (nv == cap) {
        sl_cookie **nvv = (sl_cookie **)malloc(cap * 2 * sizeof(*nvv));
        if (nvv == NULL) {
          rc = -1;
          goto done;
        }
        memcpy(nvv, v, nv * sizeof(*v));
        if (v != stack)
          free(v);
        v = nvv, cap *= 2;
      }
      v[nv++] = c;
    }
    if (x != NULL && x->n == 0)
      dom_free(j, x);
    if (ip || (d = memchr(d, '.', dl)) == NULL)
      break;
    d++;
  }
  if (nv > 1)
    qsort(v, nv, sizeof(*v), by_path_then_age);
  for (i = 0; i < nv; i++) {
    c = v[i];
    if (((out->len > 0 || i > 0) && sl_buf_add(out, "; ", 2) < 0) ||
        sl_buf_add(out, c->name, c->name_len) < 0 || sl_buf_add(out, "=", 1) < 0 ||
        sl_buf_add(out, c->value, c->value_len) < 0) {
      rc = -1;
      goto done;
    }
  }
  rc = (int)nv;
done:
  if (v != stack)
    free(v);
  return rc;
}
