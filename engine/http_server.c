/* http_server.c: require "sluice.http.server_core": http.serve's C half: the server object,
 * its own task, closing, and its worker tasks (each runs handler(req) for one request after
 * another, so a request costs a hand-off, not a task). Connections are in
 * http_server_conn.c, request tables and responses in http_server_msg.c. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "sluice.h"

/* Idle workers kept for the next requests; more leave once their request is answered, so a
 * burst of slow requests does not leave thousands of idle tasks behind. */
#define IDLE_MAX 256

/* The Lua object of a server (SL_HTTP_SERVER_MT); user value 1: the handler. */
typedef struct server_box {
  hs_server *s;
} server_box;

static hs_server *check_server(lua_State *L, int idx) {
  return ((server_box *)luaL_checkudata(L, idx, SL_HTTP_SERVER_MT))->s;
}

/* --------------------------------------------------------------- lifetime */

void sl_server_unref(hs_server *s) {
  if (--s->refs == 0) {
    sl_stream_tls_ctx_free(s->tls_ctx);
    free(s);
  }
}

static void server_handle_close_cb(uv_handle_t *h) {
  sl_server_unref((hs_server *)h->data);
}

/* Closes the handles the server owns besides its listener. */
static void server_close_timers(hs_server *s) {
  uv_close((uv_handle_t *)&s->sweep, server_handle_close_cb);
  uv_close((uv_handle_t *)&s->deadline, server_handle_close_cb);
}

/* Closing is over once every worker and connection is gone: the timers stop, the server's
 * own task ends, the object is no longer anchored, and server:close() returns. The task is
 * woken first so that it has ended when the closers go on. */
