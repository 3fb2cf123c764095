/* http_client_pool.c: the top of the HTTP client's keep-alive pool: starting a request on
 * an idle connection of its origin, a new one or a place in the wait list, and closing
 * the client. Records and lists are in http_client_origin.c; handing connections on
 * (release, dispatch, the idle sweep) in http_client_conn.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "sluice.h"

/* ------------------------------------------------------------------ pool */

/* Starts a request: an idle connection of its origin, a new one if a slot is free, else
 * a place in the origin's wait list. The task then waits until r->done (or, with a body
 * function, r->ready). */
void sl_client_req_start(hc_req *r) {
  hc_client *c = r->client;
  hc_origin *o;
  hc_conn *k;
  void *ctx = NULL;
  r->t_start = uv_hrtime();
  c->nrequests++;
  if (r->tls) {
    ctx = r->lim.tls_ctx != NULL ? r->lim.tls_ctx
                                 : sl_client_tls_ctx(NULL, r->err_msg, sizeof r->err_msg);
    if (ctx == NULL) {
      sl_client_req_fail(r, "ETLS", NULL);
      return;
    }
  }
  if (r->proxy == NULL)
    o = sl_client_origin_get(c, r->host, r->port, ctx, r->tls && !r->lim.tls_verify, NULL);
  else if (r->proxy->kind == 0) {              /* a bad proxy in the environment */
    sl_client_req_fail(r, "EPROXY", "%s", r->proxy->auth);
    return;
  } else if (r->proxy->kind == HC_PX_HTTP && !r->tls)  /* forwarded: one pool per proxy */
    o = sl_client_origin_get(c, r->proxy->host, r->proxy->port, NULL, 0, r->proxy);
  else                                                 /* tunnelled */
    o = sl_client_origin_get(c, r->host, r->port, ctx, r->tls && !r->lim.tls_verify,
                             r->proxy);
  if (o == NULL) {
    sl_client_req_fail(r, "ENOMEM", "out of memory for a connection pool");
    return;
  }
  r->origin = o;
  k = sl_client_origin_idle_newest(o);
  if (k != NULL && c->keepalive > 0) {
    sl_client_conn_idle_unlink(k);
    k->state = HC_BUSY;
    uv_ref((uv_handle_t *)&k->st->tcp);
    k->req = r;
    r->conn = k;
    r->reused = 1;
    sl_client_req_send(r);
    return;
  }
  if (o->nconns < o->max_conns) {
    o->nconns++;
    sl_client_req_connect_new(r);
    return;
  }
  r->phase = HC_PH_QUEUED;
  r->in_wait_list = 1;
  sl_queue_insert_tail(&o->waiting, &r->node);
}

/* ------------------------------------------------------------ the client */

static void sweep_close_cb(uv_handle_t *h) {
  sl_client_unref((hc_client *)h->data);
}

/* client:close() or its collection: every connection is closed (a request still using
 * one fails with ECANCELED) and origins are freed; the record goes with its last ref. */
void sl_client_shutdown(hc_client *c) {
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
      while ((r = sl_client_origin_first_waiting(o)) != NULL)
        sl_client_req_fail(r, "ECANCELED", "the HTTP client was closed");
      while ((k = sl_client_origin_idle_newest(o)) != NULL)
        sl_client_conn_close(k, 0);
      c->buckets[i] = o->hnext;
      o->hnext = NULL;
      o->dispatching = 0;
      c->norigins--;
      /* An origin with requests still in flight lives on outside the table: the last of
       * their connections to close frees it (sl_client_origin_maybe_free). */
      if (o->dormant)
        c->ndormant--;
      o->dormant = 0;
      if (o->nconns == 0)
        sl_client_origin_free(o);
    }
  }
  uv_close((uv_handle_t *)&c->sweep, sweep_close_cb);
}

