/* http_server.h: the HTTP server's internals, shared by http_server*.c. */
#ifndef SLUICE_HTTP_SERVER_H
#define SLUICE_HTTP_SERVER_H

#include <llhttp.h>

#include "sluice.h"

/* HTTP server internals (http_server.c: the Lua API, worker tasks and closing;
 * http_server_conn.c: connections, reading, writing, timeouts; http_server_parse.c:
 * parsing requests; http_server_msg.c: request tables and responses). A connection parses
 * one request at a time and hands it to a worker task of its server; pipelined requests
 * wait in the connection's input buffer, so responses go out in order. */

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
};

/* Where a header's name and value sit in the connection's head buffer. */
typedef struct hs_header {
  uint32_t name_off, name_len, val_off, val_len;
  uint32_t next;               /* joining repeats: 1 + index of the next line of this name */
  uint32_t repeat;             /* joining repeats: not the first line of its name */
} hs_header;

struct hs_conn {
  uv_tcp_t tcp;                /* its data points back here */
  hs_server *srv;
  sl_queue node;               /* in srv->conns */
  int refs;                    /* the handle until closed, plus a worker while busy */
  llhttp_t parser;
  char *in;                    /* bytes read, not parsed yet: in[in_off .. in_off+in_len) */
  size_t in_off, in_len, in_cap;
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
  /* state */
  uint8_t busy;                /* a worker has the request */
  uint8_t draining;            /* a response is still queued: the next request waits */
  uint8_t reading;             /* uv_read_start is in effect */
  uint8_t peer_done;           /* EOF or an error from the peer */
  uint8_t dead;                /* writing failed or the peer reset: nothing more to send */
  uint8_t close_after;         /* close once this response is out */
  uint8_t ending;              /* hs_conn_end began */
  uint8_t lingering;           /* half-closed: dropping what the peer still sends */
  uint8_t close_when_flushed;  /* close once writes_pending reaches 0 */
  uint8_t closing;             /* uv_close was called */
  int writes_pending;          /* uv_write requests not finished */
  uint64_t t_sent;             /* loop time (ms) the peer last took bytes (send_timeout) */
  uint64_t handed;             /* bytes given to the kernel or libuv's write queue, in all */
  uint64_t taken_seen;         /* of those, the peer had taken this many when last looked */
  sl_task *worker;             /* the worker handling the request, while busy */
  sl_task *writer;             /* a worker waiting for writes to finish (streaming) */
  uint64_t t_idle;             /* loop time (ms) it last became idle: accepted, or the last
                                * response out; keepalive_timeout counts from here */
  uint64_t t_start;            /* loop time (ms) the request or the lingering began */
  sl_buf out;                  /* the response head being built */
  char remote[48];             /* the peer's address */
  int remote_port;
  uv_shutdown_t sreq;
};

int hs_server_listen(hs_server *s, const char *host, int port, int backlog);
void hs_server_unref(hs_server *s);
void hs_check_closed(hs_server *s);             /* http_server.c: closing finished? */
void hs_dispatch(hs_conn *c);                   /* http_server.c: a request to a worker */
/* http_server_parse.c: sets up c's parser; parses what c has read (1: a complete request,
 * c is busy; 0: more is needed, or the connection takes no request now). */
void hs_conn_parser_init(hs_conn *c);
int hs_conn_parse(hs_conn *c);
/* http_server_conn.c: the socket-free half of reading, shared by the libuv callbacks and
 * the fuzz harness: where the next read goes (a null buffer when out of memory), then n
 * bytes read there (1: a complete request, c is busy, for hs_dispatch). */
void hs_conn_in_buf(hs_conn *c, uv_buf_t *out);
int hs_conn_input(hs_conn *c, size_t n);
int hs_conn_next(hs_conn *c);                   /* after a response: 1 if another is ready */
int hs_send(hs_conn *c, uv_buf_t *bufs, int n); /* 0, or a libuv error (c is dead) */
/* A short error response; unless keep (and the request allows it), the connection ends. */
void hs_send_error(hs_conn *c, int status, int keep);
void hs_conn_end(hs_conn *c);                   /* graceful close after the queued writes */
void hs_conn_close(hs_conn *c);                 /* immediate close */
void hs_conn_release(hs_conn *c);               /* drops a reference; frees at zero */
/* http_server_msg.c: requests and responses; see there for the stack contracts. */
enum { HS_NEXT, HS_STREAM, HS_FLUSH, HS_CANCELLED };
void hs_push_request(lua_State *L, hs_conn *c);
int hs_respond(lua_State *L, hs_conn *c, int st);
int hs_stream_chunk(lua_State *L, hs_conn *c, int st);
void hs_msg_register(lua_State *L);

#endif
