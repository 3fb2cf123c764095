/* http_client_tunnel.c: opening a tunnel through a proxy on a new connection to it: an
 * HTTP CONNECT (RFC 9110 9.3.6) or a SOCKS5 handshake (RFC 1928, with RFC 1929's user
 * name and password). It borrows the stream's read callback while it runs, reads the
 * proxy's answer from the stream's input buffer, and hands the stream back, empty, to
 * http_client_conn.c, which then starts TLS or sends the request. The connect timeout
 * covers it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "http_client.h"
#include "sluice.h"
#include "stream.h"

enum { T_HTTP, T_METHOD, T_AUTH, T_DNS, T_REPLY };

/* The longest CONNECT answer head read. */
#define MAX_ANSWER (16 * 1024)

struct hc_tunnel {
  hc_conn *k;
  hc_tunnel_cb done;
  sl_stream_read_cb saved_read; /* the connection's own, given back at the end */
  sl_stream_lend_cb saved_lend;
  uint8_t step;                 /* T_* */
  uint8_t resolving;            /* socks5: the target's name is being looked up locally */
  uint8_t have_addr;            /* socks5: dns.addrs[0] is the target's address */
  uint8_t method_done;          /* socks5: the server chose a method (and it passed) */
  sl_dns_waiter dns;
  char req[300];                /* a handshake message being sent (the stream copies) */
};

static void tun_read(sl_stream *st, ssize_t n, const char *data);

/* Ends the handshake: the stream goes back to the connection, then done is told. */
static void finish(hc_conn *k, const char *name, const char *fmt, ...) {
  hc_tunnel *t = k->tunnel;
  hc_tunnel_cb done = t->done;
  char msg[400];
  va_list ap;
  msg[0] = '\0';
  if (fmt != NULL) {
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
  }
  k->st->on_read = t->saved_read;
  k->st->lend = t->saved_lend;
  sl_client_tunnel_free(k);
  done(k, name, msg);
}

void sl_client_tunnel_free(hc_conn *k) {
  hc_tunnel *t = k->tunnel;
  if (t == NULL)
    return;
  if (t->resolving)
    sl_dns_cancel(&t->dns);
  free(t);
  k->tunnel = NULL;
}

static int send_bytes(hc_conn *k, const char *p, size_t n) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  int rc = sl_stream_write(k->st, &b, 1);
  if (rc < 0)
    finish(k, "EPROXY", "cannot send to proxy %s:%d: %s", k->origin->proxy->host,
           k->origin->proxy->port, uv_strerror(rc));
  return rc;
}

