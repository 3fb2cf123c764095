/* http_client.c: require "sluice.http.client_core", the C half of the HTTP client: client
 * objects (defaults, limits, a keep-alive pool) and client:_send, a request as one wait. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "http_client.h"
#include "http_cookie.h"
#include "http_header.h"
#include "sluice.h"
#include "url.h"

/* The Lua object: a pointer to the C record, which outlives it until its connections and
 * timer are closed (sl_client_unref). NULL once collected. */
typedef struct client_box {
  hc_client *c;
} client_box;

/* The stack of client:_send while its request runs: fixed slots, so the continuations
 * know where things are. Slot 8 holds a body string the waker pushed, or the body
 * function's chunk being written. */
enum { S_CLIENT = 1, S_METHOD, S_URL, S_OPTS, S_HEADERS, S_BODY, S_SINK, S_TOP = S_SINK };

static client_box *check_box(lua_State *L, int idx) {
  return (client_box *)luaL_checkudata(L, idx, SL_HTTP_CLIENT_MT);
}

/* The open client at idx; raises at the user's code, which called the C function through
 * an API function of client.lua when wrapped. */
static hc_client *check_client(lua_State *L, int idx, int wrapped) {
  client_box *box = check_box(L, idx);
  if (box->c == NULL || box->c->closed) {
    if (wrapped)
      sl_client_misuse(L, "attempt to use a closed HTTP client");
    luaL_error(L, "attempt to use a closed HTTP client");
  }
  return box->c;
}

/* ------------------------------------------------------------- requests */

static int req_step(lua_State *L, hc_req *r);

/* A cancellation or the total deadline took the task away: let go of everything. The
 * continuation still runs (catch_cancel) and frees the record. */
static void req_cleanup(sl_task *t, void *data) {
  hc_req *r = (hc_req *)data;
  (void)t;
  r->waiting = 0;
  sl_client_req_abort(r);
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  hc_req *r = (hc_req *)ctx;
  sl_task *me = sl_task_current(L);
  (void)status;
  r->waiting = 0;
  if (me->wake == SL_WAKE_CANCEL) {
    sl_client_req_abort(r);
    sl_client_req_free(r);
    sl_push_cancelled(L);
    return lua_error(L);
  }
  if (me->wake == SL_WAKE_TIMEOUT) {
    double t = r->lim.timeout;
    sl_client_req_abort(r);
    sl_client_req_free(r);
    return sl_fail(L, "ETIMEDOUT", "request to %s timed out after %f s",
                   lua_tostring(L, S_URL), (lua_Number)t);
  }
  return req_step(L, r);
}

/* Waits for the request's next event, under what is left of its total timeout. */
static int req_wait(lua_State *L, hc_req *r) {
  sl_task *me = r->task;
  double timeout = -1;
  if (r->lim.timeout >= 0) {
    uint64_t now = uv_hrtime(), end = r->t_call + (uint64_t)(r->lim.timeout * 1e9);
    timeout = end > now ? (double)(end - now) / 1e9 : 0;
  }
  r->waiting = 1;
  me->catch_cancel = 1;
  return sl_task_wait(L, me, req_cleanup, r, timeout, send_k, (lua_KContext)r);
}

static int req_follow(lua_State *L, hc_req *r, const char *loc, size_t len);

/* The request ended: the next one of a redirect, its response table, or the fail triple. */
static int req_finish(lua_State *L, hc_req *r) {
  int n;
  size_t loclen;
  const char *loc;
  if (r->err_name != NULL) {
    n = sl_fail(L, r->err_name, "%s", r->err_msg);
    sl_client_req_free(r);
    return n;
  }
  if (r->client->jar != NULL) {
    size_t ulen;
    const char *u = lua_tolstring(L, S_URL, &ulen);
    sl_client_cookie_store(r, u, ulen);
  }
  if ((loc = sl_client_redirect_location(r, &loclen)) != NULL)
    return req_follow(L, r, loc, loclen);
  n = sl_client_push_response(L, r, S_URL, r->pushed ? S_TOP + 1 : 0);
  if (n == 1 && r->hops > 0) {
    lua_pushinteger(L, r->hops);
    lua_setfield(L, -2, "redirects");
  }
  sl_client_req_free(r);
  return n;
}

