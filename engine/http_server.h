/* http_server.h: the HTTP server's internals, shared by http_server*.c. */
#ifndef SLUICE_HTTP_SERVER_H
#define SLUICE_HTTP_SERVER_H

#include <llhttp.h>

#include "sluice.h"
#include "stream.h"

/* HTTP server internals, from the top down (a file calls only those below it, and hears
 * back from them through return values and the callbacks in hs_server): http_server.c
 * (the Lua API, worker tasks and closing), http_server_msg.c (request tables and
 * responses), http_server_conn.c (connections on a stream: reading, writing, timeouts),
 * http_server_parse.c (parsing requests). A connection parses one request at a time and
 * hands it to a worker task of its server; pipelined requests wait in the stream's input
 * buffer, so responses go out in order. */

#define SL_HTTP_SERVER_MT "sluice.http.server"

typedef struct hs_server hs_server;
typedef struct hs_conn hs_conn;

struct hs_server {
  uv_tcp_t listener;           /* its data points back here */
  uv_timer_t sweep;            /* closes idle, stalled and lingering connections */
  uv_timer_t deadline;         /* while closing: drops what is left when it fires */
  sl_engine *E;
  int refs;                    /* Lua object, listener, both timers, each connection */
  int self_ref;                /* anchors the Lua object until closing has finished */
  int port;                    /* the port bound */
  void *tls_ctx;               /* a server SSL_CTX (stream_tls.c), or NULL: plain HTTP */
  uint8_t closing;             /* close() began: no new connections or requests */
  uint8_t finished;            /* closing is over: every worker and connection gone */
  uint8_t lua_gone;            /* the Lua object was collected: no more Lua calls */
  size_t max_header, max_body; /* limits answered with 431 and 413 */
  int max_headers;             /* header lines (trailers included) per request: 431 */
  uint64_t keepalive_ms, request_ms;  /* idle keep-alive; receiving one request */
  uint64_t send_ms;            /* how long a peer may take no bytes while some are queued */
  uint64_t deadline_at;        /* loop time (ms) the deadline timer fires; 0: not armed */
  sl_queue conns;              /* hs_conn.node: every connection not freed: the open ones
                                * and closed ones whose worker still runs */
  int nconns;                  /* open connections */
  sl_waitq idle;               /* worker tasks waiting for a request */
  int nidle;                   /* how many */
  sl_waitq closers;            /* tasks waiting in server:close() */
  int nworkers;                /* worker tasks alive */
  sl_task *guard;              /* the server's own task while it waits (see guard_main) */
  uint64_t naccepted, nrequests;
  /* How connections report up (set by http_server.c): */
  void (*dispatch)(hs_conn *c);        /* a request is ready for a worker */
  void (*conn_closed)(hs_server *s);   /* a connection closed (nconns counted down) */
  void (*unref)(hs_server *s);         /* a connection record was freed */
};

/* Where a header's name and value sit in the connection's head buffer. */
typedef struct hs_header {
  uint32_t name_off, name_len, val_off, val_len;
  uint32_t next;               /* joining repeats: 1 + index of the next line of this name */
  uint32_t repeat;             /* joining repeats: not the first line of its name */
} hs_header;

