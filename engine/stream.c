/* stream.c: a connected byte stream over a uv_tcp_t, the engine's one socket layer (the
 * idea of luv's stream.c and wrk's struct sock): the bytes read wait in one input buffer
 * until the owner consumes them, reading pauses while the owner holds enough; a write goes
 * to the kernel at once when it can, else a copy of the rest is queued; connect resolves
 * through the DNS cache and tries each address in turn. Owners (sluice.tcp's sockets, the
 * HTTP server's connections) hear back only through the callbacks they set. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

#include "dns.h"
#include "sluice.h"
#include "stream.h"

#define IN_MIN (4 * 1024)

/* A write the kernel did not take at once: owns a copy of the bytes left, so the writer
 * (a task that may be cancelled, a response's buffers) need not keep them. */
typedef struct stream_write {
  uv_write_t req;
  char data[];
} stream_write;

/* ------------------------------------------------------------ life */

sl_stream *sl_stream_new(uv_loop_t *loop) {
  sl_stream *s = (sl_stream *)calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  if (uv_tcp_init(loop, &s->tcp) != 0) {
    free(s);
    return NULL;
  }
  s->tcp.data = s;
  s->in_min = IN_MIN;
  return s;
}

static void close_cb(uv_handle_t *h) {
  sl_stream *s = (sl_stream *)h->data;
  if (s->on_close != NULL)
    s->on_close(s);
  if (s->impl != NULL)
    s->impl->free(s);
  free(s->in);
  free(s);
}

void sl_stream_close(sl_stream *s) {
  if (s->closing)
    return;
  if (s->impl != NULL && s->rerr == 0 && !s->shut)
    s->impl->end(s, 1);
  s->closing = 1;
  s->reading = 0;
  if (s->connecting != NULL) {   /* a connect given up: its callback must not come */
    ((sl_connect *)s->connecting)->attempt = NULL;
    s->connecting = NULL;
  }
  uv_close((uv_handle_t *)&s->tcp, close_cb);
}

