/* http_client_conn.c: one HTTP/1.1 exchange on a connection, a stream (stream.c; TLS is
 * the stream's business): connecting, writing the request, reading the response
 * (http_client_parse.c parses it), the phase timeouts, the stale-connection retry. It
 * drives a request (hc_req) from the stream's callbacks to its end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <strings.h>

#include "http_client.h"
#include "sluice.h"
#include "stream.h"

static void tls_begin(hc_conn *k, hc_req *r);
static void conn_attach(hc_conn *k, sl_stream *st);

static double secs_since(uint64_t t) {
  return (double)(uv_hrtime() - t) / 1e9;
}

/* ------------------------------------------------------- ending requests */

/* Tells the task, if it is waiting for this request, that something happened. */
static void req_signal(hc_req *r) {
  if (r->waiting) {
    r->waiting = 0;
    sl_task_wake(r->task, SL_WAKE_OK);
  }
}

/* Ends the request with an error: "name: message" for the fail triple. */
void sl_client_req_fail(hc_req *r, const char *name, const char *fmt, ...) {
  va_list ap;
  if (r->done)
    return;
  if (fmt != NULL) {           /* NULL: the message is in r->err_msg already */
    va_start(ap, fmt);
    vsnprintf(r->err_msg, sizeof r->err_msg, fmt, ap);
    va_end(ap);
  }
  if (r->proxy != NULL)
    name = sl_client_proxy_blame(r, name);
  r->err_name = name;
  sl_client_req_abort(r);
  r->done = 1;
  req_signal(r);
}

static void req_fail_uv(hc_req *r, int err, const char *what) {
  sl_client_req_fail(r, uv_err_name(err), "%s %s:%d: %s", what, r->host, r->port,
                     uv_strerror(err));
}

/* --------------------------------------------------------------- the pool */

/* Detaches a request from everything in the engine (timer, wait list, connection):
 * after this nothing points to it. A connection it was using is closed, since its
 * response may be half read. Idempotent. */
void sl_client_req_abort(hc_req *r) {
  hc_origin *o = r->origin;
  r->origin = NULL;
  sl_timer_stop(r->E, &r->timer);
  if (r->in_wait_list) {
    sl_client_req_leave_wait_list(r);
    sl_client_origin_maybe_free(o, r->client);
  } else if (r->conn != NULL) {
    hc_conn *c = r->conn;      /* closing it frees the origin if it was the last user */
    r->conn = NULL;
    c->req = NULL;
    sl_client_conn_close(c, 0);
  } else if (o != NULL && r->phase == HC_PH_CONNECT) {
    o->nconns--;               /* a slot taken for a lookup still running */
    sl_client_origin_dispatch(o);
    sl_client_origin_maybe_free(o, r->client);
  }
  r->phase = HC_PH_DONE;
}

/* Closes idle connections kept longer than keepalive; re-arms for the oldest left. */
static void sweep_cb(uv_timer_t *h) {
  hc_client *c = (hc_client *)h->data;
  uint64_t now = uv_now(c->E->loop), ka = (uint64_t)(c->keepalive * 1000);
  hc_conn *k;
  while ((k = sl_client_idle_oldest(c)) != NULL && k->idle_since + ka <= now)
    sl_client_conn_close(k, 0);
  if (k != NULL) {
    uint64_t left = k->idle_since + ka - now;
    uv_timer_start(&c->sweep, sweep_cb, left + 1, 0);
  }
}

/* A connection whose response was read in full: to the first waiting request of its
 * origin, or into the idle lists (unref'd, so it does not keep the process alive), where
 * at most max_idle connections of the client wait. */
