/* tcp_listen.c: tcp.listen(host, port, handler): a listening socket whose connections each
 * run handler(sock) as a task of their own; and require "sluice.tcp", which adds the
 * sockets of tcp.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"
#include "stream.h"
#include "tcp.h"

/* A listening socket; freed in its close callback. */
typedef struct tlisten {
  uv_tcp_t tcp;
  sl_engine *E;
  void *tls_ctx;               /* a server SSL_CTX (stream_tls.c), or NULL */
  int self_ref;                /* anchors the Lua object (and its handler) while open */
} tlisten;

/* The Lua object of a listener (metatable SL_TCP_LISTENER_MT); user value 1: handler. */
typedef struct listen_box {
  tlisten *l;                  /* NULL once closed */
  int port;                    /* the port bound */
  sl_task *guard;              /* the listener's own task while it waits (see guard_main) */
} listen_box;

static listen_box *check_listener(lua_State *L, int idx) {
  return (listen_box *)luaL_checkudata(L, idx, SL_TCP_LISTENER_MT);
}

/* --------------------------------------------------------------- listening */


/* Stack: socket, msgh, then the handler's error if it failed. The socket is closed once
 * the handler is done; an error is reported on stderr, a cancellation goes on up. */
static int conn_main_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  sl_tcp_close(L, 1);
  if (status != LUA_OK && status != LUA_YIELD) {
    if (sl_is_cancelled(L, -1))
      return lua_error(L);
    fprintf(stderr, "sluice: tcp.listen handler failed: %s\n",
            lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
    fflush(stderr);
  }
  return 0;
}

/* Body of a connection's task: expects handler, socket. */
static int conn_main(lua_State *L) {
  int st;
  lua_pushvalue(L, 2);
  lua_insert(L, 1);
  lua_pushcfunction(L, sl_handler_msgh);
  lua_insert(L, 2);            /* socket, msgh, handler, socket */
  st = lua_pcallk(L, 1, 0, 2, 0, conn_main_k);
  return conn_main_k(L, st, 0);
}

static void connection_cb(uv_stream_t *server, int status) {
  tlisten *l = (tlisten *)server->data;
  lua_State *L = l->E->L;
  int top = lua_gettop(L);
  if (status < 0)
    return;                    /* EMFILE and the like: the next connection may do */
  lua_pushcfunction(L, conn_main);
  lua_rawgeti(L, LUA_REGISTRYINDEX, l->self_ref);
  lua_getiuservalue(L, -1, 1);
  lua_replace(L, -2);
  if (sl_tcp_accept(L, server, l->tls_ctx) == 0)
    sl_task_new(L, top + 1, 2)->internal = 1;
  lua_settop(L, top);
}

static void listen_close_cb(uv_handle_t *h) {
  tlisten *l = (tlisten *)h->data;
  sl_stream_tls_ctx_free(l->tls_ctx);  /* sockets still open hold their own reference */
  free(l);
}

/** tcp.listen(host, port, handler [, opts]) -> listener, or the fail triple (EADDRINUSE,
 * ...); port 0 picks a free port. handler(sock) runs as a task per connection, and the
 * socket is closed when it returns. opts.backlog: the kernel's accept queue (511);
 * opts.tls = {cert = FILE, key = FILE}: the sockets speak TLS (ETLS when the files cannot
 * be used). */
static void guard_start(lua_State *L, int idx);

static int l_listen(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  lua_Integer backlog = 511;
  listen_box *b;
  tlisten *l;
  int rc, bound = 0;
  const char *cert = NULL, *key = NULL;
  void *tls = NULL;
  char err[512];
  luaL_argcheck(L, port >= 0 && port < 65536, 2, "port must be 0-65535");
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    if (lua_getfield(L, 4, "backlog") != LUA_TNIL)
      backlog = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 4, "tls") != LUA_TNIL) {           /* 5 */
      luaL_argcheck(L, lua_istable(L, 5), 4, "tls must be a table {cert = FILE, key = FILE}");
      lua_getfield(L, 5, "cert");
      lua_getfield(L, 5, "key");
      cert = lua_type(L, 6) == LUA_TSTRING ? lua_tostring(L, 6) : NULL;
      key = lua_type(L, 7) == LUA_TSTRING ? lua_tostring(L, 7) : NULL;
      luaL_argcheck(L, cert != NULL && key != NULL, 4,
                    "tls.cert and tls.key must be file names");
      tls = sl_stream_tls_server_ctx(cert, key, err, sizeof err);
      if (tls == NULL)
        return sl_fail(L, "ETLS", "%s", err);
    }
  }
  lua_settop(L, 3);
  b = (listen_box *)lua_newuserdatauv(L, sizeof *b, 1);
  b->l = NULL;
  b->port = 0;
  b->guard = NULL;
  luaL_setmetatable(L, SL_TCP_LISTENER_MT);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, -2, 1);
  l = (tlisten *)calloc(1, sizeof *l);
  if (l == NULL) {
    sl_stream_tls_ctx_free(tls);
    return luaL_error(L, "tcp.listen: out of memory");
  }
  l->E = E;
  l->tls_ctx = tls;
  l->self_ref = LUA_NOREF;
  uv_tcp_init(E->loop, &l->tcp);
  l->tcp.data = l;
  rc = sl_stream_listen(E->loop, &l->tcp, host, (int)port, (int)backlog, connection_cb,
                          &bound);
  if (rc < 0) {
    uv_close((uv_handle_t *)&l->tcp, listen_close_cb);
    return sl_fail_uv(L, rc);
  }
  b->l = l;
  b->port = bound;
  lua_pushvalue(L, -1);
  l->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  guard_start(L, -1);
  return 1;
}

