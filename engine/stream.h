/* stream.h: a connected byte stream over a TCP handle (stream.c), the one socket layer
 * under sluice.tcp and the HTTP server (and the client's connect): read-ahead into one
 * input buffer with back-pressure, write now or copy and queue, shutdown, close, the
 * counters send timeouts need, and connect by name through the DNS cache. */
#ifndef SLUICE_STREAM_H
#define SLUICE_STREAM_H

#include "dns.h"
#include "sluice.h"

typedef struct sl_stream sl_stream;
typedef struct sl_stream_impl sl_stream_impl;

/* n > 0: n bytes arrived at data; unless the owner lent the buffer (lend), they are the
 * last n bytes of the input (in[in_off .. in_off+in_len)), which the owner takes with
 * sl_stream_consume. n < 0: UV_EOF or a libuv error; reading has stopped for good. */
typedef void (*sl_stream_read_cb)(sl_stream *s, ssize_t n, const char *data);
/* A queued write finished (status 0, or a libuv error; UV_ECANCELED when closed). */
typedef void (*sl_stream_write_cb)(sl_stream *s, int status);
/* The owner lends the buffer for the next read (a response body's own buffer, say);
 * returns 0 to use the stream's input buffer instead. */
typedef int (*sl_stream_lend_cb)(sl_stream *s, uv_buf_t *buf);

/* A stream over another protocol (TLS, stream_tls.c): what the bytes on the socket become.
 * stream.c calls these for a stream that has one; the owner still reads and writes
 * plaintext through the same calls and callbacks. */
struct sl_stream_impl {
  void (*alloc)(sl_stream *s, uv_buf_t *buf);             /* where the socket's bytes go */
  void (*read)(sl_stream *s, ssize_t n, const uv_buf_t *buf); /* they arrived (n < 0: end) */
  int (*write)(sl_stream *s, const uv_buf_t *bufs, unsigned n); /* as sl_stream_write */
  void (*resume)(sl_stream *s);  /* reading resumed: hand over what is already decoded */
  void (*free)(sl_stream *s);
  /* The stream ends cleanly (TLS: close_notify): before a shutdown (now 0: queued after
   * the writes), or before a close (now 1: only what the kernel takes at once). */
  void (*end)(sl_stream *s, int now);
};

/* Owned by its handle: freed in the close callback, after on_close, never before. */
struct sl_stream {
  uv_tcp_t tcp;                /* tcp.data points back here */
  void *data;                  /* the owner's record */
  sl_stream_read_cb on_read;
  sl_stream_write_cb on_write; /* optional */
  sl_stream_lend_cb lend;      /* optional */
  void (*on_close)(sl_stream *s);  /* optional: the owner frees its record here */
  void (*on_shutdown)(sl_stream *s, int status);  /* optional */
  void (*on_handshake)(sl_stream *s, int status); /* TLS: 0, SL_STREAM_ETLS, or libuv's */
  const sl_stream_impl *impl;  /* NULL: the bytes are the socket's */
  void *impl_data;             /* the impl's state (TLS: sl_tls) */
  /* input: bytes read and not consumed yet */
  char *in;
  size_t in_off, in_len, in_cap;
  size_t in_hwm;               /* reading pauses while in_len is at least this; 0: never */
  size_t in_min;               /* the least room handed to libuv for one read (4 KB) */
  int rerr;                    /* why reading ended: 0 while it may go on, UV_EOF, error */
  uint64_t t_raw;              /* under an impl: uv_hrtime() the socket last gave bytes,
                                  which may decode to nothing yet (part of a TLS record) */
  uint8_t reading;             /* uv_read_start is in effect */
  uint8_t want_read;           /* the owner wants bytes (reading resumes after a pause) */
  uint8_t closing;             /* sl_stream_close was called */
  uint8_t shut;                /* shutdown requested */
  /* output */
  int writes_pending;          /* uv_write requests not finished */
  uint64_t handed;             /* bytes given to the kernel or to libuv's queue, in all */
  uint64_t t_sent;             /* loop time (ms) the peer last took queued bytes */
  uv_shutdown_t sreq;
  /* connecting (sl_connect) */
  uv_connect_t creq;
  void *connecting;            /* the sl_connect waiting for creq; NULL once detached */
};

/* A stream with an initialised handle, not connected. */
sl_stream *sl_stream_new(uv_loop_t *loop);
/* Accepts a pending connection of server into a new stream (TCP_NODELAY set). NULL with
 * *err set on failure. */
sl_stream *sl_stream_accept(uv_stream_t *server, int *err);
/* Reading: start (or resume) asks for bytes; stop pauses. 0, or a libuv error. */
int sl_stream_read_start(sl_stream *s);
void sl_stream_read_stop(sl_stream *s);
/* Where the next read goes in the input buffer (compacted and grown); a null buffer when
 * out of memory. With sl_stream_input, the socket-free half of reading (fuzz harnesses). */