/* The proxy's text shown in a message: printable ASCII, at most 80 bytes. */
static void printable(char *out, size_t cap, const char *s, size_t n) {
  size_t i, j = 0;
  for (i = 0; i < n && j + 1 < cap && j < 80; i++)
    out[j++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  out[j] = '\0';
}

/* ------------------------------------------------------------------ CONNECT */

static void http_start(hc_conn *k) {
  hc_tunnel *t = k->tunnel;
  hc_origin *o = k->origin;
  hc_proxy *px = o->proxy;
  int v6 = strchr(o->host, ':') != NULL;
  int n = snprintf(t->req, sizeof t->req,
                   v6 ? "CONNECT [%s]:%d HTTP/1.1\r\nHost: [%s]:%d\r\n"
                      : "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n",
                   o->host, o->port, o->host, o->port);
  uv_buf_t b[3];
  unsigned nb = 0;
  int rc;
  b[nb++] = uv_buf_init(t->req, (unsigned)n);
  if (px->auth != NULL)
    b[nb++] = uv_buf_init(px->auth, (unsigned)px->auth_len);
  b[nb++] = uv_buf_init((char *)"\r\n", 2);
  t->step = T_HTTP;
  rc = sl_stream_write(k->st, b, nb);
  if (rc < 0)
    finish(k, "EPROXY", "cannot send to proxy %s:%d: %s", px->host, px->port,
           uv_strerror(rc));
}

/* The answer to CONNECT so far (p, n): a 2xx head opens the tunnel. */
static void http_input(hc_conn *k, const char *p, size_t n) {
  hc_proxy *px = k->origin->proxy;
  const char *end = NULL, *sp;
  size_t i, head;
  char shown[100];
  int status;
  if (memcmp(p, "HTTP/", n < 5 ? n : 5) != 0) {
    printable(shown, sizeof shown, p, n);
    finish(k, "EPROXY", "proxy %s:%d answered CONNECT with garbage: \"%s\"", px->host,
           px->port, shown);
    return;
  }
  for (i = 3; i < n && end == NULL; i++)
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
      end = p + i + 1;
  if (end == NULL) {
    if (n > MAX_ANSWER)
      finish(k, "EPROXY", "proxy %s:%d answered CONNECT with a head over %d bytes",
             px->host, px->port, MAX_ANSWER);
    return;                    /* more to come */
  }
  head = (size_t)(end - p);
  sp = memchr(p, ' ', head);
  if (sp == NULL || end - sp < 5 || sp[1] < '1' || sp[1] > '5' || sp[2] < '0' ||
      sp[2] > '9' || sp[3] < '0' || sp[3] > '9' || (sp[4] != ' ' && sp[4] != '\r')) {
    const char *eol = memchr(p, '\r', head);
    printable(shown, sizeof shown, p, eol ? (size_t)(eol - p) : head);
    finish(k, "EPROXY", "proxy %s:%d answered CONNECT with garbage: \"%s\"", px->host,
           px->port, shown);
    return;
  }
  status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
  if (status < 200 || status > 299) {
    const char *eol = memchr(sp, '\r', (size_t)(end - sp));
    printable(shown, sizeof shown, sp + 5, sp[4] == ' ' ? (size_t)(eol - sp - 5) : 0);
    finish(k, "EPROXY", "proxy answered %d%s%s (proxy %s:%d, CONNECT %s:%d)", status,
           shown[0] ? " " : "", shown, px->host, px->port, k->origin->host,
           k->origin->port);
    return;
  }
  sl_stream_consume(k->st, head);
  if (n > head) {              /* the server speaks after our ClientHello, not before */
    finish(k, "EPROXY", "proxy %s:%d sent bytes after its answer to CONNECT", px->host,
           px->port);
    return;
  }
  finish(k, NULL, NULL);
}

/* ------------------------------------------------------------------- SOCKS5 */

static const char *socks_reason(int rep) {
  static const char *const why[] = {
    "succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
    "network unreachable", "host unreachable", "connection refused by destination host",
    "TTL expired", "command not supported", "address type not supported"};
  return rep >= 0 && rep <= 8 ? why[rep] : "unknown reply code";
}

/* Sends the CONNECT request: the name (socks5h, or socks5 given an address all along) or
 * the address looked up here. */
static void socks_request(hc_conn *k) {
  hc_tunnel *t = k->tunnel;
  hc_origin *o = k->origin;
  unsigned char *q = (unsigned char *)t->req;
  size_t n = 0, hl = strlen(o->host);
  q[n++] = 5;
  q[n++] = 1;                  /* CONNECT */
  q[n++] = 0;
  if (t->have_addr && t->dns.addrs[0].sa.sa_family == AF_INET) {
    q[n++] = 1;
    memcpy(q + n, &t->dns.addrs[0].in4.sin_addr, 4);
    n += 4;
  } else if (t->have_addr) {
    q[n++] = 4;
    memcpy(q + n, &t->dns.addrs[0].in6.sin6_addr, 16);
    n += 16;
  } else {
    q[n++] = 3;
    q[n++] = (unsigned char)hl;
    memcpy(q + n, o->host, hl);
    n += hl;
  }
  q[n++] = (unsigned char)(o->port >> 8);
  q[n++] = (unsigned char)(o->port & 0xff);
  t->step = T_REPLY;
  send_bytes(k, t->req, n);
}

/* The method is chosen and passed (and, for socks5, the target's address known): on to
 * the request. */
static void socks_ready(hc_conn *k) {
  hc_tunnel *t = k->tunnel;
  if (t->resolving) {
    t->step = T_DNS;
    return;
  }
  socks_request(k);
}

static void dns_cb(sl_dns_waiter *w, int status) {
  hc_tunnel *t = SL_CONTAINER_OF(w, hc_tunnel, dns);
  hc_conn *k = t->k;
  t->resolving = 0;
  if (k->state == HC_CLOSING)
    return;                    /* conn_free frees the tunnel */
  if (status < 0 || w->naddrs == 0) {
    finish(k, status < 0 ? uv_err_name(status) : "EAI_NONAME", "cannot resolve %s: %s",
           k->origin->host, status < 0 ? uv_strerror(status) : "no address");
    return;
  }
  t->have_addr = 1;
  if (t->step == T_DNS)
    socks_request(k);
}

static void socks_start(hc_conn *k, hc_req *r) {
  hc_tunnel *t = k->tunnel;
  hc_origin *o = k->origin;
  hc_proxy *px = o->proxy;
  char greet[3] = {5, 1, px->user != NULL ? 2 : 0};
  if (strlen(o->host) > 255) {
    finish(k, "EPROXY", "SOCKS5: the host name %s is too long", o->host);
    return;
  }
  t->step = T_METHOD;
  if (uv_inet_pton(AF_INET, o->host, &t->dns.addrs[0].in4.sin_addr) == 0) {
    t->dns.addrs[0].sa.sa_family = AF_INET;     /* an address goes as one, even socks5h */
    t->have_addr = 1;
  } else if (uv_inet_pton(AF_INET6, o->host, &t->dns.addrs[0].in6.sin6_addr) == 0) {
    t->dns.addrs[0].sa.sa_family = AF_INET6;
    t->have_addr = 1;
  } else if (px->kind == HC_PX_SOCKS5) {
    int rc;
    t->dns.cb = dns_cb;
    rc = sl_dns_resolve(r->E, o->host, &t->dns);
    if (rc < 0) {
      finish(k, uv_err_name(rc), "cannot resolve %s: %s", o->host, uv_strerror(rc));
      return;
    }
    t->have_addr = rc == 0 && t->dns.naddrs > 0;
    t->resolving = rc == 1;
  }
  send_bytes(k, greet, 3);
}

/* The SOCKS server's bytes so far (p, n). */
static void socks_input(hc_conn *k, const unsigned char *p, size_t n) {
  hc_tunnel *t = k->tunnel;
  hc_proxy *px = k->origin->proxy;
  size_t need;
  if (t->step == T_METHOD) {
    if (n < 2)
      return;
    if (p[0] != 5) {
      finish(k, "EPROXY", "proxy %s:%d is not a SOCKS5 server (it answered %02x %02x)",
             px->host, px->port, p[0], p[1]);
      return;
    }
    int method = p[1];
    sl_stream_consume(k->st, 2);
    if ((method != 0 && method != 2) || (method == 2 && px->user == NULL)) {
      finish(k, "EPROXY", "SOCKS5: proxy %s:%d accepts none of the authentication methods "
             "offered (%s)", px->host, px->port,
             px->user ? "user name and password" : "none; it may want a user name");
      return;
    }
    if (method == 2) {
      unsigned char *q = (unsigned char *)t->req;
      size_t ul = strlen(px->user), pl = strlen(px->pass), m = 0;
      q[m++] = 1;
      q[m++] = (unsigned char)ul;
      memcpy(q + m, px->user, ul);
      m += ul;
      q[m++] = (unsigned char)pl;
      memcpy(q + m, px->pass, pl);
      m += pl;
      t->step = T_AUTH;
      send_bytes(k, t->req, m);
      return;
    }
    socks_ready(k);
    return;
  }
  if (t->step == T_AUTH) {
    if (n < 2)
      return;
    int ok = p[1] == 0;
    sl_stream_consume(k->st, 2);
    if (!ok) {
      finish(k, "EPROXY", "SOCKS5: proxy %s:%d refused the user name and password",
             px->host, px->port);
      return;
    }
    socks_ready(k);
    return;
  }
  if (t->step != T_REPLY) {
    finish(k, "EPROXY", "SOCKS5: proxy %s:%d sent bytes out of turn", px->host, px->port);
    return;
  }
  if (n < 5)
    return;
  if (p[0] != 5) {
    finish(k, "EPROXY", "SOCKS5: proxy %s:%d answered garbage", px->host, px->port);
    return;
  }
  if (p[1] != 0) {
    finish(k, "EPROXY", "SOCKS5: %s (proxy %s:%d, %s:%d)", socks_reason(p[1]), px->host,
           px->port, k->origin->host, k->origin->port);
    return;
  }
  need = p[3] == 1 ? 10 : p[3] == 4 ? 22 : p[3] == 3 ? (size_t)7 + p[4] : 0;
  if (need == 0) {
    finish(k, "EPROXY", "SOCKS5: proxy %s:%d answered garbage", px->host, px->port);
    return;
  }
  if (n < need)
    return;
  sl_stream_consume(k->st, need);
  if (n > need) {
    finish(k, "EPROXY", "SOCKS5: proxy %s:%d sent bytes after its reply", px->host,
           px->port);
    return;
  }
  finish(k, NULL, NULL);
}

/* --------------------------------------------------------------- reading */

static void tun_read(sl_stream *st, ssize_t n, const char *data) {
  hc_conn *k = (hc_conn *)st->data;
  hc_tunnel *t = k->tunnel;
  hc_proxy *px;
  (void)data;
  if (t == NULL || k->state == HC_CLOSING || k->origin == NULL)
    return;
  px = k->origin->proxy;
  if (n < 0) {
    finish(k, "EPROXY", "proxy %s:%d %s during the %s handshake", px->host, px->port,
           n == UV_EOF ? "closed the connection" : uv_strerror((int)n),
           t->step == T_HTTP ? "CONNECT" : "SOCKS5");
    return;
  }
  if (t->step == T_HTTP)
    http_input(k, st->in + st->in_off, st->in_len);
  else
    socks_input(k, (const unsigned char *)st->in + st->in_off, st->in_len);
}

void sl_client_tunnel_start(hc_conn *k, hc_req *r, hc_tunnel_cb done) {
  hc_proxy *px = k->origin->proxy;
  hc_tunnel *t;
  if (px == NULL || (px->kind == HC_PX_HTTP && k->origin->tls_ctx == NULL)) {
    done(k, NULL, NULL);       /* direct, or forwarded: nothing to open */
    return;
  }
  t = (hc_tunnel *)calloc(1, sizeof(*t));
  if (t == NULL) {
    done(k, "ENOMEM", "out of memory for a proxy tunnel");
    return;
  }
  t->k = k;
  t->done = done;
  t->saved_read = k->st->on_read;
  t->saved_lend = k->st->lend;
  k->tunnel = t;
  k->st->on_read = tun_read;
  k->st->lend = NULL;
  if (px->kind == HC_PX_HTTP)
    http_start(k);
  else
    socks_start(k, r);
}
