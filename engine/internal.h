/* internal.h: the engine's shared internals, the one header every engine source file includes.
 * It defines the engine state, the task record, timers and waiters, and the cross-file API. */
#ifndef SLUICE_INTERNAL_H
#define SLUICE_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "queue.h"

#define SLUICE_VERSION "sluice 0.1.0"

/* Metatable names, one per Lua-visible type. */
#define SL_TASK_MT      "sluice.task"
#define SL_FAILED_MT    "sluice.task.failed"   /* same methods, plus a report in __gc */
#define SL_GROUP_MT     "sluice.group"
#define SL_LAC_MT       "sluice.lac"
#define SL_SEMAPHORE_MT "sluice.semaphore"
#define SL_EVENT_MT     "sluice.event"
#define SL_QUEUE_MT     "sluice.queue"
#define SL_LINES_MT     "sluice.lines"
#define SL_CANCELLED_MT "sluice.cancelled"

/* Lua 5.4.6 renamed lua_resetthread to lua_closethread; Debian 12 ships 5.4.4. */
#if LUA_VERSION_RELEASE_NUM >= 50406
#define sl_closethread(co, from) lua_closethread((co), (from))
#else
#define sl_closethread(co, from) ((void)(from), lua_resetthread(co))
#endif

typedef struct sl_engine sl_engine;
typedef struct sl_task sl_task;
typedef struct sl_timer sl_timer;
typedef struct sl_waiter sl_waiter;

/* ---------------------------------------------------------------- timers */

/* A deadline in the engine's timer heap. Embedded in whatever owns it (a task, a group);
 * one libuv timer serves the whole heap, so a million sleepers cost one heap entry each. */
struct sl_timer {
  uint64_t when;               /* deadline on the loop clock, in nanoseconds */
  uint64_t seq;                /* arming order: equal deadlines fire first-armed first */
  uint32_t slot;               /* 1-based position in the heap; 0 while not armed */
  void (*cb)(sl_timer *tm);    /* called from the loop once the deadline has passed */
};

void sl_timer_start(sl_engine *E, sl_timer *tm, double seconds);
void sl_timer_stop(sl_engine *E, sl_timer *tm);
uint64_t sl_clock_ns(sl_engine *E);
int sl_timer_init(sl_engine *E);
void sl_timer_shutdown(sl_engine *E);

/* ---------------------------------------------------------------- tasks */

enum sl_status {
  SL_SUSPENDED = 0,            /* not started yet, queued, or blocked in a wait */
  SL_RUNNING,                  /* the task being resumed right now */
  SL_DONE,                     /* returned normally; results kept in the handle */
  SL_FAILED,                   /* raised an error; error and traceback kept */
  SL_CANCELLED                 /* ended by a cancellation error */
};

enum sl_wake {
  SL_WAKE_OK = 0,              /* what it waited for happened */
  SL_WAKE_TIMEOUT,             /* the wait's deadline passed */
  SL_WAKE_CANCEL               /* the task was cancelled while it waited */
};

/* Told when a task ends. Waiters sit in an intrusive list in the task; whoever owns the
 * node (a joining task, a group slot) allocates it, so ending a task allocates nothing. */
struct sl_waiter {
  sl_queue node;               /* in the task's waiters list while task is set */
  sl_task *task;               /* the task waited for, NULL while unlinked */
  void (*notify)(sl_waiter *w); /* runs inside the ending task's completion: never resumes */
};

/* What a blocked task is blocked on: run exactly once when a cancellation or a deadline
 * takes the task away from its wait, so the semaphore, queue or group forgets it. */
typedef void (*sl_cleanup_fn)(sl_task *t, void *data);