/* After a call of the sink or the body function: its error ends the request and goes on
 * up (a cancellation included), with the connection closed. */
static void after_call(lua_State *L, hc_req *r, int status) {
  if (status != LUA_OK && status != LUA_YIELD) {
    sl_client_req_abort(r);
    sl_client_req_free(r);
    lua_error(L);
  }
}

/* Pushes the sink and the next piece of body for it (sl_client_sink_piece). Returns 0 when
 * there is nothing to call it with (the pending bytes decoded to nothing more, or failed to
 * decode: r->err_name is then set). */
static int next_piece(lua_State *L, hc_req *r) {
  const char *piece;
  long n;
  lua_settop(L, S_TOP);
  n = sl_client_sink_piece(r, &piece);
  if (n <= 0)
    return 0;
  lua_pushvalue(L, S_SINK);
  lua_pushlstring(L, piece, (size_t)n);
  return 1;
}

/* Sends the chunk the body function returned (in slot 8, where it stays anchored while it
 * is written); nil ends the body. */
static void send_chunk(lua_State *L, hc_req *r) {
  size_t len;
  const char *s;
  lua_settop(L, S_TOP + 1);
  if (r->done)                 /* the response (or a failure) came while it ran */
    return;
  if (lua_isnil(L, S_TOP + 1)) {
    sl_client_req_write_body(r, NULL, 0, 1);
    lua_settop(L, S_TOP);
    return;
  }
  if (lua_type(L, S_TOP + 1) != LUA_TSTRING) {
    const char *tn = luaL_typename(L, S_TOP + 1);
    sl_client_req_abort(r);
    sl_client_req_free(r);
    sl_client_misuse(L, "the body function must return strings, then nil (got a %s)", tn);
  }
  s = lua_tolstring(L, S_TOP + 1, &len);
  sl_client_req_write_body(r, s, len, 0);
}

/* The continuation of a sink or a body function that waited: a sink returns nothing, a
 * body function one chunk (its call asks for one result), which is then sent. */
static int call_k(lua_State *L, int status, lua_KContext ctx) {
  hc_req *r = (hc_req *)ctx;
  after_call(L, r, status);
  if (lua_gettop(L) > S_TOP)
    send_chunk(L, r);
  return req_step(L, r);
}

/* Runs the request on from wherever it stands: the sink, the body function, the end, or
 * another wait. A sink or body function that returns without waiting brings it back to
 * this loop (no recursion, however many chunks); one that waits, to its continuation. */
static int req_step(lua_State *L, hc_req *r) {
  for (;;) {
    if (r->sink && (r->paused || r->done) && sl_client_sink_pending(r) &&
        r->err_name == NULL) {
      if (next_piece(L, r))
        after_call(L, r, lua_pcallk(L, 1, 0, 0, (lua_KContext)r, call_k));
      lua_settop(L, S_TOP);
      continue;
    }
    if (r->done)
      return req_finish(L, r);
    if (r->err_name != NULL) { /* a decoding failure found while feeding the sink */
      sl_client_req_abort(r);
      r->done = 1;
      continue;
    }
    if (r->fn_body && r->ready && !r->body_sent && !(r->conn != NULL && r->conn->writing)) {
      lua_settop(L, S_TOP);
      lua_pushvalue(L, S_BODY);
      after_call(L, r, lua_pcallk(L, 0, 1, 0, (lua_KContext)r, call_k));
      send_chunk(L, r);
      continue;
    }
    if (r->sink && r->paused) {
      sl_client_req_resume_reading(r);
      continue;
    }
    return req_wait(L, r);
  }
}