static void server_check_closed(hs_server *s) {
  sl_task *t;
  if (!s->closing || s->finished || s->nworkers > 0 || s->nconns > 0)
    return;
  s->finished = 1;
  server_close_timers(s);
  if (s->lua_gone)
    return;
  if ((t = s->guard) != NULL) {
    s->guard = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
  luaL_unref(s->E->L, LUA_REGISTRYINDEX, s->self_ref);
  s->self_ref = LUA_NOREF;
  while ((t = sl_waitq_pop(&s->closers)) != NULL)
    sl_task_wake(t, SL_WAKE_OK);
}

/* Starts a graceful close (idempotent): no new connections; idle connections close now,
 * busy ones after their response; idle workers leave. What peers do cannot make it last
 * for ever: send_timeout, request_timeout and the lingering limit still apply, and a
 * deadline (server_deadline) cuts it short. */
static void server_shutdown(hs_server *s) {
  sl_queue *q, *n;
  hs_conn *c;
  sl_task *w;
  if (s->closing)
    return;
  s->closing = 1;
  uv_close((uv_handle_t *)&s->listener, server_handle_close_cb);
  SL_QUEUE_FOREACH_SAFE(q, n, &s->conns) {
    c = SL_QUEUE_DATA(q, hs_conn, node);
    if (c->busy)
      c->close_after = 1;
    else if (c->in_message || hs_conn_pending(c) > 0)
      sl_server_conn_end(c);
    else
      sl_server_conn_close(c);
  }
  while ((w = sl_waitq_pop(&s->idle)) != NULL) {
    s->nidle--;
    sl_task_wake(w, SL_WAKE_OK);      /* nothing pushed: the worker leaves */
  }
  server_check_closed(s);
}

/* Drops what is left of a closing server: cancels the handlers still running (their
 * connections stay listed until the worker lets go, even once closed) and closes every
 * connection, whatever its peer is doing. */
static void server_force(hs_server *s) {
  sl_queue *q, *n;
  hs_conn *c;
  SL_QUEUE_FOREACH_SAFE(q, n, &s->conns) {
    c = SL_QUEUE_DATA(q, hs_conn, node);
    if (c->busy && c->worker != NULL)
      sl_task_cancel(c->worker);
    sl_server_conn_close(c);
  }
}

static void deadline_cb(uv_timer_t *t) {
  hs_server *s = (hs_server *)t->data;
  s->deadline_at = 0;
  server_force(s);
}

/* Bounds a close: what is left ms from now is dropped (server_force). An earlier deadline
 * stays. */
static void server_deadline(hs_server *s, uint64_t ms) {
  uint64_t at = uv_now(s->E->loop) + ms;
  if (s->finished || (s->deadline_at != 0 && s->deadline_at <= at))
    return;
  s->deadline_at = at;
  uv_timer_start(&s->deadline, deadline_cb, ms, 0);
}

/* ------------------------------------------------------------ its own task */

/* How long queued responses get to go out when the server's task is cancelled. */
#define CANCEL_GRACE_MS 1000

/* An open server has a task of its own, waiting until the server has finished closing, so
 * that a program does not end while it is open or closing. However that task ends early
 * (cancelled: Ctrl-C, a failed main script, the spec runner removing what a test left
 * behind, even before it ever ran), its end callback closes the server with a short
 * deadline: a cancelled program is never kept running by its server or the server's
 * peers. */
static int guard_ended(lua_State *L) {
  hs_server *s = ((server_box *)lua_touserdata(L, lua_upvalueindex(1)))->s;
  if (s == NULL)
    return 0;
  s->guard = NULL;
  if (s->finished)
    return 0;
  server_shutdown(s);
  server_deadline(s, CANCEL_GRACE_MS);
  return 0;
}

static void guard_cleanup(sl_task *t, void *data) {
  (void)t;
  ((hs_server *)data)->guard = NULL;
}

/* Body of the server's task: expects the server object. */
static int guard_main(lua_State *L) {
  hs_server *s = ((server_box *)lua_touserdata(L, 1))->s;
  sl_task *me = sl_task_current(L);
  if (s->finished)
    return 0;
  s->guard = me;
  me->catch_cancel = 1;
  return sl_task_wait(L, me, guard_cleanup, s, -1, sl_task_k_end, 0);
}

/* ---------------------------------------------------------------- workers */

/* Phases of a worker between two waits; see worker_run. */
enum {
  PH_CALL,          /* the request is at 3: call the handler */
  PH_HANDLED,       /* the handler returned (results at 5..7) or raised (error at 5) */
  PH_STREAM_CALL,   /* call the body function at 7 for the next chunk */
  PH_STREAM_CHUNK,  /* it returned (chunk at 8) or raised */
  PH_STREAM_FLUSHED,/* woken once the chunks written have gone out */
  PH_NEXT,          /* the response is queued: the next request, or idle */
  PH_WOKEN,         /* woken while idle: a request (at 3), or leave */
  PH_EXIT,          /* leave */
  PH_CANCELLED      /* leave with the cancellation error */
};


static int worker_k(lua_State *L, int status, lua_KContext ctx);

static void idle_cleanup(sl_task *t, void *data) {
  hs_server *s = (hs_server *)data;
  sl_waitq_remove(&s->idle, t);
  s->nidle--;
}

static void writer_cleanup(sl_task *t, void *data) {
  (void)t;
  ((hs_conn *)data)->writer = NULL;
}

/* A worker task's whole life, as a loop over phases so that requests handled without a
 * wait do not nest C calls. Waits (the handler's own, flushing a streamed body, idling)
 * come back through worker_k with the phase as context. Stack: server, conn (light
 * userdata), req, msgh, then the phase's values. */
static int worker_run(lua_State *L, int phase, int st) {
  hs_server *s = ((server_box *)lua_touserdata(L, 1))->s;
  sl_task *me;
  for (;;) {
    hs_conn *c = (hs_conn *)lua_touserdata(L, 2);
    switch (phase) {
    case PH_CALL:
      lua_settop(L, 3);
      lua_pushcfunction(L, sl_handler_msgh);
      lua_getiuservalue(L, 1, 1);
      lua_pushvalue(L, 3);
      st = lua_pcallk(L, 1, 3, 4, PH_HANDLED, worker_k);
      phase = PH_HANDLED;
      break;
    case PH_HANDLED:
      switch (sl_server_respond(L, c, st)) {
      case HS_STREAM: phase = PH_STREAM_CALL; break;
      case HS_CANCELLED: phase = PH_CANCELLED; break;
      default: phase = PH_NEXT; break;
      }
      break;
    case PH_STREAM_CALL:
      lua_settop(L, 8);
      lua_pushvalue(L, 7);
      st = lua_pcallk(L, 0, 1, 4, PH_STREAM_CHUNK, worker_k);
      phase = PH_STREAM_CHUNK;
      break;
    case PH_STREAM_CHUNK:
      switch (sl_server_stream_chunk(L, c, st)) {
      case HS_STREAM: phase = PH_STREAM_CALL; break;
      case HS_FLUSH: phase = PH_STREAM_FLUSHED; break;
      case HS_CANCELLED: phase = PH_CANCELLED; break;
      default: phase = PH_NEXT; break;
      }
      if (phase != PH_STREAM_FLUSHED)
        break;
      me = sl_task_current(L);
      c->writer = me;
      me->catch_cancel = 1;
      return sl_task_wait(L, me, writer_cleanup, c, -1, worker_k, PH_STREAM_FLUSHED);
    case PH_STREAM_FLUSHED:
      if (sl_task_current(L)->wake == SL_WAKE_CANCEL) {
        sl_server_conn_close(c);
        phase = PH_CANCELLED;
      } else {
        phase = c->dead || c->closing ? PH_NEXT : PH_STREAM_CALL;
      }
      break;
    case PH_NEXT:
      if (sl_server_conn_next(c)) {             /* pipelined: this worker takes it */
        c->worker = sl_task_current(L);
        lua_settop(L, 2);
        sl_server_push_request(L, c);
        s->nrequests++;
        phase = PH_CALL;
        break;
      }
      sl_server_conn_release(c);
      lua_settop(L, 1);
      if (s->closing || s->nidle >= IDLE_MAX) {
        phase = PH_EXIT;
        break;
      }
      me = sl_task_current(L);
      sl_waitq_push(&s->idle, me);
      s->nidle++;
      me->handoff = 1;                   /* a request handed over is handled */
      me->catch_cancel = 1;
      return sl_task_wait(L, me, idle_cleanup, s, -1, worker_k, PH_WOKEN);
    case PH_WOKEN:
      if (sl_task_current(L)->wake == SL_WAKE_CANCEL)
        phase = PH_CANCELLED;
      else
        phase = lua_gettop(L) >= 3 ? PH_CALL : PH_EXIT;
      break;
    default:                             /* PH_EXIT, PH_CANCELLED */
      s->nworkers--;
      server_check_closed(s);
      if (phase == PH_CANCELLED) {
        if (lua_gettop(L) >= 2 && lua_islightuserdata(L, 2)) {
          c->worker = NULL;              /* this task is ending: never cancel it again */
          sl_server_conn_release(c);
        }
        sl_push_cancelled(L);
        return lua_error(L);
      }
      return 0;
    }
  }
}

static int worker_k(lua_State *L, int status, lua_KContext ctx) {
  return worker_run(L, (int)ctx, status);
}

/* Body of a worker task: expects server, conn, req. */
static int worker_main(lua_State *L) {
  return worker_run(L, PH_CALL, LUA_OK);
}

static void server_dispatch(hs_conn *c) {
  hs_server *s = c->srv;
  lua_State *L = s->E->L;
  sl_task *w = sl_waitq_pop(&s->idle);
  c->refs++;                             /* the worker's, dropped after its response */
  s->nrequests++;
  if (w != NULL) {
    s->nidle--;
    lua_checkstack(w->co, 4);
    lua_pushlightuserdata(w->co, c);
    sl_server_push_request(w->co, c);
    w->nargs = 2;
    c->worker = w;
    sl_task_wake(w, SL_WAKE_OK);
    return;
  }
  {
    int top = lua_gettop(L);
    lua_pushcfunction(L, worker_main);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->self_ref);
    lua_pushlightuserdata(L, c);
    sl_server_push_request(L, c);
    w = sl_task_new(L, top + 1, 3);
    w->internal = 1;
    s->nworkers++;
    c->worker = w;
    lua_settop(L, top);
  }
}

