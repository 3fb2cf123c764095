/* http_client.h: the HTTP client's internals, shared by http_client*.c. */
#ifndef SLUICE_HTTP_CLIENT_H
#define SLUICE_HTTP_CLIENT_H

#include <llhttp.h>

#include "sluice.h"
#include "stream.h"

/* HTTP client internals, from the top down: http_client.c (the Lua API, a request's steps
 * in its task), http_client_pool.c (starting requests, closing the client),
 * http_client_conn.c (connections on streams: connect, write, read, timeouts, handing a
 * connection to the next request), http_client_read.c (a response's bytes to the parser),
 * http_client_parse.c (llhttp's callbacks), http_client_origin.c (records, origins,
 * idle and wait lists), with http_client_req.c (URLs, request bytes, response tables)
 * and http_client_tls.c (TLS contexts) beside them. A request (hc_req) is a C record driven by
 * libuv callbacks while its task waits once; it borrows a pooled connection (hc_conn) of
 * its origin (hc_origin: host and port) from a client (hc_client: defaults, limits, pool). */
#define SL_HTTP_CLIENT_MT  "sluice.http.client"

typedef struct hc_client hc_client;
typedef struct hc_origin hc_origin;
typedef struct hc_conn hc_conn;
typedef struct hc_req hc_req;
typedef struct hc_proxy hc_proxy;
typedef struct hc_proxies hc_proxies;
typedef struct hc_tunnel hc_tunnel;


/* Timeouts (seconds, < 0 for none) and limits of one request; a client holds defaults. */
typedef struct hc_limits {
  double timeout;              /* the whole call, redirects included */
  double connect_timeout;      /* name lookup and TCP connect */
  double first_byte_timeout;   /* from the request written to the response's first byte */
  double idle_timeout;         /* between two reads of the response */
  size_t max_body;             /* decoded body bytes; SIZE_MAX for none */
  size_t max_header;           /* bytes of the head on the wire, 1xx responses included */
  size_t max_headers;          /* header fields, 1xx responses' included */
  int decompress;              /* decode gzip, deflate, br and zstd bodies */
  int tls_verify;              /* check the server's certificate and name (https) */
  void *tls_ctx;               /* SSL_CTX of a ca_file option; NULL: the system's CAs */
} hc_limits;

/* One default header of a client, sent unless a request gives the same name. */
typedef struct hc_default_header {
  char *lname;                 /* lower-case name */
  char *line;                  /* "Name: value\r\n" */
  size_t line_len;
} hc_default_header;

struct hc_client {
  sl_engine *E;
  hc_limits lim;               /* defaults for its requests */
  int max_per_host;            /* connections open per origin, idle ones included */
  int max_idle;                /* idle connections kept, all origins together */
  double keepalive;            /* seconds an idle connection is kept; 0: no reuse */
  int max_redirects;           /* redirects a request follows (http_client.c) */
  hc_default_header *dh;       /* default headers */
  int ndh;
  int dh_host;                 /* dh index of a default Host (not the URL's), or -1 */
  sl_buf dh_block;             /* all of them, for requests that override none */
  hc_origin **buckets;         /* origins by host and port */
  size_t nbuckets, norigins;
  sl_queue idle;               /* hc_conn.cnode: every idle connection, most recently
                                * used first */
  uv_timer_t sweep;            /* closes idle connections past keepalive (unref'd) */
  int refs;                    /* Lua object + sweep timer + open connections */
  int closed;                  /* client:close() or collected: no more requests */
  int nconns, nidle;           /* connections open (not closing), idle ones */
  uint64_t nrequests, nreused, nretries, nconnects; /* counters for client:stats() */
  uint64_t ntls, nresumed;     /* TLS handshakes, and those that resumed a session */
  int ndormant;                /* unused origins kept for their TLS session */
  hc_proxies *px;              /* proxies it knows (http_client_proxy.c); NULL: none */
  struct sl_cookie_jar *jar;   /* its cookie jar (a reference), or NULL: no cookies */
};

struct hc_origin {
  hc_origin *hnext;            /* hash chain */
  sl_queue idle;               /* hc_conn.onode: idle connections, most recently used first */
  sl_queue waiting;            /* hc_req.node: requests waiting for a connection slot */
  int nconns;                  /* slots taken: connections open or being opened */
  int dispatching;             /* origin_dispatch is running (no re-entry) */
  void *tls_ctx;               /* https: the SSL_CTX its connections use; NULL: http */
  void *sess;                  /* https: the last TLS session it was given (SSL_SESSION) */
  uint8_t tls_noverify;        /* https with tls_verify = false (a pool of its own) */
  uint8_t dormant;             /* unused, kept only for sess (counted in ndormant) */
  hc_proxy *proxy;             /* reached through it (part of the key); NULL: direct */
  int max_conns;               /* slots: max_per_host, more for a proxy's shared origin */
  uint32_t hash;
  int port;
  size_t hostlen;
  char host[];                 /* lower case, NUL-terminated */
};