struct sl_task {
  lua_State *co;               /* its coroutine; NULL once ended and recycled */
  sl_engine *E;
  int ref;                     /* registry ref anchoring the handle until the task ends */
  uint8_t status;              /* enum sl_status */
  uint8_t queued;              /* sitting in the ready queue */
  uint8_t waiting;             /* suspended inside sl_task_wait */
  uint8_t wake;                /* enum sl_wake: why the last wait ended */
  uint8_t cancel_req;          /* cancellation asked for and not yet delivered */
  uint8_t observed;            /* its outcome was taken: no "never retrieved" report */
  uint8_t started;             /* its function has begun running */
  uint8_t internal;            /* spawned by a primitive (a job), not by sl.spawn */
  uint8_t has_on_end;          /* an end callback is stored in the handle */
  uint8_t handoff;             /* this wait hands over a resource: a cancellation that
                                  arrives after the wake waits for the next wait */
  uint8_t catch_cancel;        /* this wait's continuation handles cancellation itself */
  int nargs;                   /* values pushed on co for the next resume */
  int nres;                    /* results kept after SL_DONE (0, 1, or n in a table) */
  uint64_t id;                 /* creation number, for messages and sl.tasks() */
  sl_task *next_ready;         /* ready-queue link: a singly linked FIFO (loop.c), only
                                * appended to and popped, never unlinked in the middle */
  sl_queue live_node;          /* in the engine's list of every task not yet ended */
  sl_queue waiters;            /* sl_waiter.node: told when this task ends */
  sl_cleanup_fn cleanup;       /* see sl_cleanup_fn; NULL when nothing to release */
  void *cleanup_data;
  lua_KFunction k;             /* the waiting primitive's continuation */
  lua_KContext kctx;
  sl_waiter join_node;         /* used while this task waits in join() */
  sl_queue wq_node;            /* in a semaphore's, event's or queue's wait list */
  sl_timer timer;              /* sleep and wait deadlines */
};

/* t:status()'s names, indexed by enum sl_status (task_api.c). */
extern const char *const sl_status_names[];

/* The task handle's user values: the coroutine while it lives, then its outcome. */
enum { UV_CO = 1, UV_RESULT = 2, UV_TRACE = 3, UV_ONEND = 4, UV_COUNT = 4 };

/* Registry keys (by address, cheaper than by name) shared by task.c and task_api.c. */
extern char sl_task_mt_key, sl_failed_mt_key;   /* the two task metatables */
extern char sl_reraise_key;   /* the last re-raised task error and its first traceback */
extern char sl_wait_mark;     /* yielded by every wait, passed up by coroutine wrappers */

sl_task *sl_task_check(lua_State *L, int idx);
sl_task *sl_task_test(lua_State *L, int idx);           /* NULL if not a task */
sl_task *sl_task_current(lua_State *L);            /* NULL outside a task */
sl_task *sl_task_require(lua_State *L, const char *what); /* raises outside a task */
sl_task *sl_task_new(lua_State *L, int fidx, int nargs); /* pushes the handle */
void sl_task_wake(sl_task *t, int wake);
void sl_task_cancel(sl_task *t);
void sl_task_add_waiter(sl_task *t, sl_waiter *w);
void sl_task_remove_waiter(sl_waiter *w);
int sl_task_push_outcome(lua_State *L, int hidx);  /* pushes ok, values... (pcall style) */
void sl_task_run(sl_engine *E, sl_task *t);
void sl_task_push_handle(lua_State *L, sl_task *t);
void sl_task_cancel_all(sl_engine *E);
int sl_task_is_ended(const sl_task *t);

/* Blocks the running task (must be `return sl_task_wait(...)` from a lua_CFunction).
 * timeout < 0 means none. When the task is resumed, k runs with the values the waker
 * pushed; a cancellation raises the cancellation error before k is reached, and a timeout
 * calls k with SL_WAKE_TIMEOUT readable through sl_task_current(L)->wake. */
int sl_task_wait(lua_State *L, sl_task *t, sl_cleanup_fn cleanup, void *data,
                 double timeout, lua_KFunction k, lua_KContext ctx);
/* Continuation for a wait that returns nothing and raises on cancellation. */
int sl_task_k_end(lua_State *L, int status, lua_KContext ctx);
/* Pushes the cancellation error object. */
void sl_push_cancelled(lua_State *L);
int sl_is_cancelled(lua_State *L, int idx);

