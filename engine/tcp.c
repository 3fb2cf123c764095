/* tcp.c: require "sluice.tcp": TCP sockets for tasks. sock:read waits for bytes, sock:write
 * waits until the kernel has taken the data, tcp.connect resolves and connects; listeners
 * are in tcp_listen.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"
#include "tcp.h"

#define READ_HWM   (64 * 1024)   /* above this many unread bytes, stop reading the kernel */
#define READ_CHUNK (16 * 1024)   /* the least room handed to libuv for one read */

typedef struct wreq wreq;

/* A connected (or connecting) socket. Owned by its uv handle: freed in close_cb only. The
 * Lua object is a sock_box pointing here until it is closed. */
typedef struct tsock {
  uv_tcp_t tcp;                /* tcp.data points back here */
  sl_engine *E;
  char *buf;                   /* bytes read and not yet returned: buf[off .. off+len) */
  size_t off, len, cap;
  int rerr;                    /* why reading ended: 0 while open, UV_EOF or an error */
  uint8_t reading;             /* uv_read_start is in effect */
  int nwait;                   /* tasks waiting on it; the handle keeps the loop alive
                                  (uv_ref) only while this is positive */
  sl_task *reader;             /* the task blocked in read, if any */
  sl_task *connecter;          /* the task blocked in connect, if any */
  int cstatus;                 /* result of the connect request */
  uv_connect_t creq;
  uv_shutdown_t sreq;
  uint8_t shut;                /* shutdown requested */
  sl_queue writes;             /* wreq.node: writes in flight */
} tsock;

/* A write libuv has not finished: it owns a copy of the bytes the kernel has not taken,
 * so a task cancelled while waiting can go; write_cb frees it. */
struct wreq {
  uv_write_t req;
  tsock *s;
  sl_task *waiter;             /* task waiting for completion, NULL once it went away */
  sl_queue node;               /* in its socket's writes */
  char data[];
};

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
    uv_ref((uv_handle_t *)&s->tcp);
}

static void wait_end(tsock *s) {
  if (--s->nwait == 0)
    uv_unref((uv_handle_t *)&s->tcp);
}

int sl_tcp_push_addr(lua_State *L, const struct sockaddr_storage *ss) {
  char ip[64] = "?";
  int port = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
  }
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

int sl_tcp_parse_ip(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (strcmp(host, "*") == 0)
    host = "0.0.0.0";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  return UV_EINVAL;
}

/* ------------------------------------------------------------ socket life */

static void sock_close_cb(uv_handle_t *h) {
  tsock *s = (tsock *)h->data;
  free(s->buf);
  free(s);
}

/* Allocates a socket with an initialised, unreferenced handle; NULL on failure. */
static tsock *sock_new(sl_engine *E) {
  tsock *s = (tsock *)calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  if (uv_tcp_init(E->loop, &s->tcp) != 0) {
    free(s);
    return NULL;
  }
  s->E = E;
  s->tcp.data = s;
  sl_queue_init(&s->writes);
  uv_unref((uv_handle_t *)&s->tcp);
  return s;
}

/* Closes a socket: every task waiting on it is woken (and finds it closed), writes in
 * flight are cancelled by libuv, and the memory goes in sock_close_cb. */
