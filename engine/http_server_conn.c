/* http_server_conn.c: the HTTP server's connections: accepting, reading requests (parsed one
 * at a time by http_server_parse.c, so pipelined responses keep their order), writing with
 * back-pressure, keep-alive, request and send timeouts, and closing without losing the
 * last response. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

#include "http_server.h"
#include "sluice.h"
#include "stream.h"

#define IN_HWM     (64 * 1024)  /* unparsed bytes above which reading pauses */
#define IN_MIN     (4 * 1024)   /* the least room handed to libuv for one read */
#define LINGER_MS  2000         /* how long a half-closed connection may keep sending */

/* A write the kernel did not take at once: owns a copy of the bytes left. */
typedef struct hs_write {
  uv_write_t req;
  hs_conn *c;
  char data[];
} hs_write;

static uint64_t now_ms(hs_conn *c) {
  return uv_now(c->srv->E->loop);
}

/* ---------------------------------------------------------------- reading */

/* Where the next read goes: the free space after the unparsed input, compacted and grown
 * so that at least IN_MIN bytes fit. Sets *out to a null buffer when out of memory. */
void hs_conn_in_buf(hs_conn *c, uv_buf_t *out) {
  if (c->in_len == 0)
    c->in_off = 0;
  if (c->in_cap - c->in_off - c->in_len < IN_MIN) {
    if (c->in_off > 0) {
      memmove(c->in, c->in + c->in_off, c->in_len);
      c->in_off = 0;
    }
    if (c->in_cap - c->in_len < IN_MIN) {
      size_t ncap = c->in_cap ? c->in_cap * 2 : 4 * IN_MIN;
      char *nb = (char *)realloc(c->in, ncap);
      if (nb == NULL) {
        *out = uv_buf_init(NULL, 0);
        return;
      }
      c->in = nb;
      c->in_cap = ncap;
    }
  }
  *out = uv_buf_init(c->in + c->in_off + c->in_len,
                     (unsigned)(c->in_cap - c->in_off - c->in_len));
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
  (void)suggested;
  hs_conn_in_buf((hs_conn *)h->data, out);   /* a null buffer: read_cb gets UV_ENOBUFS */
}