static int is_method(const char *m, size_t n, const char *name) {
  return strlen(name) == n && memcmp(m, name, n) == 0;
}

/* Whether the request r goes to another origin than prev (scheme, host and port). */
static int other_origin(const hc_req *r, const hc_req *prev) {
  return r->tls != prev->tls || r->port != prev->port || strcmp(r->host, prev->host) != 0;
}

/* A redirect left the first origin: the headers from now on are a copy of the request's
 * without credentials nor Host (in any case of their names), with `false` for each so the
 * client's defaults are not added either (Host then comes from the URL). They never come
 * back, even if a later hop returns to the first origin. */
static void drop_credentials(lua_State *L) {
  static const char *const drop[] = {"authorization", "cookie", "proxy-authorization", "host"};
  size_t i;
  lua_newtable(L);
  if (lua_istable(L, S_HEADERS)) {
    lua_pushnil(L);
    while (lua_next(L, S_HEADERS) != 0) {
      int keep = 1;
      if (lua_type(L, -2) == LUA_TSTRING) {
        size_t n;
        const char *k = lua_tolstring(L, -2, &n);
        for (i = 0; i < 4 && keep; i++)
          keep = !(strlen(drop[i]) == n && strncasecmp(k, drop[i], n) == 0);
      }
      if (keep) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
      } else {
        lua_pop(L, 1);
      }
    }
  }
  for (i = 0; i < 4; i++) {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, drop[i]);
  }
  lua_replace(L, S_HEADERS);
}

/* Starts r (its client, limits and redirect state set) with the method, URL, headers,
 * body and sink in their slots, and runs it. prev is the request whose redirect this is
 * (freed here), or NULL; unresolved says the URL is a Location that sluice.url refused. */
static int req_begin(lua_State *L, hc_req *r, hc_req *prev, int unresolved) {
  size_t mlen, ulen, tlen;
  const char *method = lua_tolstring(L, S_METHOD, &mlen);
  const char *url = lua_tolstring(L, S_URL, &ulen), *target, *fail, *err;
  int body_kind = lua_type(L, S_BODY) == LUA_TSTRING ? 1 : lua_isfunction(L, S_BODY) ? 2 : 0;
  int hidx;
  char why[160];
  fail = sl_client_url_parse(r, url, ulen, &target, &tlen, why, sizeof why);
  if (fail == NULL && unresolved) {
    fail = "EINVAL";
    snprintf(why, sizeof why, "bad redirect location: %.100s", url);
  }
  if (fail == NULL && (r->px_given || r->client->px != NULL))
    r->proxy = sl_client_proxy_pick(r->client, r);
  if (fail == NULL && prev != NULL && !r->cross && other_origin(r, prev)) {
    r->cross = 1;
    drop_credentials(L);
  }
  if (prev != NULL)
    sl_client_req_free(prev);
  if (fail != NULL) {
    sl_client_req_free(r);
    return sl_fail(L, fail, "%s", why);
  }
  r->is_head = is_method(method, mlen, "HEAD");
  r->idempotent = r->is_head || is_method(method, mlen, "GET") ||
                  is_method(method, mlen, "OPTIONS") || is_method(method, mlen, "PUT") ||
                  is_method(method, mlen, "DELETE") || is_method(method, mlen, "TRACE");
  if (body_kind == 1)
    r->body = lua_tolstring(L, S_BODY, &r->body_len);
  r->fn_body = body_kind == 2;
  r->sink = !lua_isnil(L, S_SINK);
  hidx = lua_isnil(L, S_HEADERS) ? 0 : S_HEADERS;
  if (r->client->jar != NULL)
    hidx = sl_client_cookie_headers(L, r, hidx, target, tlen);
  err = sl_client_build_head(L, r, method, mlen, target, tlen, hidx, body_kind);
  if (err != NULL) {
    sl_client_req_free(r);
    return sl_client_misuse(L, "bad option 'headers' (%s)", err);
  }
  if (r->proxy != NULL && r->proxy->kind == HC_PX_HTTP && !r->tls &&
      sl_client_proxy_head(r) < 0) {
    sl_client_req_free(r);
    return luaL_error(L, "out of memory for an HTTP request");
  }
  lua_settop(L, S_TOP);
  sl_client_req_start(r);
  return req_step(L, r);
}