/* ---------------------------------------------------------------- Lua API */

static double opt_seconds(lua_State *L, int idx, const char *key, double def) {
  double v = def;
  if (lua_getfield(L, idx, key) != LUA_TNIL)
    v = sl_check_seconds(L, -1, key);
  lua_pop(L, 1);
  return v;
}

static lua_Integer opt_int(lua_State *L, int idx, const char *key, lua_Integer def) {
  lua_Integer v = def;
  if (lua_getfield(L, idx, key) != LUA_TNIL) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0)
      luaL_error(L, "http.serve: %s must be a non-negative integer", key);
  }
  lua_pop(L, 1);
  return v;
}

/* opts.tls, when given: the server's TLS context, made now so that a bad certificate or
 * key fails here and not at the first connection. NULL with no tls; raises on a bad
 * table; on a bad file, NULL with the reason in err. */
static void *opt_tls(lua_State *L, int idx, char *err, size_t errlen) {
  const char *cert, *key;
  void *ctx;
  err[0] = '\0';
  if (lua_getfield(L, idx, "tls") == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "http.serve: tls must be a table {cert = FILE, key = FILE}");
  lua_getfield(L, -1, "cert");
  lua_getfield(L, -2, "key");
  cert = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
  key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (cert == NULL || key == NULL)
    luaL_error(L, "http.serve: tls.cert and tls.key must be file names");
  ctx = sl_stream_tls_server_ctx(cert, key, err, errlen);
  lua_pop(L, 3);
  return ctx;
}