/* A FIFO of tasks blocked on one synchronisation object (sync.c); initialise before use. */
typedef struct sl_waitq {
  sl_queue tasks;              /* sl_task.wq_node, first come first */
} sl_waitq;

static inline void sl_waitq_init(sl_waitq *q) {
  sl_queue_init(&q->tasks);
}

static inline int sl_waitq_empty(const sl_waitq *q) {
  return sl_queue_empty(&q->tasks);
}

void sl_waitq_push(sl_waitq *q, sl_task *t);
sl_task *sl_waitq_pop(sl_waitq *q);
/* Takes t out of the wait list it is in, if any (q only names it for the reader). */
void sl_waitq_remove(sl_waitq *q, sl_task *t);

/* --------------------------------------------------------------- engine */

struct sl_engine {
  lua_State *L;                /* the main state; libuv callbacks run on it */
  uv_loop_t *loop;
  uv_check_t drain;            /* runs the ready queue after each poll */
  uv_idle_t spin;              /* active while the queue is not empty: poll won't block */
  uv_signal_t sigint;
  sl_task *ready_head, *ready_tail;
  sl_task *current;            /* the task being resumed, NULL between resumes */
  sl_task *main;               /* the script's own task: its failure ends the run */
  sl_queue live;               /* sl_task.live_node: every task not yet ended, newest first */
  size_t nlive;
  uint64_t next_id;
  int pool_ref;                /* registry table of finished coroutines to reuse */
  int npool;
  volatile sig_atomic_t interrupted; /* set by the SIGINT handler */
  int cancelled_all;           /* the first SIGINT's cancellation has been done */
  /* REPL mode (repl.c): Ctrl-C goes to on_sigint, on the loop, instead of cancelling every
   * task; a busy repl_input (the task running the current input) is interrupted by a hook
   * set from the signal handler. The process is never ended by Ctrl-C in this mode. */
  void (*on_sigint)(sl_engine *E);
  sl_task *repl_input;
  int unhandled;               /* failed tasks nobody ever looked at */
  uint64_t ended[SL_CANCELLED + 1]; /* tasks ended, by status (done, failed, cancelled) */
  int exit_code;
  /* timer heap (timer.c) */
  uv_timer_t heap_timer;
  sl_timer **heap;
  uint32_t heap_len, heap_cap;
  uint64_t heap_seq;
  uint64_t armed_for;          /* deadline the uv timer is armed for, 0 if none */
};

#define SL_ENGINE(L) (*(sl_engine **)lua_getextraspace(L))

sl_engine *sl_engine_new(lua_State *L);
void sl_engine_free(sl_engine *E);
/* fn runs first thing in sl_engine_free, before the handles are closed (at most 4). */
void sl_engine_at_free(void (*fn)(void));
void sl_engine_enqueue(sl_engine *E, sl_task *t);
int sl_engine_run(sl_engine *E, sl_task *main_task);

/* ------------------------------------------------- errors and helpers */

int sl_fail(lua_State *L, const char *name, const char *fmt, ...);
int sl_fail_uv(lua_State *L, int uverr);
int sl_traceback_msgh(lua_State *L);
int sl_handler_msgh(lua_State *L);   /* the same, leaving the cancellation error as it is */
void sl_newmeta(lua_State *L, const char *name, const luaL_Reg *methods,
                const luaL_Reg *metamethods);
double sl_check_seconds(lua_State *L, int idx, const char *what);

/* A growable byte buffer (util.c); all zero is an empty one. It grows by doubling from
 * 256 bytes. */
typedef struct sl_buf {
  char *p;
  size_t len, cap;
} sl_buf;

int sl_buf_reserve(sl_buf *b, size_t extra);       /* 0, or -1 when out of memory */
int sl_buf_add(sl_buf *b, const void *s, size_t n); /* 0, or -1 when out of memory */
void sl_buf_free(sl_buf *b);

/* FNV-1a, the hash of every table keyed by name in the engine (DNS cache, connection pool,
 * the HTML element index): sl_fnv1a hashes n bytes, sl_fnv1a_word mixes one more value in
 * whole. Start from SL_FNV_BASIS. */