/** listener:close() -- stops accepting (idempotent); connections already accepted go on */
static int listener_close(lua_State *L) {
  listen_box *b = check_listener(L, 1);
  tlisten *l = b->l;
  if (l != NULL) {
    b->l = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, l->self_ref);
    l->self_ref = LUA_NOREF;
    uv_close((uv_handle_t *)&l->tcp, listen_close_cb);
  }
  if (b->guard != NULL) {
    sl_task *t = b->guard;
    b->guard = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
  return 0;
}

/* An open listener has a task of its own, waiting until the listener closes. However that
 * task ends (closed, or cancelled: Ctrl-C, a failed main script, the spec runner removing
 * what a test left behind, even before it ran), its end callback closes the listener, so
 * an open listener never keeps a cancelled program running. */
static int guard_ended(lua_State *L) {
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  check_listener(L, 1)->guard = NULL;
  return listener_close(L);
}

static void guard_cleanup(sl_task *t, void *data) {
  (void)t;
  ((listen_box *)data)->guard = NULL;
}

/* Body of the listener's task: expects the listener object. */
static int guard_main(lua_State *L) {
  listen_box *b = check_listener(L, 1);
  sl_task *me = sl_task_current(L);
  if (b->l == NULL)
    return 0;
  b->guard = me;
  me->catch_cancel = 1;
  return sl_task_wait(L, me, guard_cleanup, b, -1, sl_task_k_end, 0);
}

/* Starts the guard task of the listener at idx. */
static void guard_start(lua_State *L, int idx) {
  sl_task *t;
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, guard_main);
  lua_pushvalue(L, idx);
  t = sl_task_new(L, -2, 1);
  t->internal = 1;
  lua_pushvalue(L, idx);
  lua_pushcclosure(L, guard_ended, 1);
  lua_setiuservalue(L, -2, SL_UV_ONEND);
  t->has_on_end = 1;
  lua_pop(L, 3);               /* the function, the listener, the task */
}

/** listener:port() -> the port it listens on */
static int listener_port(lua_State *L) {
  lua_pushinteger(L, check_listener(L, 1)->port);
  return 1;
}

/** listener:is_closed() -> boolean */
static int listener_is_closed(lua_State *L) {
  lua_pushboolean(L, check_listener(L, 1)->l == NULL);
  return 1;
}

static int listener_tostring(lua_State *L) {
  listen_box *b = check_listener(L, 1);
  lua_pushfstring(L, "tcp listener (port %d%s)", b->port, b->l ? "" : ", closed");
  return 1;
}

/* ----------------------------------------------------------- registration */

int luaopen_sluice_tcp(lua_State *L) {
  static const luaL_Reg listener_methods[] = {
    {"close", listener_close},
    {"port", listener_port},
    {"is_closed", listener_is_closed},
    {NULL, NULL}
  };
  static const luaL_Reg listener_meta[] = {
    {"__close", listener_close},
    {"__gc", listener_close},
    {"__tostring", listener_tostring},
    {NULL, NULL}
  };
  /* A write to a connection the peer has closed must fail with EPIPE, not kill the
   * process with SIGPIPE (libuv leaves the signal alone). */
  signal(SIGPIPE, SIG_IGN);
  lua_newtable(L);
  sl_tcp_register(L);
  sl_newmeta(L, SL_TCP_LISTENER_MT, listener_methods, listener_meta);
  lua_pushcfunction(L, l_listen);
  lua_setfield(L, -2, "listen");
  return 1;
}
