/* http_client_origin.c: the HTTP client's records and their lists, the bottom of its
 * pool: request records (recycled), origins (host and port) in the client's table with
 * their idle connections and waiting requests, and the client's own lifetime. Nothing
 * here does I/O; http_client_conn.c and http_client_pool.c decide what goes where. */
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "sluice.h"

/* Recycled request records, so a request costs no malloc once the client is warm. */
#define FREE_MAX 1024
static hc_req *free_list;
static int nfree;

/* Buffers grown past these are released when a record is recycled, so the records kept
 * cost at most a few MB whatever the responses were like. */
#define KEEP_WBUF (4 * 1024)
#define KEEP_HBUF (4 * 1024)

/* ------------------------------------------------------- request records */

hc_req *sl_client_req_alloc(void) {
  hc_req *r = free_list;
  sl_buf wbuf = {0}, hbuf = {0};
  hc_header *hdr = NULL;
  uint32_t hdr_cap = 0;
  if (r != NULL) {
    free_list = r->next_free;
    nfree--;
    wbuf = r->wbuf;
    hbuf = r->hbuf;
    hdr = r->hdr;
    hdr_cap = r->hdr_cap;
  } else {
    r = (hc_req *)malloc(sizeof(*r));
    if (r == NULL)
      return NULL;
  }
  memset(r, 0, sizeof(*r));
  r->wbuf = wbuf;
  r->wbuf.len = 0;
  r->hbuf = hbuf;
  r->hbuf.len = 0;
  r->hdr = hdr;
  r->hdr_cap = hdr_cap;
  return r;
}

/* Recycles a request that nothing refers to any more (see sl_client_req_abort). */
void sl_client_req_free(hc_req *r) {
  sl_client_inflate_end(r);
  free(r->rbody.p);
  r->rbody.p = NULL;
  free(r->zout);
  r->zout = NULL;
  if (r->wbuf.cap > KEEP_WBUF)
    sl_buf_free(&r->wbuf);
  if (r->hbuf.cap > KEEP_HBUF)
    sl_buf_free(&r->hbuf);
  if (r->hdr_cap > 256) {
    free(r->hdr);
    r->hdr = NULL;
    r->hdr_cap = 0;
  }
  if (nfree >= FREE_MAX) {
    sl_buf_free(&r->wbuf);
    sl_buf_free(&r->hbuf);
    free(r->hdr);
    free(r);
    return;
  }
  r->next_free = free_list;
  free_list = r;
  nfree++;
}

void sl_client_free_cached(void) {
  while (free_list != NULL) {
    hc_req *r = free_list;
    free_list = r->next_free;
    sl_buf_free(&r->wbuf);
    sl_buf_free(&r->hbuf);
    free(r->hdr);
    free(r);
  }
  nfree = 0;
}

/* ------------------------------------------------------------------ lists */

void sl_client_req_leave_wait_list(hc_req *r) {
  if (!r->in_wait_list)
    return;
  sl_queue_remove(&r->node);
  r->in_wait_list = 0;
}

/* The first request waiting for a slot of o, NULL if none. */
hc_req *sl_client_origin_first_waiting(hc_origin *o) {
  if (sl_queue_empty(&o->waiting))
    return NULL;
  return SL_QUEUE_DATA(sl_queue_head(&o->waiting), hc_req, node);
}

/* The client's connection idle longest (swept and dropped first); NULL if none. */
hc_conn *sl_client_idle_oldest(hc_client *c) {
  if (sl_queue_empty(&c->idle))
    return NULL;
  return SL_QUEUE_DATA(sl_queue_tail(&c->idle), hc_conn, cnode);
}

/* The origin's connection idle shortest (reused first); NULL if none. */
hc_conn *sl_client_origin_idle_newest(hc_origin *o) {
  if (sl_queue_empty(&o->idle))
    return NULL;
  return SL_QUEUE_DATA(sl_queue_head(&o->idle), hc_conn, onode);
}

/* Unused https origins kept for their TLS session, per client: the next connection to
 * them resumes it (an abbreviated handshake). Past this many, unused origins are freed. */
#define MAX_DORMANT 1024

void sl_client_origin_free(hc_origin *o) {
  sl_client_tls_session_free(o->sess);
  free(o);
}