#define SL_FNV_BASIS 2166136261u
static inline uint32_t sl_fnv1a_word(uint32_t h, uint32_t v) {
  return (h ^ v) * 16777619u;
}
static inline uint32_t sl_fnv1a(uint32_t h, const void *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  size_t i;
  for (i = 0; i < n; i++)
    h = sl_fnv1a_word(h, s[i]);
  return h;
}

/* Installs coroutine.resume/wrap that pass sluice waits through user coroutines (coro.c). */
void sl_coro_install(lua_State *L);

/* Module openers; each registers its functions into the table at the top of the stack. */
int luaopen_sluice_core(lua_State *L);
void sl_task_register(lua_State *L);
void sl_timer_register(lua_State *L);
void sl_group_register(lua_State *L);
void sl_lac_register(lua_State *L);
void sl_sync_register(lua_State *L);
void sl_fs_register(lua_State *L);

/* Network modules, each a C module of its own in package.preload:
 * "sluice.tcp" (tcp.c), "sluice.http.server_core" (http_server.c),
 * "sluice.http.client_core" (http_client.c); lua/sluice/http.lua joins the last two. */
int luaopen_sluice_tcp(lua_State *L);
int luaopen_sluice_http_server(lua_State *L);
int luaopen_sluice_http_client(lua_State *L);

/* The REPL's C half, "sluice.repl_core" in package.preload (repl.c). */
int luaopen_sluice_repl_core(lua_State *L);

/* "sluice.sqlite" (sqlite.c): SQLite connections, statements, and batches run on libuv's
 * thread pool. */
#define SL_SQLITE_DB_MT   "sluice.sqlite.db"
#define SL_SQLITE_STMT_MT "sluice.sqlite.stmt"
int luaopen_sluice_sqlite(lua_State *L);

/* ------------------------------------------------ network, shared parts */
/* (tcp.c, http_server.c and http_client.c add what they share below this line.) */

#define SL_TCP_SOCKET_MT   "sluice.tcp.socket"
#define SL_TCP_LISTENER_MT "sluice.tcp.listener"

/* tcp_listen.c: binds h (initialised, not yet bound) to host:port and listens. host is an IP
 * address, "*" (every IPv4 address) or a name resolved synchronously (listening is rare).
 * Stores the port actually bound in *bound. Returns 0 or a negative libuv code. */
int sl_tcp_bind_listen(uv_loop_t *loop, uv_tcp_t *h, const char *host, int port,
                       int backlog, uv_connection_cb cb, int *bound);
/* tcp.c: pushes the address as a string ("127.0.0.1", "::1") and the port; 2 values. */
int sl_tcp_push_addr(lua_State *L, const struct sockaddr_storage *ss);
/* tcp.c: parses a numeric address ("*" is 0.0.0.0); returns 0 or UV_EINVAL. */
int sl_tcp_parse_ip(const char *host, int port, struct sockaddr_storage *ss);
/* tcp.c: accepts a pending connection of server and pushes it as a socket object (reading
 * already); returns 0, or a negative libuv code with nothing pushed. */
int sl_tcp_accept(lua_State *L, uv_stream_t *server);
/* tcp.c: closes the socket object at idx (idempotent). */
void sl_tcp_close(lua_State *L, int idx);
/* tcp_listen.c: adds tcp.listen and the listener type to the table at the top. */
void sl_tcp_listen_register(lua_State *L);

/* HTTP server internals (http_server.c: the Lua API, worker tasks and closing;
 * http_server_conn.c: connections, reading, writing, timeouts; http_server_parse.c:
 * parsing requests; http_server_msg.c: request tables and responses). A connection parses
 * one request at a time and hands it to a worker task of its server; pipelined requests
 * wait in the connection's input buffer, so responses go out in order. */
#include <llhttp.h>

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

/* DNS cache (dns.c): uv_getaddrinfo behind a cache (answers kept 60 s, failures 5 s, at
 * most 1024 hosts, one lookup in flight per host). Numeric addresses resolve at once. */