enum hc_conn_state { HC_CONNECTING, HC_BUSY, HC_IDLE, HC_CLOSING };

struct hc_conn {
  sl_stream *st;               /* its data points back here; NULL while connecting */
  sl_connect connect;          /* while connecting */
  llhttp_t parser;
  hc_client *client;
  hc_origin *origin;           /* NULL once closing */
  hc_req *req;                 /* the request using it; NULL while idle */
  sl_queue onode;              /* in its origin's idle list, while idle */
  sl_queue cnode;              /* in its client's idle list, while idle */
  uint64_t idle_since;         /* uv_now (ms) when it went idle */
  uint32_t nreq;               /* requests it has served */
  uint8_t state;               /* enum hc_conn_state */
  uint8_t writing;             /* bytes are queued in the stream, not sent yet */
  uint8_t handshaking;         /* TLS: the handshake is not over */
  hc_tunnel *tunnel;           /* a proxy's CONNECT or SOCKS5 handshake under way */
};

/* Where the request stands, for timeouts and messages. */
enum hc_phase { HC_PH_QUEUED, HC_PH_CONNECT, HC_PH_SEND, HC_PH_FIRST_BYTE, HC_PH_READ,
                HC_PH_DONE };

/* One parsed response header: offsets into hc_req.hbuf. */
typedef struct hc_header {
  uint32_t name, name_len, value, value_len;
} hc_header;

struct hc_req {
  sl_queue node;               /* in its origin's wait list, while in_wait_list */
  hc_req *next_free;           /* the free list */
  sl_engine *E;
  sl_task *task;
  hc_client *client;
  hc_origin *origin;
  hc_conn *conn;
  sl_timer timer;              /* the current phase's deadline */
  hc_limits lim;
  /* the request */
  char host[256];              /* lower case, no brackets */
  int port;
  sl_buf wbuf;                 /* request line and headers (and a small body) */
  const char *body;            /* string body, anchored on the task's stack */
  size_t body_len;
  uint8_t is_head, idempotent, fn_body, sink, retried, waiting, in_wait_list;
  uint8_t cross;               /* a redirect left the first origin: no credentials */
  uint8_t px_given;            /* the request's own proxy option (px_opt; NULL: false) */
  hc_proxy *px_opt;
  hc_proxy *proxy;             /* the proxy this URL goes through; NULL: direct */
  int max_redirects, hops;     /* redirects it may follow, and followed so far */
  uint64_t t_call;             /* uv_hrtime at the call's start, for its whole timeout */
  uint8_t discard;             /* a redirect's body, with a sink: not worth keeping */
  /* progress */
  uint8_t phase;               /* enum hc_phase */
  uint8_t done;                /* ended: complete, or err_name set */
  uint8_t complete;            /* the response was read in full */
  uint8_t ready;               /* fn_body: connected and the head is being sent */
  uint8_t body_sent;           /* the last body byte was handed to the socket */
  uint8_t got_byte;            /* a response byte arrived */
  uint8_t headers_done;
  uint8_t in_trailers;         /* past the last chunk: reading the trailer section */
  uint8_t direct;              /* reading straight into rbody (Content-Length known) */
  uint8_t paused;              /* sink: reading stopped until the chunk is consumed */
  uint8_t pushed;              /* the body was pushed on the task's stack as a string */
  uint8_t reused;              /* served on a connection that served others before */
  uint8_t close_after;         /* do not return the connection to the pool */
  uint8_t encoding;            /* the body's Content-Encoding to decode: HC_ENC_* */
  uint8_t tls;                 /* an https:// URL */
  uint8_t tls_resumed;         /* its TLS handshake resumed a session */
  char chunk_head[24];         /* a body function's chunk size line being written */
  const char *err_name;        /* static "ENAME" once failed */
  char err_msg[512];
  /* the response */
  int status;
  sl_buf hbuf;                 /* reason phrase, then header names and values */
  hc_header *hdr;              /* parsed headers, then trailers */
  uint32_t nhdr, hdr_cap;
  uint32_t nhead;              /* how many of hdr are headers; the rest are trailers */
  uint32_t reason, reason_len; /* offsets into hbuf */
  size_t header_bytes;         /* head bytes fed to the parser, against max_header */
  uint32_t nfields;            /* header fields seen, 1xx and trailers included */
  size_t trailer_bytes;        /* trailer section bytes fed to the parser (max_header) */
  sl_buf rbody;                /* raw body bytes (with a sink: those not given to it yet) */
  size_t body_raw;             /* raw body bytes received in all, against max_body */
  uint64_t clen;               /* Content-Length, when known */
  const char *span;            /* the body's only span so far, inside the read buffer */
  size_t span_len;
  void *z;                     /* the decoder while decoding (http_client_body.c) */
  char *zout;                  /* sink + decoding: output buffer */
  uint8_t zbatch;              /* sink: rbody is being fed through the decoder */
  uint8_t zstate;              /* after a gzip member: 0x1f held back, or the rest ignored */
  size_t zdecoded;             /* sink: decoded bytes so far, against max_body */
  /* timings: loop clock (ns) */
  uint64_t t_start, t_dns, t_dns_done, t_connect, t_connected, t_first, t_last, t_done;
  uint64_t t_tls, t_tls_done;  /* the TLS handshake; 0 when there was none */
};

