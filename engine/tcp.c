/* tcp.c: require "sluice.tcp"'s sockets: sock:read waits for bytes, sock:write waits until
 * the kernel has taken the data, tcp.connect connects by name. The bytes go through a
 * stream (stream.c); this file adds the tasks that wait on it. Listeners and the module's
 * table are in tcp_listen.c. */
#include <stdlib.h>
#include <string.h>

#include "sluice.h"
#include "stream.h"
#include "tcp.h"

#define READ_HWM   (64 * 1024)   /* above this many unread bytes, stop reading the kernel */
#define READ_CHUNK (16 * 1024)   /* the least room handed to libuv for one read */

/* A connected socket: the stream and the tasks waiting on it. Freed when its stream has
 * closed (sock_closed). The Lua object is a sock_box pointing here until it is closed. */
typedef struct tsock {
  sl_stream *st;               /* st->data points back here */
  int nwait;                   /* tasks waiting on it; the handle keeps the loop alive
                                  (uv_ref) only while this is positive */
  sl_task *reader;             /* the task blocked in read, if any */
  sl_queue writers;            /* wwait.node: tasks waiting for their writes, in order */
  uint64_t wqueued, wdone;     /* writes queued in the stream, and finished */
} tsock;

/* A task waiting until the kernel has taken its write: the seq-th queued write. */
typedef struct wwait {
  sl_queue node;
  tsock *s;
  sl_task *t;
  uint64_t seq;
} wwait;

/* The Lua object of a socket (metatable SL_TCP_SOCKET_MT). */
typedef struct sock_box {
  tsock *s;                    /* NULL once closed */
  double timeout;              /* seconds allowed for each read or write; < 0: none */
} sock_box;

static sock_box *check_sock(lua_State *L, int idx) {
  return (sock_box *)luaL_checkudata(L, idx, SL_TCP_SOCKET_MT);
}

/* The socket at idx, raising if it was closed (a use after close is misuse). */
static tsock *check_open(lua_State *L, int idx) {
  sock_box *b = check_sock(L, idx);
  if (b->s == NULL)
    luaL_error(L, "attempt to use a closed socket");
  return b->s;
}

/* ---------------------------------------------------------------- helpers */

/* While a task waits on the socket it keeps the loop alive; an idle socket does not, so a
 * forgotten connection never keeps the process running. */
static void wait_begin(tsock *s) {
  if (s->nwait++ == 0)
    uv_ref((uv_handle_t *)&s->st->tcp);
}

static void wait_end(tsock *s) {
  if (--s->nwait == 0)
    uv_unref((uv_handle_t *)&s->st->tcp);
}

/* ------------------------------------------------------------ socket life */

static void sock_on_read(sl_stream *st, ssize_t n, const char *data);
static void sock_on_write(sl_stream *st, int status);

static void sock_closed(sl_stream *st) {
  free(st->data);
}

/* Makes a socket of a connected stream, reading ahead already; NULL with the stream closed
 * when out of memory or reading cannot start. */
static tsock *sock_new(sl_stream *st, int *err) {
  tsock *s = (tsock *)calloc(1, sizeof *s);
  *err = UV_ENOMEM;
  if (s != NULL) {
    s->st = st;
    sl_queue_init(&s->writers);
    st->data = s;
    st->on_close = sock_closed;
    st->on_read = sock_on_read;
    st->on_write = sock_on_write;
    st->in_min = READ_CHUNK;
    st->in_hwm = READ_HWM;
    uv_unref((uv_handle_t *)&st->tcp);
    *err = sl_stream_read_start(st);
    if (*err == 0)
      return s;
  }
  sl_stream_close(st);         /* frees s, if made */
  return NULL;
}

/* Closes a socket: every task waiting on it is woken (and finds it closed), writes in
 * flight are cancelled by libuv, and the memory goes once the stream has closed. */