/* Follows the redirect r answered (sl_client_redirect_location decided it, gave loc): resolves
 * loc against the URL with sluice.url's resolver, and sends the next request from here.
 * 301, 302 and 303 become a GET (a HEAD stays a HEAD) without body; 307 and 308 keep
 * method and body. */
static int req_follow(lua_State *L, hc_req *r, const char *loc, size_t len) {
  size_t blen;
  const char *base = lua_tolstring(L, S_URL, &blen);
  ptrdiff_t n;
  sl_url_err e;
  luaL_Buffer B;
  hc_req *next;
  lua_settop(L, S_TOP);
  if (r->hops >= r->max_redirects) {
    int max = r->max_redirects;
    lua_pushlstring(L, loc, len);
    sl_client_req_free(r);
    return sl_fail(L, "ELOOP", "more than %d redirects (the last to %s)", max,
                   lua_tostring(L, -1));
  }
  n = sl_url_normalize(loc, len, base, blen, luaL_buffinitsize(L, &B, sl_url_bound(len, blen)),
                       &e);
  luaL_pushresultsize(&B, n < 0 ? 0 : (size_t)n);
  if (n < 0) {                 /* sl_client_url_parse says why, as for a URL given */
    lua_pop(L, 1);
    lua_pushlstring(L, loc, len);
  }
  lua_replace(L, S_URL);
  if (r->status != 307 && r->status != 308) {
    lua_pushstring(L, r->is_head ? "HEAD" : "GET");
    lua_replace(L, S_METHOD);
    lua_pushnil(L);
    lua_replace(L, S_BODY);
  }
  next = sl_client_req_alloc();
  if (next == NULL) {
    sl_client_req_free(r);
    return luaL_error(L, "out of memory for an HTTP request");
  }
  next->E = r->E;
  next->task = r->task;
  next->client = r->client;
  next->lim = r->lim;
  next->max_redirects = r->max_redirects;
  next->hops = r->hops + 1;
  next->cross = r->cross;
  next->px_given = r->px_given;
  next->px_opt = r->px_opt;
  next->t_call = r->t_call;
  return req_begin(L, next, r, n < 0);
}

/** client:_send(method, url [, opts]) -> response, or nil, "ENAME: message", "ENAME".
 * One request, redirects followed. Waits. */