static void sock_close(tsock *s) {
  sl_queue *q;
  wreq *w;
  sl_task *t;
  if ((t = s->reader) != NULL) {
    s->reader = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
  if ((t = s->connecter) != NULL) {
    s->connecter = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
  SL_QUEUE_FOREACH(q, &s->writes) {
    w = SL_QUEUE_DATA(q, wreq, node);
    if ((t = w->waiter) != NULL) {
      w->waiter = NULL;
      sl_task_wake(t, SL_WAKE_OK);    /* no status pushed: the write was cut short */
    }
  }
  uv_close((uv_handle_t *)&s->tcp, sock_close_cb);
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

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
  tsock *s = (tsock *)h->data;
  (void)suggested;
  if (s->len == 0)
    s->off = 0;
  if (s->cap - s->off - s->len < READ_CHUNK) {
    if (s->off > 0) {
      memmove(s->buf, s->buf + s->off, s->len);
      s->off = 0;
    }
    if (s->cap - s->len < READ_CHUNK) {
      size_t ncap = s->cap ? s->cap * 2 : 4 * READ_CHUNK;
      char *nb = (char *)realloc(s->buf, ncap);
      if (nb == NULL) {
        *out = uv_buf_init(NULL, 0);   /* libuv reports UV_ENOBUFS to read_cb */
        return;
      }
      s->buf = nb;
      s->cap = ncap;
    }
  }
  *out = uv_buf_init(s->buf + s->off + s->len, (unsigned)(s->cap - s->off - s->len));
}

static void wake_reader(tsock *s) {
  sl_task *t = s->reader;
  if (t != NULL) {
    s->reader = NULL;
    wait_end(s);
    sl_task_wake(t, SL_WAKE_OK);
  }
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  tsock *s = (tsock *)st->data;
  (void)b;
  if (n == 0)
    return;
  if (n > 0) {
    s->len += (size_t)n;
    if (s->len >= READ_HWM) {   /* nobody is taking the bytes fast enough: back-pressure */
      uv_read_stop(st);
      s->reading = 0;
    }
  } else {
    s->rerr = (int)n;
    uv_read_stop(st);
    s->reading = 0;
  }
  wake_reader(s);
}

static int start_reading(tsock *s) {
  int rc = 0;
  if (!s->reading && s->rerr == 0) {
    rc = uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
    if (rc == 0)
      s->reading = 1;
    else
      s->rerr = rc;
  }
  return rc;
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
  sl_task *me;
  if (s == NULL)
    return sl_fail(L, "ECANCELED", "the socket was closed while reading");
  if (s->len > 0) {
    size_t n = (size_t)max < s->len ? (size_t)max : s->len;
    lua_pushlstring(L, s->buf + s->off, n);
    s->off += n;
    s->len -= n;
    if (s->len < READ_HWM)
      start_reading(s);
    return 1;
  }
  if (s->rerr == UV_EOF)
    return sl_fail(L, "EOF", "end of stream");
  if (s->rerr != 0)
    return sl_fail_uv(L, s->rerr);
  if (s->reader != NULL)
    return luaL_error(L, "another task is already reading this socket");
  me = sl_task_require(L, "sock:read");
  if (start_reading(s) != 0)
    return sl_fail_uv(L, s->rerr);
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

static void write_cb(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  tsock *s = w->s;
  sl_task *t = w->waiter;
  sl_queue_remove(&w->node);
  if (t != NULL) {
    lua_checkstack(t->co, 1);
    lua_pushinteger(t->co, status);
    t->nargs = 1;
    wait_end(s);
    sl_task_wake(t, SL_WAKE_OK);
  }
  free(w);
}

static void write_cleanup(sl_task *t, void *data) {
  wreq *w = (wreq *)data;
  (void)t;
  w->waiter = NULL;            /* the bytes are still sent; write_cb frees the copy */
  wait_end(w->s);
}

/* Stack: socket, data, and the status write_cb pushed (none if the socket was closed). */
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
  wreq *w;
  uv_buf_t buf;
  int rc;
  if (len == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  me = sl_task_require(L, "sock:write");
  /* Most writes fit in the kernel's buffer at once: no copy and no wait. uv_try_write
   * refuses while earlier writes are queued, so the order is kept. */
  buf = uv_buf_init((char *)data, (unsigned)len);
  rc = uv_try_write((uv_stream_t *)&s->tcp, &buf, 1);
  if (rc == (int)len) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (rc < 0 && rc != UV_EAGAIN)
    return sl_fail_uv(L, rc);
  if (rc > 0) {
    data += rc;
    len -= (size_t)rc;
  }
  w = (wreq *)malloc(sizeof *w + len);
  if (w == NULL)
    return luaL_error(L, "sock:write: out of memory");
  memcpy(w->data, data, len);
  w->s = s;
  w->waiter = NULL;
  buf = uv_buf_init(w->data, (unsigned)len);
  rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &buf, 1, write_cb);
  if (rc < 0) {
    free(w);
    return sl_fail_uv(L, rc);
  }
  sl_queue_insert_head(&s->writes, &w->node);
  w->waiter = me;
  wait_begin(s);
  lua_settop(L, 2);
  return sl_task_wait(L, me, write_cleanup, w, b->timeout, write_k, 0);
}

/* ------------------------------------------------------------- the others */

int sl_tcp_accept(lua_State *L, uv_stream_t *server) {
  tsock *s = sock_new(SL_ENGINE(L));
  int rc;
  if (s == NULL)
    return UV_ENOMEM;
  rc = uv_accept(server, (uv_stream_t *)&s->tcp);
  if (rc == 0)
    rc = start_reading(s);
  if (rc != 0) {
    uv_close((uv_handle_t *)&s->tcp, sock_close_cb);
    return rc;
  }
  uv_tcp_nodelay(&s->tcp, 1);
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
  if (!s->shut) {
    int rc = uv_shutdown(&s->sreq, (uv_stream_t *)&s->tcp, NULL);
    if (rc < 0)
      return sl_fail_uv(L, rc);
    s->shut = 1;
  }
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
  rc = uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len);
  if (rc < 0)
    return sl_fail_uv(L, rc);
  return sl_tcp_push_addr(L, &ss);
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

/* A name lookup; owned by itself and freed in its callback, so a task that is cancelled
 * while it runs can simply go. */
typedef struct lookup {
  uv_getaddrinfo_t req;
  sl_task *waiter;             /* NULL once the task went away */
  int status;
  struct addrinfo *res;
} lookup;

static void lookup_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  lookup *lk = (lookup *)req->data;
  if (lk->waiter == NULL) {
    if (res != NULL)
      uv_freeaddrinfo(res);
    free(lk);
    return;
  }
  lk->status = status;
  lk->res = res;
  sl_task_wake(lk->waiter, SL_WAKE_OK);
  lk->waiter = NULL;
}

static void lookup_cleanup(sl_task *t, void *data) {
  lookup *lk = (lookup *)data;
  (void)t;
  lk->waiter = NULL;
  uv_cancel((uv_req_t *)&lk->req);   /* if it already runs, lookup_cb frees it later */
}

/* State of one tcp.connect call, kept in a full userdata at stack index 4 so that an
 * error or a cancellation anywhere leaves nothing to free by hand (its __gc does it). */
typedef struct connecting {
  uint64_t deadline;           /* loop clock (ns); 0: none */
  struct addrinfo *res;        /* from the lookup, or NULL for a numeric host */
  struct addrinfo *next;       /* next address to try */
  struct sockaddr_storage addr;
  int lasterr;
} connecting;

/* Registry key of the metatable of connecting records (internal: not a "sluice." name). */
static char connecting_mt_key;

static int connecting_gc(lua_State *L) {
  connecting *c = (connecting *)lua_touserdata(L, 1);
  if (c->res != NULL) {
    uv_freeaddrinfo(c->res);
    c->res = NULL;
  }
  return 0;
}

static double remaining(sl_engine *E, connecting *c) {
  uint64_t now;
  if (c->deadline == 0)
    return -1;
  now = sl_clock_ns(E);
  return c->deadline > now ? (double)(c->deadline - now) / 1e9 : 0;
}

static void connect_cb(uv_connect_t *req, int status) {
  tsock *s = (tsock *)req->data;
  sl_task *t = s->connecter;
  s->cstatus = status;
  if (t != NULL) {
    s->connecter = NULL;
    wait_end(s);
    sl_task_wake(t, SL_WAKE_OK);
  }
}

/* A connect given up (cancelled or past its deadline): closing the handle cancels it. */
static void connect_cleanup(sl_task *t, void *data) {
  tsock *s = (tsock *)data;
  (void)t;
  s->connecter = NULL;
  wait_end(s);
}

static int try_next(lua_State *L);

/* Stack: host, port, opts, connecting, socket. */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  connecting *c = (connecting *)lua_touserdata(L, 4);
  sock_box *b = (sock_box *)lua_touserdata(L, 5);
  sl_task *me = sl_task_current(L);
  (void)status;
  (void)ctx;
  if (me->wake != SL_WAKE_OK && b->s != NULL) {   /* closing cancels the connect */
    tsock *s = b->s;
    b->s = NULL;
    sock_close(s);
  }
  if (me->wake == SL_WAKE_CANCEL) {
    sl_push_cancelled(L);
    return lua_error(L);
  }
  if (me->wake == SL_WAKE_TIMEOUT)
    return sl_fail(L, "ETIMEDOUT", "connecting to %s:%d timed out",
                   lua_tostring(L, 1), (int)lua_tointeger(L, 2));
  if (b->s == NULL)
    return sl_fail(L, "ECANCELED", "the socket was closed while connecting");
  if (b->s->cstatus == 0) {
    if (start_reading(b->s) != 0)
      return sl_fail_uv(L, b->s->rerr);
    uv_tcp_nodelay(&b->s->tcp, 1);
    lua_settop(L, 5);
    return 1;
  }
  c->lasterr = b->s->cstatus;
  return try_next(L);
}