/** core.serve(opts) -> server, or the fail triple (EADDRINUSE, ...). opts: handler, host
 * ("127.0.0.1"), port (0), max_header_size (8192), max_headers (1000), max_body_size
 * (1 MB), keepalive_timeout (5 s), request_timeout (30 s), send_timeout (60 s), backlog
 * (511), tls ({cert = FILE, key = FILE}: HTTPS; ETLS when they cannot be used) */
static int l_serve(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  server_box *b;
  hs_server *s;
  const char *host;
  lua_Integer port, backlog, max_headers;
  sl_task *t;
  void *tls;
  char tls_err[512];
  int rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  if (lua_getfield(L, 1, "handler") != LUA_TFUNCTION)
    return luaL_error(L, "http.serve: opts.handler must be a function");
  if (lua_getfield(L, 1, "host") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushliteral(L, "127.0.0.1");
  }
  host = luaL_checkstring(L, 3);
  port = opt_int(L, 1, "port", 0);
  if (port > 65535)
    return luaL_error(L, "http.serve: port must be 0-65535");
  backlog = opt_int(L, 1, "backlog", 511);
  /* Every option is checked before the context is made: nothing raises after it. */
  (void)opt_int(L, 1, "max_header_size", 0);
  (void)opt_int(L, 1, "max_headers", 0);
  (void)opt_int(L, 1, "max_body_size", 0);
  (void)opt_seconds(L, 1, "keepalive_timeout", 0);
  (void)opt_seconds(L, 1, "request_timeout", 0);
  (void)opt_seconds(L, 1, "send_timeout", 0);
  tls = opt_tls(L, 1, tls_err, sizeof tls_err);
  if (tls == NULL && tls_err[0] != '\0')
    return sl_fail(L, "ETLS", "%s", tls_err);
  b = (server_box *)lua_newuserdatauv(L, sizeof *b, 1);    /* 4 */
  b->s = NULL;
  luaL_setmetatable(L, SL_HTTP_SERVER_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 4, 1);
  s = (hs_server *)calloc(1, sizeof *s);
  if (s == NULL) {
    sl_stream_tls_ctx_free(tls);
    return luaL_error(L, "http.serve: out of memory");
  }
  s->E = E;
  s->tls_ctx = tls;
  s->self_ref = LUA_NOREF;
  sl_waitq_init(&s->idle);
  sl_waitq_init(&s->closers);
  sl_queue_init(&s->conns);
  s->max_header = (size_t)opt_int(L, 1, "max_header_size", 8192);
  max_headers = opt_int(L, 1, "max_headers", 1000);
  s->max_headers = max_headers < INT_MAX ? (int)max_headers : INT_MAX;
  s->max_body = (size_t)opt_int(L, 1, "max_body_size", 1024 * 1024);
  s->keepalive_ms = (uint64_t)(opt_seconds(L, 1, "keepalive_timeout", 5) * 1000);
  s->request_ms = (uint64_t)(opt_seconds(L, 1, "request_timeout", 30) * 1000);
  s->send_ms = (uint64_t)(opt_seconds(L, 1, "send_timeout", 60) * 1000);
  if (s->keepalive_ms == 0)
    s->keepalive_ms = 1;
  if (s->request_ms == 0)
    s->request_ms = 1;
  if (s->send_ms == 0)
    s->send_ms = 1;
  s->refs = 1;                           /* the Lua object */
  s->dispatch = server_dispatch;
  s->conn_closed = server_check_closed;
  s->unref = sl_server_unref;
  b->s = s;
  uv_tcp_init(E->loop, &s->listener);
  s->listener.data = s;
  s->refs++;
  uv_timer_init(E->loop, &s->sweep);
  s->sweep.data = s;
  s->refs++;
  uv_timer_init(E->loop, &s->deadline);
  s->deadline.data = s;
  s->refs++;
  rc = sl_server_listen(s, host, (int)port, (int)backlog);
  if (rc < 0) {
    s->closing = 1;
    s->finished = 1;
    uv_close((uv_handle_t *)&s->listener, server_handle_close_cb);
    server_close_timers(s);
    return sl_fail_uv(L, rc);
  }
  lua_pushvalue(L, 4);
  s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, guard_main);
  lua_pushvalue(L, 4);
  t = sl_task_new(L, -2, 1);           /* 7: its handle */
  t->internal = 1;
  lua_pushvalue(L, 4);
  lua_pushcclosure(L, guard_ended, 1);
  lua_setiuservalue(L, 7, SL_UV_ONEND);
  t->has_on_end = 1;
  lua_settop(L, 4);
  return 1;
}