/* Frees an origin nothing uses any more, so a crawl over many hosts keeps only live ones
 * (and up to MAX_DORMANT https origins that hold a session, while in the table). */
void sl_client_origin_maybe_free(hc_origin *o, hc_client *c) {
  hc_origin **p;
  if (o->nconns > 0 || !sl_queue_empty(&o->waiting) || !sl_queue_empty(&o->idle) ||
      o->dispatching || o->dormant)
    return;
  p = &c->buckets[o->hash & (c->nbuckets - 1)];
  while (*p != NULL && *p != o)
    p = &(*p)->hnext;
  if (*p == o && o->sess != NULL && !c->closed && c->ndormant < MAX_DORMANT) {
    o->dormant = 1;
    c->ndormant++;
    return;
  }
  if (*p == o) {
    *p = o->hnext;
    c->norigins--;
  }
  sl_client_origin_free(o);
}

void sl_client_conn_idle_unlink(hc_conn *k) {
  sl_queue_remove(&k->onode);
  sl_queue_remove(&k->cnode);
  k->client->nidle--;
}

/* Finds or creates the origin of host:port in the client's table. An https origin is
 * another one than http's on the same port, and one per TLS context and verify mode, so
 * connections and sessions are shared only by requests that check the server alike. */
hc_origin *sl_client_origin_get(hc_client *c, const char *host, int port, void *tls_ctx,
                                int noverify, hc_proxy *proxy) {
  size_t n = strlen(host);
  uint32_t h = sl_fnv1a(SL_FNV_BASIS, host, n);
  hc_origin *o;
  h = sl_fnv1a_word(h, (uint32_t)port);
  h = sl_fnv1a_word(h, (uint32_t)(uintptr_t)tls_ctx ^ (uint32_t)noverify ^
                        (uint32_t)(uintptr_t)proxy);
  if (c->nbuckets == 0 || c->norigins >= c->nbuckets * 2) {
    size_t nb = c->nbuckets ? c->nbuckets * 4 : 16, j;
    hc_origin **b = (hc_origin **)calloc(nb, sizeof(*b));
    if (b == NULL)
      return NULL;
    for (j = 0; j < c->nbuckets; j++) {
      hc_origin *x = c->buckets[j], *next;
      for (; x != NULL; x = next) {
        next = x->hnext;
        x->hnext = b[x->hash & (nb - 1)];
        b[x->hash & (nb - 1)] = x;
      }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
  }
  for (o = c->buckets[h & (c->nbuckets - 1)]; o != NULL; o = o->hnext)
    if (o->hash == h && o->port == port && o->tls_ctx == tls_ctx &&
        o->tls_noverify == noverify && o->proxy == proxy && o->hostlen == n && memcmp(o->host, host, n) == 0) {
      if (o->dormant) {
        o->dormant = 0;
        c->ndormant--;
      }
      return o;
    }
  o = (hc_origin *)calloc(1, sizeof(*o) + n + 1);
  if (o == NULL)
    return NULL;
  memcpy(o->host, host, n + 1);
  o->hostlen = n;
  o->port = port;
  o->tls_ctx = tls_ctx;
  o->tls_noverify = (uint8_t)noverify;
  o->proxy = proxy;
  /* The origin of an HTTP proxy's forwarded requests is shared by every http:// host
   * behind it: it gets the client's whole idle allowance, not one host's. */
  o->max_conns = proxy != NULL && proxy->kind == HC_PX_HTTP && tls_ctx == NULL &&
                         c->max_idle > c->max_per_host ? c->max_idle : c->max_per_host;
  o->hash = h;
  sl_queue_init(&o->idle);
  sl_queue_init(&o->waiting);
  o->hnext = c->buckets[h & (c->nbuckets - 1)];
  c->buckets[h & (c->nbuckets - 1)] = o;
  c->norigins++;
  return o;
}

/* ------------------------------------------------------------ the client */

/* Drops one reference; the last one frees the client (the Lua object is gone, the sweep
 * timer closed, every connection closed). */
void sl_client_unref(hc_client *c) {
  int i;
  if (--c->refs > 0)
    return;
  for (i = 0; i < c->ndh; i++) {
    free(c->dh[i].lname);
    free(c->dh[i].line);
  }
  free(c->dh);
  sl_buf_free(&c->dh_block);
  sl_client_proxy_free_all(c);
  free(c->buckets);
  free(c);
}