static int client_send(lua_State *L) {
  hc_client *c = check_client(L, S_CLIENT, 1);
  size_t mlen;
  const char *method = luaL_checklstring(L, S_METHOD, &mlen);
  hc_limits lim = c->lim;
  int max_body_given = 0, max_redirects = c->max_redirects, px_given = 0;
  hc_proxy *px = NULL;
  sl_task *me;
  hc_req *r;
  luaL_checkstring(L, S_URL);
  if (!sl_http_token(method, mlen))
    sl_client_misuse(L, "bad method '%s' (not an HTTP token)", method);
  if (!lua_isnoneornil(L, S_OPTS)) {
    luaL_checktype(L, S_OPTS, LUA_TTABLE);
    lua_settop(L, S_OPTS);
    max_body_given = sl_client_read_limits(L, S_OPTS, &lim);
    max_redirects = sl_client_opt_int(L, S_OPTS, "max_redirects", max_redirects, 0);
    if (lua_getfield(L, S_OPTS, "proxy") != LUA_TNIL) {
      px = sl_client_proxy_req_opt(L, c);
      px_given = 1;
    }
    lua_pop(L, 1);
    lua_getfield(L, S_OPTS, "headers");
    lua_getfield(L, S_OPTS, "body");
    lua_getfield(L, S_OPTS, "sink");
  }
  lua_settop(L, S_TOP);
  if (!lua_isnil(L, S_HEADERS) && !lua_istable(L, S_HEADERS))
    sl_client_misuse(L, "bad option 'headers' (a table expected, got %s)",
               luaL_typename(L, S_HEADERS));
  if (!lua_isnil(L, S_BODY) && lua_type(L, S_BODY) != LUA_TSTRING && !lua_isfunction(L, S_BODY))
    sl_client_misuse(L, "bad option 'body' (a string or a function expected, got %s)",
               luaL_typename(L, S_BODY));
  if (!lua_isnil(L, S_SINK) && !lua_isfunction(L, S_SINK))
    sl_client_misuse(L, "bad option 'sink' (a function expected, got %s)",
               luaL_typename(L, S_SINK));
  me = sl_task_require(L, "http.get or http.request");
  r = sl_client_req_alloc();
  if (r == NULL)
    return luaL_error(L, "out of memory for an HTTP request");
  r->E = c->E;
  r->task = me;
  r->client = c;
  r->lim = lim;
  if (!lua_isnil(L, S_SINK) && !max_body_given)
    r->lim.max_body = SIZE_MAX;      /* streaming: no limit unless asked for */
  r->max_redirects = max_redirects;
  r->px_given = (uint8_t)px_given;
  r->px_opt = px;
  r->t_call = uv_hrtime();
  return req_begin(L, r, NULL, 0);
}

/* ------------------------------------------------------------- clients */

/* Reads http.client{}'s options into the client (light userdata 1) from the table at 2. */
static int read_opts(lua_State *L) {
  hc_client *c = (hc_client *)lua_touserdata(L, 1);
  sl_client_read_client_opts(L, c, lua_istable(L, 2) ? 2 : 0);
  sl_client_proxy_client_opts(L, c, lua_istable(L, 2) ? 2 : 0);
  return 0;
}

/* The jar of the cookies option (table at 1, pushed): its own for true, a reference to a
 * jar object; NULL for none (or a bad value, left pushed). */
static struct sl_cookie_jar *client_jar(lua_State *L) {
  sl_cookie_jar *j;
  lua_getfield(L, 1, "cookies");
  if (lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
    if ((j = sl_cookie_jar_new()) == NULL)
      luaL_error(L, "out of memory for a cookie jar");
    return j;
  }
  if ((j = sl_cookie_jar_test(L, -1)) != NULL)
    j->refs++;
  return j;
}

/** http.client([opts]) -> a client with its own defaults, limits and connection pool */
static int l_new(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  client_box *box;
  hc_client *c;
  lua_settop(L, 1);
  if (!lua_isnil(L, 1))
    luaL_checktype(L, 1, LUA_TTABLE);
  c = (hc_client *)calloc(1, sizeof(*c));
  if (c == NULL)
    return luaL_error(L, "out of memory for an HTTP client");
  c->lim.timeout = -1;
  c->lim.connect_timeout = 10;
  c->lim.first_byte_timeout = 30;
  c->lim.idle_timeout = 30;
  c->lim.max_body = 16u * 1024 * 1024;
  c->lim.max_header = 64 * 1024;
  c->lim.max_headers = 1000;
  c->lim.decompress = 1;
  c->lim.tls_verify = 1;
  c->max_per_host = 1000;
  c->max_idle = 1000;
  c->keepalive = 15;
  c->max_redirects = 10;
  /* Options first, protected: a bad one frees the record before any handle exists. */
  c->refs = 1;
  lua_pushcfunction(L, read_opts);
  lua_pushlightuserdata(L, c);
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    sl_client_unref(c);
    return lua_error(L);
  }
  if (lua_istable(L, 1) && (c->jar = client_jar(L)) == NULL && lua_toboolean(L, -1)) {
    sl_client_unref(c);
    return sl_client_misuse(L, "bad option 'cookies' (true, false or a jar from "
                            "http.cookiejar() expected, got %s)", luaL_typename(L, -1));
  }
  lua_settop(L, 1);
  box = (client_box *)lua_newuserdatauv(L, sizeof(*box), 0);
  box->c = NULL;
  luaL_setmetatable(L, SL_HTTP_CLIENT_MT);
  c->E = E;
  sl_queue_init(&c->idle);
  c->refs = 2;                 /* the Lua object and the sweep timer */
  uv_timer_init(E->loop, &c->sweep);
  c->sweep.data = c;
  uv_unref((uv_handle_t *)&c->sweep);
  box->c = c;
  return 1;
}