/* http_client_opts.c */
int sl_client_misuse(lua_State *L, const char *fmt, ...);
void sl_client_opt_seconds(lua_State *L, int idx, const char *name, double *v);
int sl_client_opt_int(lua_State *L, int idx, const char *name, int def, int min);
int sl_client_read_limits(lua_State *L, int idx, hc_limits *lim);
void sl_client_read_client_opts(lua_State *L, hc_client *c, int idx);
/* http_client_req.c */
const char *sl_client_url_parse(hc_req *r, const char *url, size_t len, const char **target,
                                size_t *tlen, char *why, size_t whylen);
const char *sl_client_build_head(lua_State *L, hc_req *r, const char *method, size_t mlen,
                                 const char *target, size_t tlen, int hidx, int body_kind);
int sl_client_push_response(lua_State *L, hc_req *r, int urlidx, int bodyidx);
int sl_client_header_values(lua_State *L);
void sl_client_req_register(lua_State *L);
/* http_client_cookie.c: only for a client with a jar */
/* The index of the headers to send: hidx, or a copy pushed with the jar's cookies added
 * to the user's Cookie. */
int sl_client_cookie_headers(lua_State *L, hc_req *r, int hidx, const char *target,
                             size_t tlen);
void sl_client_cookie_store(hc_req *r, const char *url, size_t ulen); /* its Set-Cookies */
/* http_client_body.c */
int sl_client_inflate_init(hc_req *r, const unsigned char *in, size_t n);
long sl_client_inflate(hc_req *r, char *out, size_t outlen);
void sl_client_inflate_end(hc_req *r);
int sl_client_sink_pending(const hc_req *r);
long sl_client_sink_piece(hc_req *r, const char **piece);
/* Pushes r's whole decoded body, or the fail triple (EPROTO, EFBIG); returns 1 or 3. */
int sl_client_push_decoded(lua_State *L, hc_req *r);
/* http_client_origin.c: records and lists (no I/O) */
hc_req *sl_client_req_alloc(void);
void sl_client_req_free(hc_req *r);
void sl_client_free_cached(void);
void sl_client_req_leave_wait_list(hc_req *r);
hc_req *sl_client_origin_first_waiting(hc_origin *o);
hc_conn *sl_client_idle_oldest(hc_client *c);
hc_conn *sl_client_origin_idle_newest(hc_origin *o);
void sl_client_conn_idle_unlink(hc_conn *k);
hc_origin *sl_client_origin_get(hc_client *c, const char *host, int port, void *tls_ctx,
                                int noverify, hc_proxy *proxy);
void sl_client_origin_free(hc_origin *o);
void sl_client_origin_maybe_free(hc_origin *o, hc_client *c);
void sl_client_unref(hc_client *c);
/* http_client_pool.c: starting requests, closing the client */
void sl_client_req_start(hc_req *r);
void sl_client_shutdown(hc_client *c);
/* http_client_parse.c */
void sl_client_parse_module_init(void);
void sl_client_parser_init(llhttp_t *p);
const char *sl_client_redirect_location(const hc_req *r, size_t *len);
llhttp_errno_t sl_client_parse(hc_conn *k, hc_req *r, const char *data, size_t n);
/* http_client_read.c: the socket-free half of reading a response (the connection's read
 * callback calls them, and so does the fuzz harness); they answer with one of these. */