static void stop_reading(hs_conn *c) {
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

static void start_reading(hs_conn *c) {
  if (!c->reading && !c->peer_done && !c->closing) {
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
      c->reading = 1;
  }
}

/* n bytes were read into the space hs_conn_in_buf gave: takes them into the input and
 * parses on unless a request is being handled. Returns 1 when a request is complete (c is
 * busy: the caller hands it to a worker), else 0. No socket call but stopping reading (a
 * no-op when not reading), so the fuzz harness drives this very function. */
int hs_conn_input(hs_conn *c, size_t n) {
  if (c->lingering) {          /* the answer is out: what the peer still sends is dropped */
    c->in_len = 0;
    return 0;
  }
  c->in_len += n;
  /* Pipelined requests wait while one is handled or its response is still queued; once
   * IN_HWM bytes wait, reading stops, so a client that sends without reading is held
   * to one response plus this buffer. */
  if (c->busy || c->draining) {
    if (c->in_len >= IN_HWM)
      stop_reading(c);
    return 0;
  }
  return hs_conn_parse(c);
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  hs_conn *c = (hs_conn *)st->data;
  (void)b;
  if (n > 0) {
    if (hs_conn_input(c, (size_t)n))
      hs_dispatch(c);
  } else if (n < 0) {
    stop_reading(c);
    c->peer_done = 1;
    if (n != UV_EOF)
      c->dead = 1;
    /* While a worker has a request, or a response is still going out, the requests
     * already received are answered (a half-closed peer still reads) and then the
     * connection closes; otherwise nothing more can come. */
    if (c->dead)
      hs_conn_close(c);
    else if (c->busy || c->draining)
      ;
    else if (c->writes_pending > 0)
      c->close_when_flushed = 1;         /* e.g. lingering: the answer still goes out */
    else
      hs_conn_close(c);
  }
}

/* ---------------------------------------------------------------- writing */

static int conn_resume(hs_conn *c);

/* A queued write is done: the peer took those bytes. Once nothing is queued, a streaming
 * worker goes on, a connection waiting to close closes, and one holding pipelined requests
 * back (draining) takes the next. */
static void write_cb(uv_write_t *req, int status) {
  hs_write *w = (hs_write *)req;
  hs_conn *c = w->c;
  free(w);
  c->writes_pending--;
  c->t_sent = now_ms(c);
  if (status < 0)
    c->dead = 1;
  if (c->writes_pending == 0 || c->dead) {
    if (c->writer != NULL) {
      sl_task *t = c->writer;
      c->writer = NULL;
      sl_task_wake(t, SL_WAKE_OK);
    }
  }
  if (c->closing)
    return;
  if (c->dead && c->draining) {
    hs_conn_close(c);                    /* no worker will come to end it */
  } else if (c->writes_pending == 0) {
    if (c->close_when_flushed) {
      hs_conn_close(c);
      return;
    }
    c->t_idle = c->t_sent;  /* idle from when the answer is out */
    if (c->lingering)
      c->t_start = c->t_sent;            /* the lingering time starts once all is out */
    if (c->draining) {
      c->draining = 0;
      if (conn_resume(c))
        hs_dispatch(c);
    }
  }
}

int hs_send(hs_conn *c, uv_buf_t *bufs, int n) {
  size_t total = 0, left, off = 0;
  int i, rc;
  hs_write *w;
  uv_buf_t b;
  if (c->dead || c->closing)
    return UV_ECANCELED;
  for (i = 0; i < n; i++)
    total += bufs[i].len;
  c->handed += total;
  /* Most responses fit in the socket buffer: sent now, with no copy. uv_try_write refuses
   * while earlier writes are queued, so the order is kept. */
  rc = c->writes_pending ? UV_EAGAIN : uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  if (rc >= 0 && (size_t)rc == total)
    return 0;
  if (rc < 0 && rc != UV_EAGAIN) {
    c->dead = 1;
    return rc;
  }
  left = total - (rc > 0 ? (size_t)rc : 0);
  w = (hs_write *)malloc(sizeof *w + left);
  if (w == NULL) {
    c->dead = 1;
    return UV_ENOMEM;
  }
  /* Copy what the kernel did not take: the tail of the buffers after the first rc bytes. */
  {
    size_t skip = total - left;
    for (i = 0; i < n; i++) {
      size_t bl = bufs[i].len;
      if (skip >= bl) {
        skip -= bl;
        continue;
      }
      memcpy(w->data + off, bufs[i].base + skip, bl - skip);
      off += bl - skip;
      skip = 0;
    }
  }
  w->c = c;
  b = uv_buf_init(w->data, (unsigned)left);
  rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
  if (rc < 0) {
    free(w);
    c->dead = 1;
    return rc;
  }
  if (c->writes_pending++ == 0)
    c->t_sent = now_ms(c);               /* the send_timeout clock starts */
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

void hs_send_error(hs_conn *c, int status, int keep) {
  char buf[256];
  const char *reason = error_reason(status);
  int n;
  uv_buf_t b;
  keep = keep && c->keepalive && !c->close_after && !c->srv->closing;
  n = snprintf(buf, sizeof buf, "HTTP/1.1 %d %s\r\nServer: sluice\r\nContent-Type: "
               "text/plain\r\nContent-Length: %d\r\n%s\r\n%s\n", status, reason,
               (int)strlen(reason) + 1, keep ? "" : "Connection: close\r\n", reason);
  b = uv_buf_init(buf, (unsigned)n);
  hs_send(c, &b, 1);
  if (!keep) {
    c->close_after = 1;
    if (!c->busy)
      hs_conn_end(c);
  }
}

/* ---------------------------------------------------------------- closing */

static void conn_close_cb(uv_handle_t *h) {
  hs_conn *c = (hs_conn *)h->data;
  hs_server *s = c->srv;
  s->nconns--;
  hs_check_closed(s);
  hs_conn_release(c);
}

/* A connection leaves the server's list only here, once its worker is done with it too: a
 * connection closed under a running handler (the peer reset, send_timeout) stays listed,
 * so that server_force still finds and cancels that handler. */
void hs_conn_release(hs_conn *c) {
  if (--c->refs == 0) {
    hs_server *s = c->srv;
    sl_queue_remove(&c->node);
    free(c->in);
    free(c->head.p);
    free(c->hdr);
    free(c->body.p);
    free(c->out.p);
    free(c);
    hs_server_unref(s);
  }
}

void hs_conn_close(hs_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  c->dead = 1;
  if (c->writer != NULL) {
    sl_task *t = c->writer;
    c->writer = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
  uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  hs_conn *c = (hs_conn *)req->data;
  if (status < 0)
    hs_conn_close(c);          /* ECANCELED when it closed meanwhile: nothing to do */
}

/* Closing right after the last response would reset the connection if the peer's bytes
 * are still unread, and a reset can destroy the response before the peer reads it. So:
 * send end-of-stream after the queued writes, drop what still arrives, and close at the
 * peer's end of stream (or after LINGER_MS). */
void hs_conn_end(hs_conn *c) {
  if (c->closing || c->ending)
    return;
  c->ending = 1;
  if (c->peer_done || c->dead) {
    if (c->writes_pending == 0)
      hs_conn_close(c);
    else
      c->close_when_flushed = 1;
    return;
  }
  c->sreq.data = c;
  if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
    c->close_when_flushed = 1;
    if (c->writes_pending == 0)
      hs_conn_close(c);
    return;
  }
  c->lingering = 1;
  c->in_len = 0;
  c->t_start = now_ms(c);
  start_reading(c);
}

/* Goes on with a connection whose last response is queued: parses the next pipelined
 * request (1: it is ready for a worker), or ends or reads as the state says (0). */
static int conn_resume(hs_conn *c) {
  if (hs_conn_parse(c))
    return 1;
  if (c->closing || c->ending)
    return 0;
  if (c->peer_done || (c->srv->closing && !c->in_message)) {
    hs_conn_end(c);
    return 0;
  }
  start_reading(c);
  return 0;
}

/* After a response is queued. If the peer has not taken all of it (bytes still queued
 * in libuv), the next request waits until they have gone (write_cb): a client that
 * pipelines requests and never reads gets one response queued, not all of them. */
int hs_conn_next(hs_conn *c) {
  c->busy = 0;
  c->worker = NULL;
  c->t_idle = now_ms(c);
  if (c->closing)
    return 0;
  if (c->dead || c->close_after || !c->keepalive) {
    hs_conn_end(c);
    return 0;
  }
  if (c->writes_pending > 0) {
    c->draining = 1;
    return 0;
  }
  return conn_resume(c);
}

/* ------------------------------------------------------ accepting, timers */

static void reject_close_cb(uv_handle_t *h) {
  free(h);
}

static void connection_cb(uv_stream_t *server, int status) {
  hs_server *s = (hs_server *)server->data;
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  hs_conn *c;
  if (status < 0 || s->closing)
    return;
  c = (hs_conn *)calloc(1, sizeof *c);
  if (c == NULL)
    return;
  uv_tcp_init(s->E->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, reject_close_cb);   /* c starts with its handle */
    return;
  }
  c->tcp.data = c;
  c->srv = s;
  c->refs = 1;
  s->refs++;
  sl_queue_insert_head(&s->conns, &c->node);
  s->nconns++;
  s->naccepted++;
  uv_tcp_nodelay(&c->tcp, 1);
  hs_conn_parser_init(c);
  c->t_idle = now_ms(c);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, c->remote, sizeof c->remote);
      c->remote_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote, sizeof c->remote);
      c->remote_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
  }
  start_reading(c);
}

