/* http_client_pool.c: the HTTP client's keep-alive pool: origins (host and port) with their
 * idle connections and waiting requests, request records, and the client's own lifetime. */
#include <stdio.h>
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

hc_req *hc_req_alloc(void) {
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

/* Recycles a request that nothing refers to any more (see hc_req_abort). */
void hc_req_free(hc_req *r) {
  hc_inflate_end(r);
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

void hc_free_cached(void) {
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

/* -------------------------------------------------------- ending requests */

static void req_leave_wait_list(hc_req *r) {
  if (!r->in_wait_list)
    return;
  sl_queue_remove(&r->node);
  r->in_wait_list = 0;
}

/* The first request waiting for a slot of o, NULL if none. */
static hc_req *first_waiting(hc_origin *o) {
  if (sl_queue_empty(&o->waiting))
    return NULL;
  return SL_QUEUE_DATA(sl_queue_head(&o->waiting), hc_req, node);
}

/* The client's connection idle longest (swept and dropped first); NULL if none. */
static hc_conn *client_idle_oldest(hc_client *c) {
  if (sl_queue_empty(&c->idle))
    return NULL;
  return SL_QUEUE_DATA(sl_queue_tail(&c->idle), hc_conn, cnode);
}

/* The origin's connection idle shortest (reused first); NULL if none. */
static hc_conn *origin_idle_newest(hc_origin *o) {
  if (sl_queue_empty(&o->idle))
    return NULL;
  return SL_QUEUE_DATA(sl_queue_head(&o->idle), hc_conn, onode);
}

/* Unused https origins kept for their TLS session, per client: the next connection to
 * them resumes it (an abbreviated handshake). Past this many, unused origins are freed. */
#define MAX_DORMANT 1024

static void origin_free(hc_origin *o) {
  hc_tls_session_free(o->sess);
  free(o);
}

/* Frees an origin nothing uses any more, so a crawl over many hosts keeps only live ones
 * (and up to MAX_DORMANT https origins that hold a session, while in the table). */
void hc_origin_maybe_free(hc_origin *o, hc_client *c) {
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
  origin_free(o);
}

/* Detaches a request from everything in the engine (timer, wait list, connection):
 * after this nothing points to it. A connection it was using is closed, since its
 * response may be half read. Idempotent. */
void hc_req_abort(hc_req *r) {
  hc_origin *o = r->origin;
  r->origin = NULL;
  sl_timer_stop(r->E, &r->timer);
  if (r->in_wait_list) {
    req_leave_wait_list(r);
    hc_origin_maybe_free(o, r->client);
  } else if (r->conn != NULL) {
    hc_conn *c = r->conn;      /* closing it frees the origin if it was the last user */
    r->conn = NULL;
    c->req = NULL;
    hc_conn_close(c, 0);
  } else if (o != NULL && r->phase == HC_PH_CONNECT) {
    o->nconns--;               /* a slot taken for a lookup still running */
    hc_origin_dispatch(o);
    hc_origin_maybe_free(o, r->client);
  }
  r->phase = HC_PH_DONE;
}

/* ------------------------------------------------------------------ pool */

void hc_conn_idle_unlink(hc_conn *k) {
  sl_queue_remove(&k->onode);
  sl_queue_remove(&k->cnode);
  k->client->nidle--;
}

/* Closes idle connections kept longer than keepalive; re-arms for the oldest left. */
static void sweep_cb(uv_timer_t *h) {
  hc_client *c = (hc_client *)h->data;
  uint64_t now = uv_now(c->E->loop), ka = (uint64_t)(c->keepalive * 1000);
  hc_conn *k;
  while ((k = client_idle_oldest(c)) != NULL && k->idle_since + ka <= now)
    hc_conn_close(k, 0);
  if (k != NULL) {
    uint64_t left = k->idle_since + ka - now;
    uv_timer_start(&c->sweep, sweep_cb, left + 1, 0);
  }
}

/* A connection whose response was read in full: to the first waiting request of its
 * origin, or into the idle lists (unref'd, so it does not keep the process alive), where
 * at most max_idle connections of the client wait. */
void hc_conn_release(hc_conn *k) {
  hc_origin *o = k->origin;
  hc_client *c = k->client;
  hc_req *r = first_waiting(o);
  if (r != NULL) {
    req_leave_wait_list(r);
    k->req = r;
    r->conn = k;
    r->reused = 1;
    hc_req_send(r);
    return;
  }
  if (c->nidle >= c->max_idle) {  /* too many idle ones: drop the one idle longest */
    hc_conn *oldest = client_idle_oldest(c);
    if (oldest == NULL) {
      hc_conn_close(k, 0);
      return;
    }
    hc_conn_close(oldest, 0);
  }
  k->state = HC_IDLE;
  k->idle_since = uv_now(c->E->loop);
  sl_queue_insert_head(&o->idle, &k->onode);
  sl_queue_insert_head(&c->idle, &k->cnode);
  c->nidle++;
  uv_unref((uv_handle_t *)&k->st->tcp);
  if (!uv_is_active((uv_handle_t *)&c->sweep))
    uv_timer_start(&c->sweep, sweep_cb, (uint64_t)(c->keepalive * 1000) + 1, 0);
}

/* Gives free slots of an origin to requests waiting for one, each on a new connection. */
void hc_origin_dispatch(hc_origin *o) {
  hc_client *c;
  hc_req *r;
  if (o->dispatching)
    return;
  o->dispatching = 1;
  while ((r = first_waiting(o)) != NULL) {
    c = r->client;
    if (o->nconns >= c->max_per_host)
      break;
    req_leave_wait_list(r);
    o->nconns++;
    hc_req_connect_new(r);
  }
  o->dispatching = 0;
}

/* Finds or creates the origin of host:port in the client's table. An https origin is
 * another one than http's on the same port, and one per TLS context and verify mode, so
 * connections and sessions are shared only by requests that check the server alike. */
static hc_origin *origin_get(hc_client *c, const char *host, int port, void *tls_ctx,
                             int noverify) {
  size_t n = strlen(host);
  uint32_t h = sl_fnv1a(SL_FNV_BASIS, host, n);
  hc_origin *o;
  h = sl_fnv1a_word(h, (uint32_t)port);
  h = sl_fnv1a_word(h, (uint32_t)(uintptr_t)tls_ctx ^ (uint32_t)noverify);
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
        o->tls_noverify == noverify && o->hostlen == n && memcmp(o->host, host, n) == 0) {
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
  o->hash = h;
  sl_queue_init(&o->idle);
  sl_queue_init(&o->waiting);
  o->hnext = c->buckets[h & (c->nbuckets - 1)];
  c->buckets[h & (c->nbuckets - 1)] = o;
  c->norigins++;
  return o;
}

/* Starts a request: an idle connection of its origin, a new one if a slot is free, else
 * a place in the origin's wait list. The task then waits until r->done (or, with a body
 * function, r->ready). */
void hc_req_start(hc_req *r) {
  hc_client *c = r->client;
  hc_origin *o;
  hc_conn *k;
  void *ctx = NULL;
  r->t_start = uv_hrtime();
  c->nrequests++;
  if (r->tls) {
    ctx = r->lim.tls_ctx != NULL ? r->lim.tls_ctx
                                 : hc_tls_ctx(NULL, r->err_msg, sizeof r->err_msg);
    if (ctx == NULL) {
      hc_req_fail(r, "ETLS", NULL);
      return;
    }
  }
  o = origin_get(c, r->host, r->port, ctx, r->tls && !r->lim.tls_verify);
  if (o == NULL) {
    hc_req_fail(r, "ENOMEM", "out of memory for a connection pool");
    return;
  }
  r->origin = o;
  k = origin_idle_newest(o);
  if (k != NULL && c->keepalive > 0) {
    hc_conn_idle_unlink(k);
    k->state = HC_BUSY;
    uv_ref((uv_handle_t *)&k->st->tcp);
    k->req = r;
    r->conn = k;
    r->reused = 1;
    hc_req_send(r);
    return;
  }
  if (o->nconns < c->max_per_host) {
    o->nconns++;
    hc_req_connect_new(r);
    return;
  }
  r->phase = HC_PH_QUEUED;
  r->in_wait_list = 1;
  sl_queue_insert_tail(&o->waiting, &r->node);
}

/* ------------------------------------------------------------ the client */

/* Drops one reference; the last one frees the client (the Lua object is gone, the sweep
 * timer closed, every connection closed). */
void hc_client_unref(hc_client *c) {
  int i;
  if (--c->refs > 0)
    return;
  for (i = 0; i < c->ndh; i++) {
    free(c->dh[i].lname);
    free(c->dh[i].line);
  }
  free(c->dh);
  sl_buf_free(&c->dh_block);
  free(c->buckets);
  free(c);
}

static void sweep_close_cb(uv_handle_t *h) {
  hc_client_unref((hc_client *)h->data);
}

/* client:close() or its collection: every connection is closed (a request still using
 * one fails with ECANCELED) and origins are freed; the record goes with its last ref. */
void hc_client_shutdown(hc_client *c) {
  size_t i;
  if (c->closed)
    return;
  c->closed = 1;
  for (i = 0; i < c->nbuckets; i++) {
    hc_origin *o;
    while ((o = c->buckets[i]) != NULL) {
      hc_req *r;
      hc_conn *k;
      o->dispatching = 1;      /* no new connections for waiters while closing */
      while ((r = first_waiting(o)) != NULL)
        hc_req_fail(r, "ECANCELED", "the HTTP client was closed");
      while ((k = origin_idle_newest(o)) != NULL)
        hc_conn_close(k, 0);
      c->buckets[i] = o->hnext;
      o->hnext = NULL;
      o->dispatching = 0;
      c->norigins--;
      /* An origin with requests still in flight lives on outside the table: the last of
       * their connections to close frees it (hc_origin_maybe_free). */
      if (o->dormant)
        c->ndormant--;
      o->dormant = 0;
      if (o->nconns == 0)
        origin_free(o);
    }
  }
  uv_close((uv_handle_t *)&c->sweep, sweep_close_cb);
}