#define SL_DNS_MAX_ADDRS 4

typedef union sl_addr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} sl_addr;

/* A resolver's wait for a lookup, embedded in whoever waits (an HTTP request, a socket). */
typedef struct sl_dns_waiter sl_dns_waiter;
struct sl_dns_waiter {
  sl_queue node;               /* in the lookup's list of waiters */
  void *entry;                 /* the lookup waited on; NULL when not waiting */
  void (*cb)(sl_dns_waiter *w, int status); /* the answer (status 0) or a libuv error */
  int naddrs;                  /* the answer: addresses with port 0 */
  sl_addr addrs[SL_DNS_MAX_ADDRS];
};

void sl_dns_init(lua_State *L);
int sl_dns_resolve(sl_engine *E, const char *host, sl_dns_waiter *w);
void sl_dns_cancel(sl_dns_waiter *w);
void sl_dns_stats(uint64_t *lookups, uint64_t *hits, int *cached);

/* HTTP client internals: http_client.c (the Lua API, a request's steps in its task),
 * http_client_req.c (URLs, request bytes, response tables), http_client_pool.c (origins,
 * idle connections, request records), http_client_conn.c (connect, write, read, timeouts)
 * and http_client_parse.c (llhttp's callbacks). A request (hc_req) is a C record driven by
 * libuv callbacks while its task waits once; it borrows a pooled connection (hc_conn) of
 * its origin (hc_origin: host and port) from a client (hc_client: defaults, limits, pool). */
#define SL_HTTP_CLIENT_MT  "sluice.http.client"
#define SL_HTTP_HEADERS_MT "sluice.http.headers"

typedef struct hc_client hc_client;
typedef struct hc_origin hc_origin;
typedef struct hc_conn hc_conn;
typedef struct hc_req hc_req;
typedef struct hc_tls hc_tls;


/* Timeouts (seconds, < 0 for none) and limits of one request; a client holds defaults. */
typedef struct hc_limits {
  double timeout;              /* the whole call, redirects included */
  double connect_timeout;      /* name lookup and TCP connect */
  double first_byte_timeout;   /* from the request written to the response's first byte */
  double idle_timeout;         /* between two reads of the response */
  size_t max_body;             /* decoded body bytes; SIZE_MAX for none */
  size_t max_header;           /* bytes of the head on the wire, 1xx responses included */
  size_t max_headers;          /* header fields, 1xx responses' included */
  int decompress;              /* decode gzip and deflate bodies */
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
  int max_redirects;           /* for the Lua half, which follows redirects */
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
  uint32_t hash;
  int port;
  size_t hostlen;
  char host[];                 /* lower case, NUL-terminated */
};

enum hc_conn_state { HC_CONNECTING, HC_BUSY, HC_IDLE, HC_CLOSING };

struct hc_conn {
  uv_tcp_t tcp;                /* its data points back here */
  uv_connect_t creq;
  uv_write_t wreq;
  llhttp_t parser;
  hc_client *client;
  hc_origin *origin;           /* NULL once closing */
  hc_req *req;                 /* the request using it; NULL while idle */
  sl_queue onode;              /* in its origin's idle list, while idle */
  sl_queue cnode;              /* in its client's idle list, while idle */
  uint64_t idle_since;         /* uv_now (ms) when it went idle */
  uint32_t nreq;               /* requests it has served */
  uint8_t state;               /* enum hc_conn_state */
  uint8_t writing;             /* a uv_write is in flight */
  uint8_t handshaking;         /* TLS: the handshake is not over */
  hc_tls *tls;                 /* TLS state; NULL for plain HTTP */
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
  sl_dns_waiter dns;
  sl_timer timer;              /* the current phase's deadline */
  hc_limits lim;
  /* the request */
  char host[256];              /* lower case, no brackets */
  int port;
  int addr_i;                  /* address of dns.addrs being tried */
  sl_buf wbuf;                 /* request line and headers (and a small body) */
  const char *body;            /* string body, anchored on the task's stack */
  size_t body_len;
  uint8_t is_head, idempotent, fn_body, sink, retried, waiting, in_wait_list;
  uint8_t follows;             /* redirects will be followed (max_redirects > 0) */
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
  uint8_t encoding;            /* 0 identity, 1 gzip, 2 deflate */
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
  void *z;                     /* zlib stream while decoding (z_stream *) */
  char *zout;                  /* sink + decoding: output buffer */
  uint8_t zbatch;              /* sink: rbody is being fed through the decoder */
  uint8_t zstate;              /* after a gzip member: 0x1f held back, or the rest ignored */
  size_t zdecoded;             /* sink: decoded bytes so far, against max_body */
  /* timings: loop clock (ns) */
  uint64_t t_start, t_dns, t_dns_done, t_connect, t_connected, t_first, t_last, t_done;
  uint64_t t_tls, t_tls_done;  /* the TLS handshake; 0 when there was none */
};