static void closer_cleanup(sl_task *t, void *data) {
  sl_waitq_remove(&((hs_server *)data)->closers, t);
}

static int close_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  lua_pushboolean(L, 1);
  return 1;
}

/** server:close([timeout]) -> true: stops accepting, closes idle connections, lets the
 * requests in flight finish, then returns (inside a task); after timeout seconds the
 * handlers still running are cancelled and every connection left is dropped, whatever its
 * peer does. Idempotent; a shorter timeout given later still applies. */
static int srv_close(lua_State *L) {
  hs_server *s = check_server(L, 1);
  double timeout = lua_isnoneornil(L, 2) ? -1 : sl_check_seconds(L, 2, "timeout");
  sl_task *me = sl_task_current(L);
  lua_settop(L, 1);
  server_shutdown(s);
  if (timeout >= 0)
    server_deadline(s, (uint64_t)(timeout * 1000));
  if (s->finished || me == NULL || !lua_isyieldable(L)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  sl_waitq_push(&s->closers, me);
  return sl_task_wait(L, me, closer_cleanup, s, -1, close_k, 0);
}

static int srv_gc(lua_State *L) {
  server_box *b = (server_box *)luaL_checkudata(L, 1, SL_HTTP_SERVER_MT);
  hs_server *s = b->s;
  sl_queue *q, *n;
  if (s == NULL)
    return 0;
  b->s = NULL;
  s->lua_gone = 1;
  if (!s->closing) {
    s->closing = 1;
    uv_close((uv_handle_t *)&s->listener, server_handle_close_cb);
  }
  SL_QUEUE_FOREACH_SAFE(q, n, &s->conns)
    sl_server_conn_close(SL_QUEUE_DATA(q, hs_conn, node));
  if (!s->finished) {
    s->finished = 1;
    server_close_timers(s);
  }
  sl_server_unref(s);
  return 0;
}

/** server:port() -> the port bound */
static int srv_port(lua_State *L) {
  lua_pushinteger(L, check_server(L, 1)->port);
  return 1;
}

/** server:stats() -> {connections, open, requests, workers, idle} */
static int srv_stats(lua_State *L) {
  hs_server *s = check_server(L, 1);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)s->naccepted);
  lua_setfield(L, -2, "connections");
  lua_pushinteger(L, s->nconns);
  lua_setfield(L, -2, "open");
  lua_pushinteger(L, (lua_Integer)s->nrequests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, s->nworkers);
  lua_setfield(L, -2, "workers");
  lua_pushinteger(L, s->nidle);
  lua_setfield(L, -2, "idle");
  return 1;
}

/** server:is_closed() -> boolean: close() was called */
static int srv_is_closed(lua_State *L) {
  lua_pushboolean(L, check_server(L, 1)->closing);
  return 1;
}

int luaopen_sluice_http_server(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"serve", l_serve},
    {NULL, NULL}
  };
  static const luaL_Reg methods[] = {
    {"close", srv_close},
    {"port", srv_port},
    {"stats", srv_stats},
    {"is_closed", srv_is_closed},
    {NULL, NULL}
  };
  static const luaL_Reg metamethods[] = {
    {"__gc", srv_gc},
    {NULL, NULL}
  };
  /* A write to a connection the peer has closed must fail with EPIPE, not kill the
   * process with SIGPIPE (libuv leaves the signal alone). */
  signal(SIGPIPE, SIG_IGN);
  sl_newmeta(L, SL_HTTP_SERVER_MT, methods, metamethods);
  sl_server_msg_register(L);
  luaL_newlib(L, funcs);
  return 1;
}