struct hs_conn {
  sl_stream *st;               /* its data points back here; NULL once closed */
  hs_server *srv;
  sl_queue node;               /* in srv->conns */
  int refs;                    /* the handle until closed, plus a worker while busy */
  llhttp_t parser;             /* parses st's input, one request at a time */
  /* the request being received */
  sl_buf head;                 /* target, then header names and values */
  uint32_t url_len;
  hs_header *hdr;              /* its header lines, then its trailer lines (grown, kept) */
  int nhdr, hdr_cap;
  int nhead;                   /* how many of hdr are headers; the rest are trailers */
  sl_buf body;
  int err_status;              /* status to answer a request refused by a callback */
  /* The head's size on the wire: the bytes of the head (then of the trailers) parsed in
   * earlier llhttp_execute calls, plus those from head_mark in the current one. */
  size_t head_wire;
  size_t head_seen;            /* the count at the end of the last span */
  const char *head_mark;       /* where counting resumed in the current input; NULL: not */
  uint8_t in_head;             /* inside the head or the trailers (counted, see above) */
  uint8_t head_done;           /* the headers are complete: lines now are trailers */
  uint8_t nhost;               /* Host header lines seen (stops at 2) */
  uint8_t in_field, in_value;  /* inside a header name or value (spans may be split) */
  uint8_t in_message;          /* bytes of a request have arrived, it is not complete */
  uint8_t keepalive;           /* the complete request allows another after it */
  uint8_t send_continue;       /* "Expect: 100-continue" seen: the conn answers it */
  /* state */
  uint8_t busy;                /* a worker has the request */
  uint8_t draining;            /* a response is still queued: the next request waits */
  uint8_t peer_done;           /* EOF or an error from the peer */
  uint8_t dead;                /* writing failed or the peer reset: nothing more to send */
  uint8_t close_after;         /* close once this response is out */
  uint8_t ending;              /* sl_server_conn_end began */
  uint8_t lingering;           /* half-closed: dropping what the peer still sends */
  uint8_t close_when_flushed;  /* close once writes_pending reaches 0 */
  uint8_t closing;             /* uv_close was called */
  uint64_t taken_seen;         /* of those, the peer had taken this many when last looked */
  sl_task *worker;             /* the worker handling the request, while busy */
  sl_task *writer;             /* a worker waiting for writes to finish (streaming) */
  uint64_t t_idle;             /* loop time (ms) it last became idle: accepted, or the last
                                * response out; keepalive_timeout counts from here */
  uint64_t t_start;            /* loop time (ms) the request or the lingering began */
  sl_buf out;                  /* the response head being built */
  char remote[48];             /* the peer's address */
  int remote_port;
};

/* Response bytes queued in libuv, not taken by the kernel yet. */
static inline int hs_conn_pending(const hs_conn *c) {
  return c->st != NULL ? c->st->writes_pending : 0;
}

void sl_server_unref(hs_server *s);             /* http_server.c */
/* http_server_parse.c: sets up c's parser; parses what c's stream holds, up to the end of
 * the next request. */
enum { HS_PARSE_MORE, HS_PARSE_REQUEST, HS_PARSE_REFUSE, HS_PARSE_END };
void sl_server_conn_parser_init(hs_conn *c);
int sl_server_conn_parse(hs_conn *c);
/* http_server_conn.c */
int sl_server_listen(hs_server *s, const char *host, int port, int backlog);
/* A connection record of s on st (accepted; the fuzz harness's has no peer). */
hs_conn *sl_server_conn_new(hs_server *s, sl_stream *st);
/* The socket-free half of reading, shared by the stream's callback and the fuzz harness:
 * bytes were added to c's input (1: a complete request, c is busy, for s->dispatch). */
int sl_server_conn_input(hs_conn *c);
/* After a response: 1 if another request is ready. */
int sl_server_conn_next(hs_conn *c);
int sl_server_send(hs_conn *c, uv_buf_t *bufs, int n); /* 0, or a libuv error (c is dead) */
/* A short error response; unless keep (and the request allows it), the connection ends. */
void sl_server_send_error(hs_conn *c, int status, int keep);
void sl_server_conn_end(hs_conn *c);    /* graceful close after the queued writes */
void sl_server_conn_close(hs_conn *c);  /* immediate close */
void sl_server_conn_release(hs_conn *c);               /* drops a reference; frees at zero */
/* http_server_msg.c: requests and responses; see there for the stack contracts. */
enum { HS_NEXT, HS_STREAM, HS_FLUSH, HS_CANCELLED };
void sl_server_push_request(lua_State *L, hs_conn *c);
int sl_server_respond(lua_State *L, hs_conn *c, int st);
int sl_server_stream_chunk(lua_State *L, hs_conn *c, int st);
void sl_server_msg_register(lua_State *L);

#endif
