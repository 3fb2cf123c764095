/* http_server_conn.c: the HTTP server's connections on their streams (stream.c):
 * accepting, reading requests (parsed one at a time by http_server_parse.c, so pipelined
 * responses keep their order), writing with back-pressure, keep-alive, request and send
 * timeouts, and closing without losing the last response. */
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "sluice.h"
#include "stream.h"

#define IN_HWM     (64 * 1024)  /* unparsed bytes above which reading pauses */
#define LINGER_MS  2000         /* how long a half-closed connection may keep sending */

static uint64_t now_ms(hs_conn *c) {
  return uv_now(c->srv->E->loop);
}

/* ---------------------------------------------------------------- reading */

static void conn_on_continue(hs_conn *c) {
  static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
  uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
  c->send_continue = 0;
  sl_server_send(c, &b, 1);
}

/* Parses what the input holds and acts on the parser's verdict: 1 when a request is
 * complete (c is busy: the caller hands it to a worker), else 0. The interim answer to
 * "Expect: 100-continue" goes out first, before any answer to that request. */
static int conn_parse(hs_conn *c) {
  int rc = sl_server_conn_parse(c);
  if (c->send_continue)
    conn_on_continue(c);
  switch (rc) {
  case HS_PARSE_REQUEST:
    return 1;
  case HS_PARSE_REFUSE:
    sl_server_send_error(c, c->err_status, 0);
    return 0;
  case HS_PARSE_END:
    if (!c->busy && !c->draining)
      sl_server_conn_end(c);
    return 0;
  default:
    return 0;
  }
}

/* Bytes were added to the input: parses on unless a request is being handled. Returns 1
 * when a request is complete (c is busy: the caller hands it to a worker), else 0. No
 * socket call, so the fuzz harness drives this very function. */
int sl_server_conn_input(hs_conn *c) {
  if (c->lingering) {          /* the answer is out: what the peer still sends is dropped */
    sl_stream_consume(c->st, c->st->in_len);
    return 0;
  }
  /* Pipelined requests wait while one is handled or its response is still queued; once
   * IN_HWM bytes wait, the stream stops reading, so a client that sends without reading
   * is held to one response plus this buffer. */
  if (c->busy || c->draining)
    return 0;
  return conn_parse(c);
}

static void conn_on_read(sl_stream *st, ssize_t n, const char *data) {
  hs_conn *c = (hs_conn *)st->data;
  (void)data;
  if (n > 0) {
    if (sl_server_conn_input(c))
      c->srv->dispatch(c);
    return;
  }
  c->peer_done = 1;
  if (n != UV_EOF)
    c->dead = 1;
  /* While a worker has a request, or a response is still going out, the requests
   * already received are answered (a half-closed peer still reads) and then the
   * connection closes; otherwise nothing more can come. */
  if (c->dead)
    sl_server_conn_close(c);
  else if (c->busy || c->draining)
    ;
  else if (st->writes_pending > 0)
    c->close_when_flushed = 1;           /* e.g. lingering: the answer still goes out */
  else
    sl_server_conn_close(c);
}

/* ---------------------------------------------------------------- writing */

static int conn_resume(hs_conn *c);

/* A queued write is done: the peer took those bytes. Once nothing is queued, a streaming
 * worker goes on, a connection waiting to close closes, and one holding pipelined requests
 * back (draining) takes the next. */
static void conn_on_write(sl_stream *st, int status) {
  hs_conn *c = (hs_conn *)st->data;
  if (status < 0)
    c->dead = 1;
  if (st->writes_pending == 0 || c->dead) {
    if (c->writer != NULL) {
      sl_task *t = c->writer;
      c->writer = NULL;
      sl_task_wake(t, SL_WAKE_OK);
    }
  }
  if (c->closing)
    return;
  if (c->dead && c->draining) {
    sl_server_conn_close(c);                    /* no worker will come to end it */
  } else if (st->writes_pending == 0) {
    if (c->close_when_flushed) {
      sl_server_conn_close(c);
      return;
    }
    c->t_idle = st->t_sent;              /* idle from when the answer is out */
    if (c->lingering)
      c->t_start = st->t_sent;           /* the lingering time starts once all is out */
    if (c->draining) {
      c->draining = 0;
      if (conn_resume(c))
        c->srv->dispatch(c);
    }
  }
}