/* Connects to the next address (or fails with the last error when none are left). */
static int try_next(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  connecting *c = (connecting *)lua_touserdata(L, 4);
  sock_box *b = (sock_box *)lua_touserdata(L, 5);
  sl_task *me = sl_task_current(L);
  const struct sockaddr *sa;
  tsock *s;
  int rc;
  if (b->s != NULL) {          /* the handle of a failed attempt: start afresh */
    tsock *old = b->s;
    b->s = NULL;
    sock_close(old);
  }
  if (c->res != NULL) {
    while (c->next != NULL && c->next->ai_family != AF_INET && c->next->ai_family != AF_INET6)
      c->next = c->next->ai_next;
    if (c->next == NULL)
      return c->lasterr ? sl_fail_uv(L, c->lasterr)
                        : sl_fail(L, "EAI_NONAME", "no address for %s", lua_tostring(L, 1));
    sa = c->next->ai_addr;
    c->next = c->next->ai_next;
  } else {
    if (c->lasterr)
      return sl_fail_uv(L, c->lasterr);
    sa = (const struct sockaddr *)&c->addr;
    c->lasterr = UV_ECONNREFUSED;    /* only one try for a numeric host */
  }
  s = sock_new(E);
  if (s == NULL)
    return luaL_error(L, "tcp.connect: out of memory");
  b->s = s;
  s->creq.data = s;
  rc = uv_tcp_connect(&s->creq, &s->tcp, sa, connect_cb);
  if (rc < 0) {
    c->lasterr = rc;
    return try_next(L);
  }
  s->connecter = me;
  wait_begin(s);
  me->catch_cancel = 1;        /* connect_k closes the half-open socket, then re-raises */
  return sl_task_wait(L, me, connect_cleanup, s, remaining(E, c), connect_k, 0);
}