/* http_client_req.c */
const char *hc_url_parse(hc_req *r, const char *url, size_t len, const char **target,
                         size_t *tlen, char *why, size_t whylen);
int hc_token_valid(const char *s, size_t n);
int hc_value_valid(const char *s, size_t n);
const char *hc_build_head(lua_State *L, hc_req *r, const char *method, size_t mlen,
                          const char *target, size_t tlen, int hidx, int body_kind);
int hc_inflate_init(hc_req *r, const unsigned char *in, size_t n);
long hc_inflate(hc_req *r, char *out, size_t outlen);
void hc_inflate_end(hc_req *r);
int hc_sink_pending(const hc_req *r);
long hc_sink_piece(hc_req *r, const char **piece);
int hc_push_response(lua_State *L, hc_req *r, int urlidx, int bodyidx);
int hc_header_values(lua_State *L);
void hc_req_register(lua_State *L);
/* http_client_pool.c */
hc_req *hc_req_alloc(void);
void hc_req_free(hc_req *r);
void hc_free_cached(void);
void hc_req_start(hc_req *r);
void hc_req_abort(hc_req *r);
void hc_conn_release(hc_conn *k);
void hc_conn_close(hc_conn *k, int keep_slot);
void hc_origin_dispatch(hc_origin *o);
void hc_origin_maybe_free(hc_origin *o, hc_client *c);
void hc_client_shutdown(hc_client *c);
void hc_client_unref(hc_client *c);
/* http_client_parse.c */
void hc_parse_module_init(void);
void hc_parser_init(llhttp_t *p);
llhttp_errno_t hc_parse(hc_conn *k, hc_req *r, const char *data, size_t n);
/* http_client_conn.c. hc_conn_input and hc_conn_finish are the socket-free half of
 * reading a response (read_cb and the TLS reader call them, and so does the fuzz
 * harness); they answer with one of these. */
enum { HC_IN_MORE, HC_IN_SINK, HC_IN_DONE, HC_IN_DONE_EXTRA, HC_IN_FAIL };
#define HC_SINK_PIECE (64 * 1024) /* decoded bytes a sink gets at most at a time */
int hc_conn_input(hc_conn *k, hc_req *r, const char *data, size_t n);
int hc_conn_finish(hc_conn *k, hc_req *r);
int hc_req_take_span(hc_req *r, lua_State *co);
hc_conn *hc_conn_new(hc_client *c, hc_origin *o);
void hc_req_connect_new(hc_req *r);
void hc_req_send(hc_req *r);
void hc_req_fail(hc_req *r, const char *name, const char *fmt, ...);
int hc_req_write_body(hc_req *r, const char *data, size_t len, int last);
void hc_req_resume_reading(hc_req *r);
/* http_client_tls.c: OpenSSL through memory BIOs. The engine moves ciphertext between the
 * socket and the BIOs; these functions only turn it into plaintext and back. Failures
 * leave their message in r->err_msg (for hc_req_fail(r, "ETLS", NULL)). */