enum { HC_IN_MORE, HC_IN_SINK, HC_IN_DONE, HC_IN_DONE_EXTRA, HC_IN_FAIL };
/* Content-Encodings the client decodes (hc_req.encoding), and what it accepts. */
enum { HC_ENC_IDENTITY, HC_ENC_GZIP, HC_ENC_DEFLATE, HC_ENC_BR, HC_ENC_ZSTD };
#define HC_ACCEPT_ENCODING "gzip, deflate, br, zstd"
#define HC_SINK_PIECE (64 * 1024) /* decoded bytes a sink gets at most at a time */
int sl_client_conn_input(hc_conn *k, hc_req *r, const char *data, size_t n);
/* The connections' lend callback: where the stream puts what it reads (plaintext, over
 * TLS): straight into the body buffer when the rest of the response is a body of known
 * size (the body then costs one copy less), else into a read buffer they share. */
int sl_client_conn_lend(sl_stream *st, uv_buf_t *buf);
int sl_client_conn_finish(hc_conn *k, hc_req *r);
int sl_client_req_take_span(hc_req *r, lua_State *co);
/* http_client_conn.c: connections, and handing them to requests */
void sl_client_req_abort(hc_req *r);
void sl_client_conn_release(hc_conn *k);
void sl_client_origin_dispatch(hc_origin *o);
hc_conn *sl_client_conn_new(hc_client *c, hc_origin *o);
void sl_client_conn_close(hc_conn *k, int keep_slot);
void sl_client_req_connect_new(hc_req *r);
void sl_client_req_send(hc_req *r);
void sl_client_req_fail(hc_req *r, const char *name, const char *fmt, ...);
int sl_client_req_write_body(hc_req *r, const char *data, size_t len, int last);
void sl_client_req_resume_reading(hc_req *r);
/* http_client_proxy.c: proxies (http://, socks5://, socks5h://), from the client's and a
 * request's proxy options and the environment (http_proxy, ..., no_proxy). */
enum { HC_PX_HTTP = 1, HC_PX_SOCKS5, HC_PX_SOCKS5H };
#define HC_PROXY_STALE 4
struct hc_proxy {
  hc_proxy *next;              /* the client's list (hc_proxies.all) */
  uint8_t kind;                /* HC_PX_* */
  int port;
  uint8_t stale;               /* reused connections it had closed (tinyproxy closes each
                                * one after its response): from HC_PROXY_STALE on, its
                                * connections are no longer kept */
  char *url;                   /* as given: the key a request's option is found by */
  char *auth;                  /* http: "Proxy-Authorization: Basic ...\r\n", or NULL */
  size_t auth_len;
  char *user, *pass;           /* socks5: RFC 1929 credentials, or NULL */
  char host[];                 /* lower case, IPv6 without brackets */
};
/* Reads the client's proxy and no_proxy options (idx: its table, or 0) and the
 * environment into c->px; raises on a bad one. */
void sl_client_proxy_client_opts(lua_State *L, hc_client *c, int idx);
/* A request's proxy option (the value at the top, not nil): its proxy, NULL for false. */
hc_proxy *sl_client_proxy_req_opt(lua_State *L, hc_client *c);
/* The proxy r's URL (r->host, r->port, r->tls parsed) goes through; NULL: direct. */
hc_proxy *sl_client_proxy_pick(hc_client *c, const hc_req *r);
/* An http:// request through an HTTP proxy: its head in absolute form, with the proxy's
 * credentials. 0, or -1 out of memory. */
int sl_client_proxy_head(hc_req *r);
/* A failure before the response's head through a forwarding proxy (a reset, garbage) is
 * the proxy's: EPROXY, the message naming it. Returns the name to fail r with. */
const char *sl_client_proxy_blame(hc_req *r, const char *name);
void sl_client_proxy_free_all(hc_client *c);
/* http_client_tunnel.c: a CONNECT or SOCKS5 handshake on a new connection to a proxy (its
 * stream reading), when its origin is reached through one: done is called once, at once
 * when there is no tunnel to open: name NULL when the connection is ready, else the fail
 * name (EPROXY, or a name lookup's) and its message. */
typedef void (*hc_tunnel_cb)(hc_conn *k, const char *name, const char *msg);
void sl_client_tunnel_start(hc_conn *k, hc_req *r, hc_tunnel_cb done);
void sl_client_tunnel_free(hc_conn *k);
/* http_client_tls.c: the client's TLS contexts (one per CA source) and sessions; the
 * connections' TLS is their stream's (stream_tls.c). */
/* A context for ca_file (NULL: the system's), cached; NULL when it failed (err says why). */
void *sl_client_tls_ctx(const char *ca_file, char *err, size_t errlen);
void sl_client_tls_session_free(void *sess);
void sl_client_tls_cleanup(void);                       /* frees the cached contexts */

#endif