/* Stack: host, port, opts, connecting, socket; kctx is the lookup. */
static int lookup_k(lua_State *L, int status, lua_KContext ctx) {
  lookup *lk = (lookup *)ctx;
  connecting *c = (connecting *)lua_touserdata(L, 4);
  (void)status;
  if (sl_task_current(L)->wake == SL_WAKE_TIMEOUT)   /* lookup_cb frees lk */
    return sl_fail(L, "ETIMEDOUT", "resolving %s timed out", lua_tostring(L, 1));
  c->res = lk->res;
  c->next = lk->res;
  status = lk->status;
  free(lk);
  if (status < 0)
    return sl_fail_uv(L, status);
  return try_next(L);
}

/** tcp.connect(host, port [, opts]) -> sock, or the fail triple (ECONNREFUSED, ETIMEDOUT,
 * EAI_NONAME, ...). opts.timeout bounds the whole connect and becomes the socket's
 * timeout for each read and write. */
static int l_connect(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  double timeout = -1;
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
  lua_settop(L, 3);
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
  if (timeout >= 0)
    c->deadline = sl_clock_ns(E) + (uint64_t)(timeout * 1e9) + 1;
  push_sock(L, NULL, timeout);
  if (sl_tcp_parse_ip(host, (int)port, &c->addr) == 0)
    return try_next(L);
  {
    struct addrinfo hints;
    char service[16];
    lookup *lk = (lookup *)calloc(1, sizeof *lk);
    int rc;
    if (lk == NULL)
      return luaL_error(L, "tcp.connect: out of memory");
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%d", (int)port);
    lk->req.data = lk;
    rc = uv_getaddrinfo(E->loop, &lk->req, lookup_cb, host, service, &hints);
    if (rc < 0) {
      free(lk);
      return sl_fail_uv(L, rc);
    }
    lk->waiter = me;
    return sl_task_wait(L, me, lookup_cleanup, lk, remaining(E, c), lookup_k,
                        (lua_KContext)lk);
  }
}

/* ----------------------------------------------------------- registration */

int luaopen_sluice_tcp(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"connect", l_connect},
    {NULL, NULL}
  };
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
  /* A write to a connection the peer has closed must fail with EPIPE, not kill the
   * process with SIGPIPE (libuv leaves the signal alone). */
  signal(SIGPIPE, SIG_IGN);
  sl_newmeta(L, SL_TCP_SOCKET_MT, sock_methods, sock_meta);
  luaL_newlib(L, funcs);
  sl_tcp_listen_register(L);
  return 1;
}