#define HC_TLS_CLOSED (-1)     /* hc_tls_read: the server sent close_notify */
#define HC_TLS_ERROR  (-2)     /* hc_tls_read: a TLS error, message in r->err_msg */
void *hc_tls_ctx(const char *ca_file, char *err, size_t errlen); /* cached; NULL: failed */
int hc_tls_start(hc_conn *k, hc_req *r);         /* 0, or -1 */
int hc_tls_handshake(hc_conn *k, hc_req *r);     /* 1 done, 0 wants more bytes, -1 failed */
int hc_tls_feed(hc_tls *t, const char *data, size_t n);  /* ciphertext read; 0 or -1 */
long hc_tls_read(hc_tls *t, hc_req *r, char *buf, size_t len); /* >0, 0 (wants more) or above */
int hc_tls_encrypt(hc_tls *t, const uv_buf_t *bufs, unsigned n); /* 0, or -1 */
int hc_tls_output(hc_tls *t, uv_buf_t *out);     /* 1: ciphertext to send in *out, 0: none */
void hc_tls_free(hc_tls *t);
void hc_tls_session_free(void *sess);
void hc_tls_cleanup(void);                       /* frees the cached contexts */

/* ------------------------------------------------ crawler: URLs (and sluice.html's entry) */
/* "sluice.url" (url.c, hosts in url_host.c, seen sets in seen.c). "sluice.html"'s own
 * declarations are in html.h; luaopen_sluice_html is here, for main.c. */
#define SL_URL_SEEN_SET_MT "sluice.url.seen_set"
#define SL_URL_MAX_HOST    255   /* bytes of a normalized host name, brackets included */

/* Why a URL was refused: code is "EINVAL" or "ENOTSUP", why a static reason, and what (when
 * not NULL) the offending scheme, quoted after the reason. */
typedef struct sl_url_err {
  const char *code, *why;
  const char *what;
  size_t what_len;
} sl_url_err;

/* Bytes the out buffer of sl_url_normalize needs for an n-byte URL and a blen-byte base. */
size_t sl_url_bound(size_t n, size_t blen);
/* Resolves s[0..n) against base (NULL for none) and normalizes it into out (which it also
 * uses as scratch space). Returns the length, or -1 with e set. */
ptrdiff_t sl_url_normalize(const char *s, size_t n, const char *base, size_t blen,
                           char *out, sl_url_err *e);
int sl_url_fail(lua_State *L, const sl_url_err *e);  /* pushes the fail triple; returns 3 */
int sl_url_einval(sl_url_err *e, const char *why);   /* sets an EINVAL; returns -1 */
int sl_url_hexval(unsigned c);                       /* a hex digit's value, or -1 */
int sl_url_escape_at(const char *s, size_t n);       /* the byte "%XX" at s stands for, or -1 */

/* The authority of an http(s) URL once checked (url_host.c). */
typedef struct sl_url_auth {
  char host[SL_URL_MAX_HOST + 1]; /* normalized and NUL-ended; IPv6 keeps its brackets */
  size_t host_len;
  int port;                    /* the explicit port (1-65535), or -1 when absent or empty */
} sl_url_auth;

/* Parses the authority s[0..n) as the WHATWG URL standard parses a special URL's host and
 * port: IPv4 addresses in any number form become dotted quads, IPv6 literals are validated
 * and written canonically, other hosts are percent-decoded and lower-cased. User info, port
 * 0 and characters outside ALPHA DIGIT - . _ ~ are refused. Returns 0, or -1 with e set. */
int sl_url_authority(const char *s, size_t n, sl_url_auth *a, sl_url_err *e);
uint64_t sl_url_hash(const char *s, size_t n);       /* url.fingerprint */
uint64_t sl_url_mix(uint64_t h);                     /* a 64-bit finalizer (fmix64) */
void sl_seen_register(lua_State *L);   /* adds url.seen_set to the table at the top */
int luaopen_sluice_url(lua_State *L);
int luaopen_sluice_html(lua_State *L);

/* Embedded Lua modules (generated at build time into build/embedded.c). */
void sl_embedded_install(lua_State *L);

#endif