/* How many of the bytes handed to the kernel or to libuv the peer has taken: those handed,
 * less libuv's write queue, less the kernel's send queue (bytes not yet acknowledged,
 * SIOCOUTQ). Without that ioctl, bytes in the kernel count as taken: progress is then only
 * seen when libuv hands the kernel more, which a send buffer of megabytes can hide for
 * longer than send_timeout. */
static uint64_t conn_taken(hs_conn *c) {
  uint64_t left = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
#ifdef SIOCOUTQ
  uv_os_fd_t fd;
  int n;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0)
    left += (uint64_t)n;
#endif
  return left < c->handed ? c->handed - left : 0;
}

/* A connection with bytes queued: closed once the peer has taken none of them for
 * send_timeout. A write completing (write_cb) is progress, and so is the peer taking bytes
 * between two sweeps (conn_taken), even while one large write is still in the queue. */
static void sweep_sending(hs_conn *c, uint64_t now) {
  uint64_t taken = conn_taken(c);
  if (taken > c->taken_seen) {
    c->taken_seen = taken;
    c->t_sent = now;
  }
  if (now - c->t_sent >= c->srv->send_ms)
    hs_conn_close(c);
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
    if (c->writes_pending > 0)           /* whether a worker has it or not */
      sweep_sending(c, now);
    else if (c->busy)
      continue;
    else if (c->lingering) {
      if (now - c->t_start >= LINGER_MS)
        hs_conn_close(c);
    } else if (c->in_message) {
      if (now - c->t_start >= s->request_ms) {
        c->in_len = 0;
        hs_send_error(c, 408, 0);
      }
    } else if (now - c->t_idle >= s->keepalive_ms) {
      /* Bytes that start no request (blank lines) do not make a connection less idle. */
      hs_conn_close(c);
    }
  }
}

int hs_server_listen(hs_server *s, const char *host, int port, int backlog) {
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