/** client:close() -- closes its connections; later requests raise. Idempotent. */
static int client_close(lua_State *L) {
  client_box *box = check_box(L, 1);
  if (box->c != NULL)
    sl_client_shutdown(box->c);
  return 0;
}

static int client_gc(lua_State *L) {
  client_box *box = check_box(L, 1);
  if (box->c != NULL) {
    sl_client_shutdown(box->c);
    sl_cookie_jar_unref(box->c->jar);  /* no request runs: they hold this object */
    box->c->jar = NULL;
    sl_client_unref(box->c);
    box->c = NULL;
  }
  return 0;
}

/** client:stats() -> counters of the client's pool and of the engine's DNS cache */
static int client_stats(lua_State *L) {
  hc_client *c = check_client(L, 1, 0);
  uint64_t lookups, hits;
  int cached;
  sl_dns_stats(&lookups, &hits, &cached);
  lua_createtable(L, 0, 12);
#define FIELD(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
  FIELD("requests", c->nrequests);
  FIELD("reused", c->nreused);
  FIELD("retries", c->nretries);
  FIELD("connects", c->nconnects);
  FIELD("tls_handshakes", c->ntls);
  FIELD("tls_resumed", c->nresumed);
  FIELD("open", c->nconns);
  FIELD("idle", c->nidle);
  FIELD("origins", c->norigins);
  FIELD("dns_lookups", lookups);
  FIELD("dns_hits", hits);
  FIELD("dns_cached", cached);
#undef FIELD
  return 1;
}

/** client:cookies() -> the client's cookie jar, or nil when it keeps no cookies */
static int client_cookies(lua_State *L) {
  hc_client *c = check_client(L, 1, 0);
  if (c->jar == NULL)
    lua_pushnil(L);
  else
    sl_cookie_jar_push(L, c->jar);
  return 1;
}

static int client_tostring(lua_State *L) {
  client_box *box = check_box(L, 1);
  lua_pushfstring(L, "http client (%s): %p", box->c == NULL || box->c->closed ? "closed" :
                  "open", (void *)box);
  return 1;
}

/* Frees what the module caches (recycled request records, TLS contexts) when the Lua
 * state closes. */
static int module_gc(lua_State *L) {
  (void)L;
  sl_client_free_cached();
  sl_client_tls_cleanup();
  return 0;
}

int luaopen_sluice_http_client(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"new", l_new},
    {"header_values", sl_client_header_values},
    {NULL, NULL}
  };
  static const luaL_Reg methods[] = {
    {"_send", client_send},
    {"close", client_close},
    {"stats", client_stats},
    {"cookies", client_cookies},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", client_gc},
    {"__close", client_close},
    {"__tostring", client_tostring},
    {NULL, NULL}
  };
  sl_dns_init(L);
  sl_client_parse_module_init();
  sl_client_req_register(L);
  sl_newmeta(L, SL_HTTP_CLIENT_MT, methods, meta);
  luaL_newlib(L, funcs);
  sl_cookie_register(L);
  /* A sentinel collected with the state frees the cached request records last. */
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, module_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "_sentinel");
  return 1;
}