int sl_server_send(hs_conn *c, uv_buf_t *bufs, int n) {
  int rc;
  if (c->dead || c->closing)
    return UV_ECANCELED;
  rc = sl_stream_write(c->st, bufs, (unsigned)n);
  if (rc < 0) {
    c->dead = 1;
    return rc;
  }
  return 0;
}

static const char *error_reason(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 408: return "Request Timeout";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  default: return "Internal Server Error";
  }
}

void sl_server_send_error(hs_conn *c, int status, int keep) {
  char buf[256];
  const char *reason = error_reason(status);
  int n;
  uv_buf_t b;
  keep = keep && c->keepalive && !c->close_after && !c->srv->closing;
  n = snprintf(buf, sizeof buf, "HTTP/1.1 %d %s\r\nServer: sluice\r\nContent-Type: "
               "text/plain\r\nContent-Length: %d\r\n%s\r\n%s\n", status, reason,
               (int)strlen(reason) + 1, keep ? "" : "Connection: close\r\n", reason);
  b = uv_buf_init(buf, (unsigned)n);
  sl_server_send(c, &b, 1);
  if (!keep) {
    c->close_after = 1;
    if (!c->busy)
      sl_server_conn_end(c);
  }
}

/* ---------------------------------------------------------------- closing */

static void conn_on_close(sl_stream *st) {
  hs_conn *c = (hs_conn *)st->data;
  hs_server *s = c->srv;
  c->st = NULL;
  s->nconns--;
  s->conn_closed(s);
  sl_server_conn_release(c);
}

/* A connection leaves the server's list only here, once its worker is done with it too: a
 * connection closed under a running handler (the peer reset, send_timeout) stays listed,
 * so that server_force still finds and cancels that handler. */
void sl_server_conn_release(hs_conn *c) {
  if (--c->refs == 0) {
    hs_server *s = c->srv;
    sl_queue_remove(&c->node);
    free(c->head.p);
    free(c->hdr);
    free(c->body.p);
    free(c->out.p);
    free(c);
    s->unref(s);
  }
}