void sl_stream_in_buf(sl_stream *s, uv_buf_t *out);
static inline void sl_stream_input(sl_stream *s, size_t n) {
  s->in_len += n;
}
/* The owner has taken n bytes of the input; reading resumes below the high-water mark. */
void sl_stream_consume(sl_stream *s, size_t n);
/* Writes bufs: 1 when the kernel took all now, 0 when the rest was copied and queued
 * (on_write follows), or a libuv error. The order of bytes is kept. */
int sl_stream_write(sl_stream *s, const uv_buf_t *bufs, unsigned n);
/* The same on the socket itself, under any impl (TLS sends its records with it). */
int sl_stream_write_raw(sl_stream *s, const uv_buf_t *bufs, unsigned n);
/* Stops reading from the socket but keeps the owner's wish to read (back-pressure). */
void sl_stream_pause(sl_stream *s);
/* Bytes handed that the peer has taken (less libuv's queue and the kernel's, SIOCOUTQ). */
uint64_t sl_stream_taken(sl_stream *s);
/* Sends end-of-stream after the queued writes (on_shutdown follows); 0 or a libuv error. */
int sl_stream_shutdown(sl_stream *s);
/* Closes (idempotent): queued writes end with UV_ECANCELED, then on_close, then free. */
void sl_stream_close(sl_stream *s);

/* TLS (stream_tls.c): OpenSSL through memory BIOs, as an impl of the stream. A client
 * stream checks the peer's certificate and name unless verify is 0 (host: a name, sent
 * as SNI, or an IP address), and offers session (an SSL_SESSION, or NULL) for resumption;
 * a server stream (host NULL) takes the certificate from ctx. The handshake starts at once
 * (the stream must be reading) and ends with on_handshake; plaintext written before then
 * (a server's greeting) is held and sent once it is over, and counts as taken at once,
 * and plaintext that came with the handshake's end is handed over after on_handshake.
 * Ending the stream (shutdown, close) sends close_notify. Errors are SL_STREAM_ETLS with
 * the message in sl_stream_tls_error. SSL_get_app_data of the connection is the stream. */
#define SL_STREAM_ETLS (-30000)
int sl_stream_tls_start(sl_stream *s, void *ssl_ctx, const char *host, int port, int verify,
                        void *session);
const char *sl_stream_tls_error(sl_stream *s);
int sl_stream_tls_resumed(sl_stream *s);        /* the handshake resumed a session */
/* A server's context (an SSL_CTX) from PEM files: cert (a chain, leaf first) and its key;
 * TLS 1.2 and up, ALPN http/1.1, session tickets. NULL when a file is unreadable, not PEM,
 * or the key does not match the certificate, with the reason in err. The context may be
 * freed while its connections are open (they hold references). */
void *sl_stream_tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen);
void sl_stream_tls_ctx_free(void *ctx);

/* Addresses. */
int sl_stream_parse_ip(const char *host, int port, struct sockaddr_storage *ss);
int sl_stream_push_addr(lua_State *L, const struct sockaddr_storage *ss);
/* The peer's address as text and its port; 0 or a libuv error. */
int sl_stream_peer(sl_stream *s, char *ip, size_t iplen, int *port);
/* Binds h (initialised) to host:port and listens: host is an IP address, "*" (every IPv4
 * address) or a name resolved synchronously (listening is rare). *bound: the port. */
int sl_stream_listen(uv_loop_t *loop, uv_tcp_t *h, const char *host, int port,
                     int backlog, uv_connection_cb cb, int *bound);

/* Connecting by name: through the DNS cache, each address in turn, within a timeout. */
typedef struct sl_connect sl_connect;
/* The end of a connect: status 0 with the stream (the callee owns it from now: set its
 * callbacks, start reading), or a libuv error (UV_ETIMEDOUT past the timeout) and NULL. */
typedef void (*sl_connect_cb)(sl_connect *c, sl_stream *s, int status);
struct sl_connect {
  sl_engine *E;
  sl_connect_cb cb;
  void *data;                  /* the caller's */
  sl_dns_waiter dns;
  sl_timer timer;              /* the timeout, when there is one */
  sl_stream *attempt;          /* the connect in flight */
  int port, addr_i, lasterr;
  int attempts;                /* connects started (one per address tried) */
  uint8_t active;              /* started, not finished or cancelled */
  uint8_t resolving;           /* the name is not known yet: still set if it failed */
  uint64_t t_resolved;         /* uv_hrtime() once the name was answered */
};

/* Starts connecting to host (lower case; a name or an IP address) and port; timeout in
 * seconds (< 0: none). cb is called once, unless cancelled first: from the loop, or
 * before this returns when the failure is known at once. */
void sl_connect_start(sl_connect *c, sl_engine *E, const char *host, int port,
                      double timeout, sl_connect_cb cb);
/* Stops a connect (idempotent): cb is not called. */
void sl_connect_cancel(sl_connect *c);

#endif