void sl_client_conn_release(hc_conn *k) {
  hc_origin *o = k->origin;
  hc_client *c = k->client;
  hc_req *r = sl_client_origin_first_waiting(o);
  if (r != NULL) {
    sl_client_req_leave_wait_list(r);
    k->req = r;
    r->conn = k;
    r->reused = 1;
    sl_client_req_send(r);
    return;
  }
  if (c->nidle >= c->max_idle) {  /* too many idle ones: drop the one idle longest */
    hc_conn *oldest = sl_client_idle_oldest(c);
    if (oldest == NULL) {
      sl_client_conn_close(k, 0);
      return;
    }
    sl_client_conn_close(oldest, 0);
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
void sl_client_origin_dispatch(hc_origin *o) {
  hc_req *r;
  if (o->dispatching)
    return;
  o->dispatching = 1;
  while ((r = sl_client_origin_first_waiting(o)) != NULL) {
    if (o->nconns >= o->max_conns)
      break;
    sl_client_req_leave_wait_list(r);
    o->nconns++;
    sl_client_req_connect_new(r);
  }
  o->dispatching = 0;
}

/* --------------------------------------------------------------- timeouts */

static void req_timer_cb(sl_timer *tm);

static void req_arm(hc_req *r, int phase, double seconds) {
  r->phase = (uint8_t)phase;
  r->timer.cb = req_timer_cb;
  if (seconds >= 0)
    sl_timer_start(r->E, &r->timer, seconds);
  else
    sl_timer_stop(r->E, &r->timer);
}

static void req_timer_cb(sl_timer *tm) {
  hc_req *r = SL_CONTAINER_OF(tm, hc_req, timer);
  uint64_t last;
  double idle;
  switch (r->phase) {
  case HC_PH_CONNECT:
    sl_client_req_fail(r, "ETIMEDOUT", "connecting to %s:%d timed out after %g s", r->host,
                       r->port, r->lim.connect_timeout);
    break;
  case HC_PH_FIRST_BYTE:
    sl_client_req_fail(r, "ETIMEDOUT", "no response from %s:%d within %g s", r->host, r->port,
                       r->lim.first_byte_timeout);
    break;
  case HC_PH_READ:
    /* The deadline is not moved on every read; check how long it has really been. Over
     * TLS, the bytes of a record still arriving count as received (st->t_raw): a server
     * that sends a record slowly is not idle. */
    last = r->t_last;
    if (r->conn != NULL && r->conn->st != NULL && r->conn->st->t_raw > last)
      last = r->conn->st->t_raw;
    idle = secs_since(last);
    if (idle + 1e-3 < r->lim.idle_timeout)
      sl_timer_start(r->E, &r->timer, r->lim.idle_timeout - idle);
    else
      sl_client_req_fail(r, "ETIMEDOUT", "nothing received from %s:%d for %g s", r->host,
                         r->port, r->lim.idle_timeout);
    break;
  default:
    break;
  }
}

/* ------------------------------------------------------------ connecting */

/* A connection record for origin o of client c, not connected yet (the caller connects
 * it). Counted in the client until freed (conn_free). */
hc_conn *sl_client_conn_new(hc_client *c, hc_origin *o) {
  hc_conn *k = (hc_conn *)calloc(1, sizeof(*k));
  if (k == NULL)
    return NULL;
  k->client = c;
  k->origin = o;
  k->state = HC_CONNECTING;
  sl_client_parser_init(&k->parser);
  k->parser.data = k;
  c->refs++;
  c->nconns++;
  c->nconnects++;
  return k;
}

static void conn_free(hc_conn *k) {
  hc_client *c = k->client;
  sl_client_tunnel_free(k);
  free(k);
  sl_client_unref(c);
}

static void conn_on_close(sl_stream *st) {
  conn_free((hc_conn *)st->data);
}

/* Closes a connection. Its slot is given to a waiting request unless keep_slot says the
 * caller reuses it at once (a retry). The memory goes once the stream has closed, or now
 * if it was still connecting. */
void sl_client_conn_close(hc_conn *k, int keep_slot) {
  hc_origin *o = k->origin;
  hc_client *c = k->client;
  if (k->state == HC_CLOSING)
    return;
  if (k->state == HC_IDLE)
    sl_client_conn_idle_unlink(k);
  k->state = HC_CLOSING;
  c->nconns--;
  k->origin = NULL;
  k->req = NULL;
  if (o != NULL && !keep_slot) {
    o->nconns--;
    sl_client_origin_dispatch(o);
    sl_client_origin_maybe_free(o, c);
  }
  if (k->st != NULL) {
    sl_stream_close(k->st);
  } else {
    sl_connect_cancel(&k->connect);
    conn_free(k);
  }
}

/* Connected, through a proxy's tunnel if any (name NULL), or failed: the request goes on
 * over TLS or plain. */
static void conn_ready(hc_conn *k, const char *name, const char *msg) {
  hc_req *r = k->req;
  if (k->state == HC_CLOSING || r == NULL)
    return;
  if (name != NULL)
    sl_client_req_fail(r, name, "%s", msg);
  else if (k->origin->tls_ctx != NULL)
    tls_begin(k, r);
  else
    sl_client_req_send(r);
}

/* The end of connecting (stream.c tried each address of the name): the request goes on
 * through the proxy's tunnel, over TLS or plain, or fails naming what failed. */
static void conn_connected(sl_connect *cn, sl_stream *st, int status) {
  hc_conn *k = SL_CONTAINER_OF(cn, hc_conn, connect);
  hc_req *r = k->req;
  if (cn->attempts > 1)
    k->client->nconnects += (uint64_t)cn->attempts - 1;
  r->t_dns_done = cn->t_resolved;
  if (status < 0) {
    if (k->origin->proxy != NULL)
      sl_client_req_fail(r, "EPROXY", "cannot %s proxy %s:%d: %s", cn->resolving ?
                         "resolve" : "connect to", k->origin->proxy->host,
                         k->origin->proxy->port, uv_strerror(status));
    else if (cn->resolving)
      sl_client_req_fail(r, uv_err_name(status), "cannot resolve %s: %s", r->host,
                         uv_strerror(status));
    else
      req_fail_uv(r, status, "cannot connect to");
    return;
  }
  conn_attach(k, st);
  status = sl_stream_read_start(st);
  if (status < 0) {
    req_fail_uv(r, status, "cannot read from");
    return;
  }
  k->state = HC_BUSY;
  r->t_connected = uv_hrtime();
  sl_client_tunnel_start(k, r, conn_ready);
}

/* Starts a new connection for a request holding a slot: name lookup through the DNS
 * cache, then connect, each address in turn (to its proxy, if it has one). */
void sl_client_req_connect_new(hc_req *r) {
  hc_conn *k;
  hc_proxy *px = r->origin->proxy;
  r->conn = NULL;
  r->reused = 0;
  r->t_tls = r->t_tls_done = 0;
  if (r->phase != HC_PH_CONNECT) {
    r->t_connect = uv_hrtime();
    req_arm(r, HC_PH_CONNECT, r->lim.connect_timeout);
  }
  k = sl_client_conn_new(r->client, r->origin);
  if (k == NULL) {
    sl_client_req_fail(r, "ENOMEM", "out of memory for a connection");
    return;
  }
  k->req = r;
  r->conn = k;
  r->t_dns = uv_hrtime();
  sl_connect_start(&k->connect, r->E, px != NULL ? px->host : r->host,
                   px != NULL ? px->port : r->port, -1, conn_connected);
}

/* -------------------------------------------------------------- writing */

/* An idempotent request that failed on a reused connection before any response byte is
 * sent again, once, on a fresh connection: the server had closed the kept-alive one. */
static int req_retry(hc_req *r, int err) {
  hc_conn *k = r->conn;
  if (!r->reused || r->got_byte || !r->idempotent || r->fn_body || r->retried ||
      (err != UV_EOF && err != UV_ECONNRESET && err != UV_EPIPE))
    return 0;
  r->retried = 1;
  r->client->nretries++;
  if (r->proxy != NULL && r->proxy->kind == HC_PX_HTTP && !r->tls && r->proxy->stale < 255)
    r->proxy->stale++;           /* forwarded: the proxy, not the origin, closed it */
  r->conn = NULL;
  k->req = NULL;
  sl_client_conn_close(k, 1);
  r->headers_done = 0;
  sl_client_req_connect_new(r);
  return 1;
}

/* A queued write is done. A body function's task waits for its chunks to go out. */
static void conn_on_write(sl_stream *st, int status) {
  hc_conn *k = (hc_conn *)st->data;
  hc_req *r = k->req;
  if (st->writes_pending == 0)
    k->writing = 0;
  if (k->state == HC_CLOSING || r == NULL || r->conn != k)
    return;
  if (status < 0) {
    if (!req_retry(r, status))
      req_fail_uv(r, status, "cannot send the request to");
    return;
  }
  if (k->writing || k->handshaking)
    return;
  if (r->fn_body)
    req_signal(r);
}

/* Writes bufs, as far as possible at once: returns 1 when all was written, 0 when the
 * rest is queued (conn_on_write follows), or a libuv error. */
static int conn_write(hc_conn *k, uv_buf_t *bufs, unsigned n) {
  int rc = sl_stream_write(k->st, bufs, n);
  if (rc == 0)
    k->writing = 1;
  return rc;
}

/* The request has a connection: send its head and string body, then wait for the
 * response's first byte. With a body function only the head goes now (the task sends the
 * chunks through sl_client_req_write_body). */
void sl_client_req_send(hc_req *r) {
  hc_conn *k = r->conn;
  uv_buf_t bufs[2];
  unsigned n = 1;
  int rc;
  k->nreq++;
  if (r->reused)
    r->client->nreused++;
  llhttp_reset(&k->parser);
  bufs[0] = uv_buf_init(r->wbuf.p, (unsigned)r->wbuf.len);
  if (r->body_len > 0)
    bufs[n++] = uv_buf_init((char *)r->body, (unsigned)r->body_len);
  rc = conn_write(k, bufs, n);
  if (rc < 0) {
    if (!req_retry(r, rc))
      req_fail_uv(r, rc, "cannot send the request to");
    return;
  }
  if (r->fn_body) {
    r->ready = 1;
    r->phase = HC_PH_SEND;
    sl_timer_stop(r->E, &r->timer);
    req_signal(r);
    return;
  }
  r->body_sent = 1;
  req_arm(r, HC_PH_FIRST_BYTE, r->lim.first_byte_timeout);
}

/* Sends one chunk of a body function's output (last: then the terminating chunk).
 * Returns 1 when written, 0 when queued (the task waits for conn_on_write), -1 when the
 * request failed (r->done is set). The stream copies what it queues. */
int sl_client_req_write_body(hc_req *r, const char *data, size_t len, int last) {
  uv_buf_t bufs[3];
  unsigned n = 0;
  int rc;
  if (r->conn == NULL || r->done)
    return -1;
  if (len > 0) {
    int hl = snprintf(r->chunk_head, sizeof r->chunk_head, "%zx\r\n", len);
    bufs[n++] = uv_buf_init(r->chunk_head, (unsigned)hl);
    bufs[n++] = uv_buf_init((char *)data, (unsigned)len);
    bufs[n++] = last ? uv_buf_init((char *)"\r\n0\r\n\r\n", 7)
                     : uv_buf_init((char *)"\r\n", 2);
  } else if (last) {
    bufs[n++] = uv_buf_init((char *)"0\r\n\r\n", 5);
  } else {
    return 1;
  }
  rc = conn_write(r->conn, bufs, n);
  if (rc < 0) {
    req_fail_uv(r, rc, "cannot send the request body to");
    return -1;
  }
  if (last) {
    r->body_sent = 1;
    if (!r->done && !r->complete)
      req_arm(r, r->got_byte ? HC_PH_READ : HC_PH_FIRST_BYTE,
              r->got_byte ? r->lim.idle_timeout : r->lim.first_byte_timeout);
  }
  return rc;
}

/* --------------------------------------------------------------- reading */

/* The response is complete: the connection goes back to the pool (or is closed), the
 * task is told. The body's only span, if still in the read buffer, becomes a string on
 * the task's stack now, before the buffer is reused. */
static void req_complete(hc_req *r, int extra_bytes) {
  hc_conn *k = r->conn;
  hc_client *c = r->client;
  int keep = !extra_bytes && !k->writing && r->body_sent && !r->close_after &&
             c->keepalive > 0 && !c->closed && llhttp_should_keep_alive(&k->parser);
  int took;
  keep = keep && (r->proxy == NULL || r->proxy->stale < HC_PROXY_STALE);
  r->complete = 1;
  r->done = 1;
  r->phase = HC_PH_DONE;
  r->t_done = r->t_last;       /* the read that completed it */
  sl_timer_stop(r->E, &r->timer);
  r->conn = NULL;
  k->req = NULL;
  took = sl_client_req_take_span(r, r->waiting && !r->fn_body ? r->task->co : NULL);
  if (took == 1) {
    r->task->nargs = 1;
    r->pushed = 1;
  } else if (took < 0) {
    keep = 0;
    r->complete = 0;
  }
  r->origin = NULL;            /* the connection holds the origin now */
  if (keep)
    sl_client_conn_release(k);
  else
    sl_client_conn_close(k, 0);
  req_signal(r);
}

/* The connection ended (nread: UV_EOF or a libuv error) while r was using it. */
static void conn_end(hc_conn *k, hc_req *r, ssize_t nread) {
  if (nread == UV_EOF) {
    r->t_last = uv_hrtime();
    if (!r->got_byte && req_retry(r, UV_EOF))
      return;
    if (sl_client_conn_finish(k, r) == HC_IN_DONE_EXTRA)
      req_complete(r, 1);
    else
      sl_client_req_fail(r, r->err_name, NULL);
    return;
  }
  if (!r->got_byte && req_retry(r, (int)nread))
    return;
  req_fail_uv(r, (int)nread, "connection to");
}

/* Parses n response bytes (plaintext) at data and acts on what they make of r. */
static void conn_input(hc_conn *k, hc_req *r, const char *data, size_t n) {
  switch (sl_client_conn_input(k, r, data, n)) {
  case HC_IN_DONE:
    req_complete(r, 0);
    break;
  case HC_IN_DONE_EXTRA:
    req_complete(r, 1);
    break;
  case HC_IN_FAIL:
    sl_client_req_fail(r, r->err_name, NULL);
    break;
  case HC_IN_SINK:
    sl_stream_read_stop(k->st);
    r->paused = 1;
    sl_timer_stop(r->E, &r->timer);
    req_signal(r);
    break;
  default:
    if (r->phase == HC_PH_FIRST_BYTE && r->body_sent)
      req_arm(r, HC_PH_READ, r->lim.idle_timeout);
  }
}

static void conn_on_read(sl_stream *st, ssize_t nread, const char *data) {
  hc_conn *k = (hc_conn *)st->data;
  hc_req *r = k->req;
  if (k->state == HC_CLOSING)
    return;
  if (r == NULL) {             /* idle: closed by the server, or bytes nobody asked for */
    sl_client_conn_close(k, 0);
    return;
  }
  if (nread == SL_STREAM_ETLS) {
    snprintf(r->err_msg, sizeof r->err_msg, "%s", sl_stream_tls_error(st));
    sl_client_req_fail(r, "ETLS", NULL);
    return;
  }
  if (nread < 0) {
    conn_end(k, r, nread);
    return;
  }
  r->t_last = uv_hrtime();     /* one clock read per read: first byte, idle, done */
  conn_input(k, r, data, (size_t)nread);
}

/* The stream of a new connection: it tells this file what it reads and writes. */
static void conn_attach(hc_conn *k, sl_stream *st) {
  k->st = st;
  st->data = k;
  st->on_read = conn_on_read;
  st->on_write = conn_on_write;
  st->on_close = conn_on_close;
  st->lend = sl_client_conn_lend;
}

/* ------------------------------------------------------------------- TLS */

/* The handshake is over (it counts in connect_timeout: the phase stays HC_PH_CONNECT):
 * the request is sent, or fails as the handshake did. */
static void conn_on_handshake(sl_stream *st, int status) {
  hc_conn *k = (hc_conn *)st->data;
  hc_req *r = k->req;
  k->handshaking = 0;
  if (k->state == HC_CLOSING || r == NULL)
    return;
  if (status == SL_STREAM_ETLS) {
    snprintf(r->err_msg, sizeof r->err_msg, "%s", sl_stream_tls_error(st));
    sl_client_req_fail(r, "ETLS", NULL);
  } else if (status < 0 && st->rerr != 0) {
    sl_client_req_fail(r, "ETLS", "handshake failed: %s (host %s:%d)",
                       status == UV_EOF ? "the server closed the connection"
                                        : uv_strerror(status), r->host, r->port);
  } else if (status < 0) {
    req_fail_uv(r, status, "cannot send to");
  } else {
    r->t_tls_done = uv_hrtime();
    r->tls_resumed = (uint8_t)sl_stream_tls_resumed(st);
    r->client->ntls++;
    r->client->nresumed += r->tls_resumed;
    sl_client_req_send(r);
  }
}

static void tls_begin(hc_conn *k, hc_req *r) {
  hc_origin *o = k->origin;
  r->t_tls = uv_hrtime();
  k->handshaking = 1;
  k->st->on_handshake = conn_on_handshake;
  if (sl_stream_tls_start(k->st, o->tls_ctx, r->host, r->port, !o->tls_noverify,
                          o->sess) < 0) {
    k->handshaking = 0;
    snprintf(r->err_msg, sizeof r->err_msg, "%s", sl_stream_tls_error(k->st));
    sl_client_req_fail(r, "ETLS", NULL);
  }
}

/* A sink consumed the chunk (sl_client_sink_piece emptied rbody, or holds back the first byte
 * of a deflate body): read on. Over TLS, what OpenSSL holds already comes first, from
 * within sl_stream_read_start, and may end the response. */
void sl_client_req_resume_reading(hc_req *r) {
  hc_conn *k = r->conn;
  if (!r->paused || k == NULL)
    return;
  r->paused = 0;
  r->t_last = uv_hrtime();
  if (sl_stream_read_start(k->st) < 0) {
    sl_client_req_fail(r, "EIO", "cannot read from %s:%d", r->host, r->port);
    return;
  }
  if (k->req != r || r->done || r->paused)
    return;
  req_arm(r, HC_PH_READ, r->lim.idle_timeout);
}