void sl_server_conn_close(hs_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  c->dead = 1;
  if (c->writer != NULL) {
    sl_task *t = c->writer;
    c->writer = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
  sl_stream_close(c->st);
}

static void conn_on_shutdown(sl_stream *st, int status) {
  hs_conn *c = (hs_conn *)st->data;
  if (status < 0)
    sl_server_conn_close(c);          /* ECANCELED when it closed meanwhile: nothing to do */
}

/* Closing right after the last response would reset the connection if the peer's bytes
 * are still unread, and a reset can destroy the response before the peer reads it. So:
 * send end-of-stream after the queued writes, drop what still arrives, and close at the
 * peer's end of stream (or after LINGER_MS). */
void sl_server_conn_end(hs_conn *c) {
  if (c->closing || c->ending)
    return;
  c->ending = 1;
  if (c->peer_done || c->dead) {
    if (c->st->writes_pending == 0)
      sl_server_conn_close(c);
    else
      c->close_when_flushed = 1;
    return;
  }
  if (sl_stream_shutdown(c->st) != 0) {
    c->close_when_flushed = 1;
    if (c->st->writes_pending == 0)
      sl_server_conn_close(c);
    return;
  }
  c->lingering = 1;
  sl_stream_consume(c->st, c->st->in_len);
  c->t_start = now_ms(c);
  sl_stream_read_start(c->st);
}

/* Goes on with a connection whose last response is queued: parses the next pipelined
 * request (1: it is ready for a worker), or ends or reads as the state says (0). */
static int conn_resume(hs_conn *c) {
  if (conn_parse(c))
    return 1;
  if (c->closing || c->ending)
    return 0;
  if (c->peer_done || (c->srv->closing && !c->in_message)) {
    sl_server_conn_end(c);
    return 0;
  }
  sl_stream_read_start(c->st);
  return 0;
}

/* After a response is queued. If the peer has not taken all of it (bytes still queued
 * in libuv), the next request waits until they have gone (conn_on_write): a client that
 * pipelines requests and never reads gets one response queued, not all of them. */
int sl_server_conn_next(hs_conn *c) {
  c->busy = 0;
  c->worker = NULL;
  c->t_idle = now_ms(c);
  if (c->closing)
    return 0;
  if (c->dead || c->close_after || !c->keepalive) {
    sl_server_conn_end(c);
    return 0;
  }
  if (c->st->writes_pending > 0) {
    c->draining = 1;
    return 0;
  }
  return conn_resume(c);
}

/* ------------------------------------------------------ accepting, timers */

hs_conn *sl_server_conn_new(hs_server *s, sl_stream *st) {
  hs_conn *c = (hs_conn *)calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->st = st;
  st->data = c;
  st->on_read = conn_on_read;
  st->on_write = conn_on_write;
  st->on_close = conn_on_close;
  st->on_shutdown = conn_on_shutdown;
  st->in_hwm = IN_HWM;
  c->srv = s;
  c->refs = 1;                 /* the stream's, dropped once it has closed */
  s->refs++;
  sl_queue_insert_head(&s->conns, &c->node);
  s->nconns++;
  sl_server_conn_parser_init(c);
  c->t_idle = now_ms(c);
  return c;
}

/* A TLS handshake failed (plain HTTP or garbage on the port, a peer that went away): the
 * connection closes without a word, as there is no request to answer. */
static void conn_on_handshake(sl_stream *st, int status) {
  hs_conn *c = (hs_conn *)st->data;
  if (status < 0) {
    c->peer_done = 1;
    sl_server_conn_close(c);
  }
}

static void connection_cb(uv_stream_t *server, int status) {
  hs_server *s = (hs_server *)server->data;
  sl_stream *st;
  hs_conn *c;
  int rc;
  if (status < 0 || s->closing)
    return;
  st = sl_stream_accept(server, &rc);
  if (st == NULL)
    return;
  c = sl_server_conn_new(s, st);
  if (c == NULL) {
    sl_stream_close(st);
    return;
  }
  s->naccepted++;
  sl_stream_peer(st, c->remote, sizeof c->remote, &c->remote_port);
  sl_stream_read_start(st);
  /* Over TLS, a peer that never finishes the handshake is idle: keepalive_timeout ends
   * it, as the connection counts as idle from its accept until a request begins. */
  if (s->tls_ctx != NULL) {
    st->on_handshake = conn_on_handshake;
    if (sl_stream_tls_start(st, s->tls_ctx, NULL, 0, 0, NULL) < 0)
      sl_server_conn_close(c);
  }
}

/* A connection with bytes queued: closed once the peer has taken none of them for
 * send_timeout. A write completing (conn_on_write) is progress, and so is the peer taking
 * bytes between two sweeps (sl_stream_taken), even while one large write is still in the
 * queue. */
static void sweep_sending(hs_conn *c, uint64_t now) {
  uint64_t taken = sl_stream_taken(c->st);
  if (taken > c->taken_seen) {
    c->taken_seen = taken;
    c->st->t_sent = now;
  }
  if (now - c->st->t_sent >= c->srv->send_ms)
    sl_server_conn_close(c);
}

/* Runs a few times per timeout: closes keep-alive connections idle too long, requests that
 * take too long to arrive, peers that take nothing of a response, and lingering
 * connections whose peer never closes. */
static void sweep_cb(uv_timer_t *t) {
  hs_server *s = (hs_server *)t->data;
  uint64_t now = uv_now(s->E->loop);
  sl_queue *q, *n;
  SL_QUEUE_FOREACH_SAFE(q, n, &s->conns) {
    hs_conn *c = SL_QUEUE_DATA(q, hs_conn, node);
    if (c->closing)
      continue;
    if (c->st->writes_pending > 0)       /* whether a worker has it or not */
      sweep_sending(c, now);
    else if (c->busy)
      continue;
    else if (c->lingering) {
      if (now - c->t_start >= LINGER_MS)
        sl_server_conn_close(c);
    } else if (c->in_message) {
      if (now - c->t_start >= s->request_ms) {
        sl_stream_consume(c->st, c->st->in_len);
        sl_server_send_error(c, 408, 0);
      }
    } else if (now - c->t_idle >= s->keepalive_ms) {
      /* Bytes that start no request (blank lines) do not make a connection less idle. */
      sl_server_conn_close(c);
    }
  }
}

int sl_server_listen(hs_server *s, const char *host, int port, int backlog) {
  uint64_t every = s->keepalive_ms < s->request_ms ? s->keepalive_ms : s->request_ms;
  int rc;
  if (s->send_ms < every)
    every = s->send_ms;
  rc = sl_stream_listen(s->E->loop, &s->listener, host, port, backlog, connection_cb,
                          &s->port);
  if (rc < 0)
    return rc;
  every /= 4;
  every = every < 10 ? 10 : every > 1000 ? 1000 : every;
  uv_timer_start(&s->sweep, sweep_cb, every, every);
  uv_unref((uv_handle_t *)&s->sweep);
  return 0;
}