sl_stream *sl_stream_accept(uv_stream_t *server, int *err) {
  sl_stream *s = sl_stream_new(server->loop);
  if (s == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = uv_accept(server, (uv_stream_t *)&s->tcp);
  if (*err != 0) {
    sl_stream_close(s);
    return NULL;
  }
  uv_tcp_nodelay(&s->tcp, 1);
  return s;
}

/* ------------------------------------------------------------ reading */

void sl_stream_in_buf(sl_stream *s, uv_buf_t *out) {
  if (s->in_len == 0)
    s->in_off = 0;
  if (s->in_cap - s->in_off - s->in_len < s->in_min) {
    if (s->in_off > 0) {
      memmove(s->in, s->in + s->in_off, s->in_len);
      s->in_off = 0;
    }
    if (s->in_cap - s->in_len < s->in_min) {
      size_t ncap = s->in_cap ? s->in_cap * 2 : 4 * s->in_min;
      char *nb = (char *)realloc(s->in, ncap);
      if (nb == NULL) {
        *out = uv_buf_init(NULL, 0);   /* libuv reports UV_ENOBUFS to read_cb */
        return;
      }
      s->in = nb;
      s->in_cap = ncap;
    }
  }
  *out = uv_buf_init(s->in + s->in_off + s->in_len,
                     (unsigned)(s->in_cap - s->in_off - s->in_len));
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
  sl_stream *s = (sl_stream *)h->data;
  (void)suggested;
  if (s->impl != NULL)
    s->impl->alloc(s, out);
  else if (s->lend == NULL || !s->lend(s, out))
    sl_stream_in_buf(s, out);
}

static void stop(sl_stream *s) {
  if (s->reading) {
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = 0;
  }
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  sl_stream *s = (sl_stream *)st->data;
  if (n == 0 || s->closing)
    return;
  if (n < 0) {
    s->rerr = (int)n;
    stop(s);
  }
  if (s->impl != NULL) {
    if (n > 0)
      s->t_raw = uv_hrtime();  /* the owner's idle clock: bytes came, decoded or not */
    s->impl->read(s, n, b);
    return;
  }
  if (n < 0) {
    s->on_read(s, n, NULL);
    return;
  }
  if (s->in != NULL && b->base == s->in + s->in_off + s->in_len)
    s->in_len += (size_t)n;   /* not lent: the bytes are the input's */
  s->on_read(s, n, b->base);
  /* Nobody is taking the bytes fast enough: back-pressure, until sl_stream_consume. */
  if (s->in_hwm > 0 && s->in_len >= s->in_hwm)
    stop(s);
}

int sl_stream_read_start(sl_stream *s) {
  int rc;
  s->want_read = 1;
  if (s->reading || s->rerr != 0 || s->closing)
    return s->rerr;
  if (s->in_hwm > 0 && s->in_len >= s->in_hwm)
    return 0;                  /* resumes once consumed */
  rc = uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
  if (rc == 0)
    s->reading = 1;
  else
    s->rerr = rc;
  if (rc == 0 && s->impl != NULL)
    s->impl->resume(s);
  return rc;
}

void sl_stream_read_stop(sl_stream *s) {
  s->want_read = 0;
  stop(s);
}

void sl_stream_pause(sl_stream *s) {
  stop(s);
}

void sl_stream_consume(sl_stream *s, size_t n) {
  s->in_off += n;
  s->in_len -= n;
  if (s->in_len == 0)
    s->in_off = 0;
  if (!s->reading && s->want_read && s->in_hwm > 0 && s->in_len < s->in_hwm)
    sl_stream_read_start(s);
}

/* ------------------------------------------------------------ writing */

static void write_cb(uv_write_t *req, int status) {
  sl_stream *s = (sl_stream *)req->handle->data;
  free(req);
  s->writes_pending--;
  s->t_sent = uv_now(s->tcp.loop);
  if (s->on_write != NULL)
    s->on_write(s, status);
}

int sl_stream_write(sl_stream *s, const uv_buf_t *bufs, unsigned n) {
  if (s->impl != NULL)
    return s->closing ? UV_ECANCELED : s->impl->write(s, bufs, n);
  return sl_stream_write_raw(s, bufs, n);
}

int sl_stream_write_raw(sl_stream *s, const uv_buf_t *bufs, unsigned n) {
  size_t total = 0, skip, off = 0;
  stream_write *w;
  uv_buf_t b;
  unsigned i;
  int rc;
  if (s->closing)
    return UV_ECANCELED;
  for (i = 0; i < n; i++)
    total += bufs[i].len;
  s->handed += total;
  /* Most writes fit in the socket buffer: sent now, with no copy. uv_try_write would
   * refuse while earlier writes are queued; not asking saves the call. */
  rc = s->writes_pending ? UV_EAGAIN : uv_try_write((uv_stream_t *)&s->tcp, bufs, n);
  if (rc >= 0 && (size_t)rc == total)
    return 1;
  if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS)
    return rc;
  skip = rc > 0 ? (size_t)rc : 0;
  w = (stream_write *)malloc(sizeof *w + (total - skip));
  if (w == NULL)
    return UV_ENOMEM;
  for (i = 0; i < n; i++) {    /* the tail of the buffers after the first skip bytes */
    size_t bl = bufs[i].len;
    if (skip >= bl) {
      skip -= bl;
      continue;
    }
    memcpy(w->data + off, bufs[i].base + skip, bl - skip);
    off += bl - skip;
    skip = 0;
  }
  b = uv_buf_init(w->data, (unsigned)off);
  rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, write_cb);
  if (rc < 0) {
    free(w);
    return rc;
  }
  if (s->writes_pending++ == 0)
    s->t_sent = uv_now(s->tcp.loop);   /* a send timeout counts from here */
  return 0;
}

/* Bytes in the kernel's send queue count as not taken when SIOCOUTQ says how many there
 * are: otherwise a send buffer of megabytes could hide a peer that takes nothing. */
uint64_t sl_stream_taken(sl_stream *s) {
  uint64_t left = uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp);
#ifdef SIOCOUTQ
  uv_os_fd_t fd;
  int n;
  if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0)
    left += (uint64_t)n;
#endif
  return left < s->handed ? s->handed - left : 0;
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  sl_stream *s = (sl_stream *)req->data;
  if (s->on_shutdown != NULL)
    s->on_shutdown(s, status);
}

int sl_stream_shutdown(sl_stream *s) {
  int rc;
  if (s->shut)
    return 0;
  if (s->impl != NULL && !s->closing)
    s->impl->end(s, 0);
  s->sreq.data = s;
  rc = uv_shutdown(&s->sreq, (uv_stream_t *)&s->tcp, shutdown_cb);
  if (rc == 0)
    s->shut = 1;
  return rc;
}

/* ------------------------------------------------------------ addresses */

int sl_stream_parse_ip(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (strcmp(host, "*") == 0)
    host = "0.0.0.0";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  return UV_EINVAL;
}

static int addr_name(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    *port = ntohs(a->sin_port);
    return uv_ip4_name(a, ip, iplen);
  }
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    *port = ntohs(a->sin6_port);
    return uv_ip6_name(a, ip, iplen);
  }
  return UV_EAFNOSUPPORT;
}

int sl_stream_push_addr(lua_State *L, const struct sockaddr_storage *ss) {
  char ip[64] = "?";
  int port = 0;
  addr_name(ss, ip, sizeof ip, &port);
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

int sl_stream_peer(sl_stream *s, char *ip, size_t iplen, int *port) {
  struct sockaddr_storage ss;
  int len = (int)sizeof ss, rc;
  rc = uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len);
  return rc < 0 ? rc : addr_name(&ss, ip, iplen, port);
}