static void sock_close(tsock *s) {
  sl_task *t;
  if ((t = s->reader) != NULL) {
    s->reader = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
  while (!sl_queue_empty(&s->writers)) {
    wwait *w = SL_QUEUE_DATA(sl_queue_head(&s->writers), wwait, node);
    sl_queue_remove(&w->node);
    sl_task_wake(w->t, SL_WAKE_OK);   /* no status pushed: the write was cut short */
    free(w);
  }
  sl_stream_close(s->st);
}

/* Pushes a new socket object around s (which may be NULL: the object is then closed). */
static sock_box *push_sock(lua_State *L, tsock *s, double timeout) {
  sock_box *b = (sock_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->s = NULL;
  b->timeout = timeout;
  luaL_setmetatable(L, SL_TCP_SOCKET_MT);
  b->s = s;
  return b;
}

/* ---------------------------------------------------------------- reading */

static void sock_on_read(sl_stream *st, ssize_t n, const char *data) {
  tsock *s = (tsock *)st->data;
  sl_task *t = s->reader;
  (void)n;
  (void)data;
  if (t != NULL) {
    s->reader = NULL;
    wait_end(s);
    sl_task_wake(t, SL_WAKE_OK);
  }
}

static void read_cleanup(sl_task *t, void *data) {
  tsock *s = (tsock *)data;
  (void)t;
  s->reader = NULL;
  wait_end(s);
}

static int read_k(lua_State *L, int status, lua_KContext ctx);

/* Returns up to max buffered bytes, EOF, the error that ended reading, or waits.
 * Expects the socket at 1. */
static int read_step(lua_State *L, sock_box *b, lua_Integer max) {
  tsock *s = b->s;
  sl_stream *st;
  sl_task *me;
  if (s == NULL)
    return sl_fail(L, "ECANCELED", "the socket was closed while reading");
  st = s->st;
  if (st->in_len > 0) {
    size_t n = (size_t)max < st->in_len ? (size_t)max : st->in_len;
    lua_pushlstring(L, st->in + st->in_off, n);
    sl_stream_consume(st, n);  /* reading resumes below READ_HWM */
    return 1;
  }
  if (st->rerr == UV_EOF)
    return sl_fail(L, "EOF", "end of stream");
  if (st->rerr == SL_STREAM_ETLS)
    return sl_fail(L, "ETLS", "%s", sl_stream_tls_error(st));
  if (st->rerr != 0)
    return sl_fail_uv(L, st->rerr);
  if (s->reader != NULL)
    return luaL_error(L, "another task is already reading this socket");
  me = sl_task_require(L, "sock:read");
  if (sl_stream_read_start(st) != 0)
    return sl_fail_uv(L, st->rerr);
  s->reader = me;
  wait_begin(s);
  lua_settop(L, 1);
  return sl_task_wait(L, me, read_cleanup, s, b->timeout, read_k, (lua_KContext)max);
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  if (sl_task_current(L)->wake == SL_WAKE_TIMEOUT)
    return sl_fail(L, "ETIMEDOUT", "read timed out");
  return read_step(L, (sock_box *)lua_touserdata(L, 1), (lua_Integer)ctx);
}

/** sock:read([max]) -> the bytes available (at most max), waiting for some if none;
 * nil, "EOF: end of stream", "EOF" at the end; the fail triple on error or timeout */
static int sock_read(lua_State *L) {
  sock_box *b = check_sock(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, LUA_MAXINTEGER);
  luaL_argcheck(L, max > 0, 2, "max must be positive");
  check_open(L, 1);
  return read_step(L, b, max);
}

/* ---------------------------------------------------------------- writing */

/* A queued write finished: libuv finishes them in order, so it is the oldest one, and the
 * tasks waiting for it or an earlier one are told. */
static void sock_on_write(sl_stream *st, int status) {
  tsock *s = (tsock *)st->data;
  /* Over TLS the stream writes records of its own (a handshake's, close_notify): those
   * finishing after every write of ours are not ours to count. */
  if (s->wdone < s->wqueued)
    s->wdone++;
  while (!sl_queue_empty(&s->writers)) {
    wwait *w = SL_QUEUE_DATA(sl_queue_head(&s->writers), wwait, node);
    if (w->seq > s->wdone)
      break;
    sl_queue_remove(&w->node);
    lua_checkstack(w->t->co, 1);
    lua_pushinteger(w->t->co, status);
    w->t->nargs = 1;
    wait_end(s);
    sl_task_wake(w->t, SL_WAKE_OK);
    free(w);
  }
}

static void write_cleanup(sl_task *t, void *data) {
  wwait *w = (wwait *)data;
  (void)t;
  sl_queue_remove(&w->node);   /* the bytes are still sent */
  wait_end(w->s);
  free(w);
}

/* Stack: socket, data, and the status sock_on_write pushed (none if the socket was
 * closed). */
static int write_k(lua_State *L, int status, lua_KContext ctx) {
  int rc;
  (void)status;
  (void)ctx;
  if (sl_task_current(L)->wake == SL_WAKE_TIMEOUT)
    return sl_fail(L, "ETIMEDOUT", "write timed out");
  if (lua_gettop(L) < 3)
    return sl_fail(L, "ECANCELED", "the socket was closed while writing");
  rc = (int)lua_tointeger(L, 3);
  if (rc < 0)
    return sl_fail_uv(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/** sock:write(data) -> true once the kernel has taken every byte (back-pressure), or the
 * fail triple (EPIPE, ECONNRESET, ETIMEDOUT, ...) */
static int sock_write(lua_State *L) {
  sock_box *b = check_sock(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  tsock *s = check_open(L, 1);
  sl_task *me;
  wwait *w;
  uv_buf_t buf;
  int rc;
  if (len == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (s->st->rerr == SL_STREAM_ETLS)
    return sl_fail(L, "ETLS", "%s", sl_stream_tls_error(s->st));
  me = sl_task_require(L, "sock:write");
  w = (wwait *)malloc(sizeof *w);
  if (w == NULL)
    return luaL_error(L, "sock:write: out of memory");
  buf = uv_buf_init((char *)data, (unsigned)len);
  rc = sl_stream_write(s->st, &buf, 1);
  if (rc != 0) {
    free(w);
    if (rc < 0)
      return sl_fail_uv(L, rc);
    lua_pushboolean(L, 1);
    return 1;
  }
  w->s = s;
  w->t = me;
  w->seq = ++s->wqueued;
  sl_queue_insert_tail(&s->writers, &w->node);
  wait_begin(s);
  lua_settop(L, 2);
  return sl_task_wait(L, me, write_cleanup, w, b->timeout, write_k, 0);
}

/* ------------------------------------------------------------- the others */

/* A failed TLS handshake ends reading as an error would: the reader gets ETLS. */
static void sock_on_handshake(sl_stream *st, int status) {
  if (status >= 0)
    return;
  sl_stream_pause(st);
  if (st->rerr == 0)
    st->rerr = status;
  sock_on_read(st, status, NULL);
}

int sl_tcp_accept(lua_State *L, uv_stream_t *server, void *tls_ctx) {
  int rc;
  sl_stream *st = sl_stream_accept(server, &rc);
  tsock *s;
  if (st == NULL)
    return rc;
  s = sock_new(st, &rc);
  if (s == NULL)
    return rc;
  if (tls_ctx != NULL) {
    st->on_handshake = sock_on_handshake;
    if (sl_stream_tls_start(st, tls_ctx, NULL, 0, 0, NULL) < 0) {
      sock_close(s);
      return UV_ENOMEM;
    }
  }
  push_sock(L, s, -1);
  return 0;
}

void sl_tcp_close(lua_State *L, int idx) {
  sock_box *b = check_sock(L, idx);
  if (b->s != NULL) {
    tsock *s = b->s;
    b->s = NULL;
    sock_close(s);
  }
}

/** sock:close() -- idempotent; also __close and __gc */
static int sock_close_l(lua_State *L) {
  sl_tcp_close(L, 1);
  return 0;
}

/** sock:shutdown() -> true: sends end-of-stream after the queued writes; reading goes on */
static int sock_shutdown(lua_State *L) {
  tsock *s = check_open(L, 1);
  int rc = sl_stream_shutdown(s->st);
  if (rc < 0)
    return sl_fail_uv(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/** sock:settimeout([seconds]) -- limit for each later read or write; nil: none */
static int sock_settimeout(lua_State *L) {
  sock_box *b = check_sock(L, 1);
  b->timeout = lua_isnoneornil(L, 2) ? -1 : sl_check_seconds(L, 2, "timeout");
  return 0;
}

/** sock:peer() -> address, port of the other end */
static int sock_peer(lua_State *L) {
  tsock *s = check_open(L, 1);
  struct sockaddr_storage ss;
  int len = (int)sizeof ss, rc;
  rc = uv_tcp_getpeername(&s->st->tcp, (struct sockaddr *)&ss, &len);
  if (rc < 0)
    return sl_fail_uv(L, rc);
  return sl_stream_push_addr(L, &ss);
}

/** sock:is_closed() -> boolean */
static int sock_is_closed(lua_State *L) {
  lua_pushboolean(L, check_sock(L, 1)->s == NULL);
  return 1;
}

static int sock_tostring(lua_State *L) {
  sock_box *b = check_sock(L, 1);
  if (b->s == NULL)
    lua_pushliteral(L, "tcp socket (closed)");
  else
    lua_pushfstring(L, "tcp socket (%p)", (void *)b->s);
  return 1;
}

/* ---------------------------------------------------------------- connect */

/* State of one tcp.connect call, kept in a full userdata at stack index 4 so that an
 * error or a cancellation anywhere leaves nothing to free by hand (its __gc does it). */
typedef struct connecting {
  sl_connect c;
  sl_task *waiter;             /* the task, while it waits */
  sl_stream *st;               /* the connected stream, until a socket owns it */
  int status;
  uint8_t done;
  uint8_t timed_out_resolving; /* the timeout came while the name was being looked up */
} connecting;

/* Registry key of the metatable of connecting records (internal: not a "sluice." name). */
static char connecting_mt_key;

/* Lets go of what a connect holds: the attempt, or the stream it made (idempotent). */
static void connecting_drop(connecting *c) {
  sl_connect_cancel(&c->c);
  if (c->st != NULL) {
    sl_stream_close(c->st);
    c->st = NULL;
  }
}

static int connecting_gc(lua_State *L) {
  connecting_drop((connecting *)lua_touserdata(L, 1));
  return 0;
}

static void connect_done(sl_connect *cn, sl_stream *st, int status) {
  connecting *c = SL_CONTAINER_OF(cn, connecting, c);
  sl_task *t = c->waiter;
  c->done = 1;
  c->st = st;
  c->status = status;
  c->timed_out_resolving = status == UV_ETIMEDOUT && cn->resolving;
  if (t != NULL) {
    c->waiter = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
}

/* A connect given up (the task was cancelled): the record's __gc would do it later. */
static void connect_cleanup(sl_task *t, void *data) {
  connecting *c = (connecting *)data;
  (void)t;
  c->waiter = NULL;
  sl_connect_cancel(&c->c);
}

/* Stack: host, port, opts, connecting. ctx: 1 after a wait, 0 when the connect ended at
 * once. A cancellation comes here too (catch_cancel), even one that came after the connect
 * had succeeded and woken the task: the stream made is closed now, not at the record's
 * collection, then the cancellation goes on up. */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  connecting *c = (connecting *)lua_touserdata(L, 4);
  double timeout = lua_tonumber(L, 3);
  sl_stream *st = c->st;
  tsock *s;
  int rc;
  (void)status;
  if (ctx && sl_task_current(L)->wake == SL_WAKE_CANCEL) {
    connecting_drop(c);
    sl_push_cancelled(L);
    return lua_error(L);
  }
  if (c->status == UV_ETIMEDOUT) {
    if (c->timed_out_resolving)
      return sl_fail(L, "ETIMEDOUT", "resolving %s timed out", lua_tostring(L, 1));
    return sl_fail(L, "ETIMEDOUT", "connecting to %s:%d timed out", lua_tostring(L, 1),
                   (int)lua_tointeger(L, 2));
  }
  if (c->status < 0)
    return sl_fail_uv(L, c->status);
  c->st = NULL;
  s = sock_new(st, &rc);
  if (s == NULL)
    return sl_fail_uv(L, rc);
  push_sock(L, s, timeout);
  return 1;
}

/** tcp.connect(host, port [, opts]) -> sock, or the fail triple (ECONNREFUSED, ETIMEDOUT,
 * EAI_NONAME, ...). The name goes through the engine's DNS cache; each of its addresses
 * is tried in turn. opts.timeout bounds the whole connect and becomes the socket's
 * timeout for each read and write. */
static int l_connect(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  size_t hlen, i;
  const char *host = luaL_checklstring(L, 1, &hlen);
  lua_Integer port = luaL_checkinteger(L, 2);
  double timeout = -1;
  char lower[256];
  connecting *c;
  sl_task *me;
  luaL_argcheck(L, port > 0 && port < 65536, 2, "port must be 1-65535");
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "timeout") != LUA_TNIL)
      timeout = sl_check_seconds(L, -1, "timeout");
    lua_pop(L, 1);
  }
  me = sl_task_require(L, "tcp.connect");
  if (hlen == 0 || hlen >= sizeof lower || strlen(host) != hlen)
    return sl_fail(L, "EAI_NONAME", "cannot resolve '%s': not a host name", host);
  for (i = 0; i <= hlen; i++)  /* the cache's key: names are case-insensitive */
    lower[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + 32 : host[i]);
  lua_settop(L, 2);
  lua_pushnumber(L, timeout);  /* 3: the socket's timeout */
  c = (connecting *)lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &connecting_mt_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, connecting_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &connecting_mt_key);
  }
  lua_setmetatable(L, -2);
  sl_connect_start(&c->c, E, lower, (int)port, timeout, connect_done);
  if (c->done)
    return connect_k(L, LUA_OK, 0);
  c->waiter = me;
  me->catch_cancel = 1;
  return sl_task_wait(L, me, connect_cleanup, c, -1, connect_k, 1);
}

/* Adds tcp.connect and the socket type to the table at the top. */
void sl_tcp_register(lua_State *L) {
  static const luaL_Reg sock_methods[] = {
    {"read", sock_read},
    {"write", sock_write},
    {"close", sock_close_l},
    {"shutdown", sock_shutdown},
    {"settimeout", sock_settimeout},
    {"peer", sock_peer},
    {"is_closed", sock_is_closed},
    {NULL, NULL}
  };
  static const luaL_Reg sock_meta[] = {
    {"__close", sock_close_l},
    {"__gc", sock_close_l},
    {"__tostring", sock_tostring},
    {NULL, NULL}
  };
  sl_dns_init(L);
  sl_newmeta(L, SL_TCP_SOCKET_MT, sock_methods, sock_meta);
  lua_pushcfunction(L, l_connect);
  lua_setfield(L, -2, "connect");
}