int sl_stream_listen(uv_loop_t *loop, uv_tcp_t *h, const char *host, int port,
                     int backlog, uv_connection_cb cb, int *bound) {
  struct sockaddr_storage ss;
  int rc, len = (int)sizeof ss;
  if (sl_stream_parse_ip(host, port, &ss) != 0) {
    /* A name: resolved synchronously, since listening happens once at start-up. */
    uv_getaddrinfo_t req;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = uv_getaddrinfo(loop, &req, NULL, host, NULL, &hints);
    if (rc < 0)
      return rc;
    memcpy(&ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    if (ss.ss_family == AF_INET)
      ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    else
      ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
  }
  rc = uv_tcp_bind(h, (const struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)h, backlog, cb);
  if (rc == 0)
    rc = uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len);
  if (rc == 0)
    *bound = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                     : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return rc;
}

/* ------------------------------------------------------------ connecting */

static void connect_next(sl_connect *c);

/* Ends a connect: the caller hears once, with the stream or the error. */
static void connect_end(sl_connect *c, sl_stream *s, int status) {
  c->active = 0;
  sl_timer_stop(c->E, &c->timer);
  sl_dns_cancel(&c->dns);
  c->cb(c, s, status);
}

static void connect_cb(uv_connect_t *req, int status) {
  sl_stream *s = (sl_stream *)req->data;
  sl_connect *c = (sl_connect *)s->connecting;
  if (c == NULL)
    return;                    /* given up: the stream is closing */
  s->connecting = NULL;
  c->attempt = NULL;
  if (status == 0) {
    uv_tcp_nodelay(&s->tcp, 1);
    connect_end(c, s, 0);
    return;
  }
  sl_stream_close(s);
  c->lasterr = status;
  c->addr_i++;
  connect_next(c);
}

/* Connects to the next address of the answer, or ends with the last error. */
static void connect_next(sl_connect *c) {
  while (c->addr_i < c->dns.naddrs) {
    sl_addr a = c->dns.addrs[c->addr_i];
    sl_stream *s = sl_stream_new(c->E->loop);
    int rc;
    if (s == NULL) {
      connect_end(c, NULL, UV_ENOMEM);
      return;
    }
    if (a.sa.sa_family == AF_INET6)
      a.in6.sin6_port = htons((uint16_t)c->port);
    else
      a.in4.sin_port = htons((uint16_t)c->port);
    s->creq.data = s;
    c->attempts++;
    rc = uv_tcp_connect(&s->creq, &s->tcp, &a.sa, connect_cb);
    if (rc == 0) {
      s->connecting = c;
      c->attempt = s;
      return;
    }
    sl_stream_close(s);
    c->lasterr = rc;
    c->addr_i++;
  }
  connect_end(c, NULL, c->lasterr != 0 ? c->lasterr : UV_EAI_NONAME);
}

static void connect_dns_cb(sl_dns_waiter *w, int status) {
  sl_connect *c = SL_CONTAINER_OF(w, sl_connect, dns);
  c->t_resolved = uv_hrtime();
  if (status < 0) {
    connect_end(c, NULL, status);   /* resolving stays set: the name failed */
    return;
  }
  c->resolving = 0;
  connect_next(c);
}

static void connect_timer_cb(sl_timer *tm) {
  sl_connect *c = SL_CONTAINER_OF(tm, sl_connect, timer);
  sl_stream *s = c->attempt;
  if (s != NULL)
    sl_stream_close(s);        /* detaches it: its connect_cb does nothing */
  connect_end(c, NULL, UV_ETIMEDOUT);
}

void sl_connect_start(sl_connect *c, sl_engine *E, const char *host, int port,
                      double timeout, sl_connect_cb cb) {
  int rc;
  c->E = E;
  c->cb = cb;
  c->port = port;
  c->addr_i = 0;
  c->attempts = 0;
  c->lasterr = 0;
  c->attempt = NULL;
  c->active = 1;
  c->resolving = 1;
  c->timer.cb = connect_timer_cb;
  if (timeout >= 0)
    sl_timer_start(E, &c->timer, timeout);
  c->dns.cb = connect_dns_cb;
  rc = sl_dns_resolve(E, host, &c->dns);
  if (rc == 1)
    return;
  c->t_resolved = uv_hrtime();
  if (rc < 0) {
    connect_end(c, NULL, rc);
    return;
  }
  c->resolving = 0;
  connect_next(c);
}

void sl_connect_cancel(sl_connect *c) {
  if (!c->active)
    return;
  c->active = 0;
  sl_timer_stop(c->E, &c->timer);
  sl_dns_cancel(&c->dns);
  if (c->attempt != NULL)
    sl_stream_close(c->attempt);
  c->attempt = NULL;
}
