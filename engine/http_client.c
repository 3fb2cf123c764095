/* http_client.c: require "sluice.http.client_core", the C half of the HTTP client: client
 * objects (defaults, limits, a keep-alive pool) and client:_send, a request as one wait. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dns.h"
#include "http_client.h"
#include "sluice.h"

/* The Lua object: a pointer to the C record, which outlives it until its connections and
 * timer are closed (hc_client_unref). NULL once collected. */
typedef struct client_box {
  hc_client *c;
} client_box;

/* The stack of client:_send while its request runs: fixed slots, so the continuations
 * know where things are. Slot 8 holds a body string the waker pushed, or the body
 * function's chunk being written. */
enum { S_CLIENT = 1, S_METHOD, S_URL, S_OPTS, S_HEADERS, S_BODY, S_SINK, S_TOP = S_SINK };

/* Raises a misuse error located at the caller's code: the first Lua function on the stack
 * that is not part of the client's own Lua half (http.get calls _send from there). */
static int misuse(lua_State *L, const char *fmt, ...) {
  lua_Debug ar;
  va_list ap;
  int level = 1;
  while (lua_getstack(L, level, &ar)) {
    lua_getinfo(L, "S", &ar);
    if (strcmp(ar.what, "C") != 0 && strstr(ar.source, "sluice/http/client.lua") == NULL)
      break;
    level++;
  }
  luaL_where(L, level);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}

static client_box *check_box(lua_State *L, int idx) {
  return (client_box *)luaL_checkudata(L, idx, SL_HTTP_CLIENT_MT);
}

static hc_client *check_client(lua_State *L, int idx) {
  client_box *box = check_box(L, idx);
  if (box->c == NULL || box->c->closed)
    misuse(L, "attempt to use a closed HTTP client");
  return box->c;
}

/* --------------------------------------------------------------- options */

/* opts[name] as seconds: nil keeps *v, false means none (-1). */
static void opt_seconds(lua_State *L, int idx, const char *name, double *v) {
  int t = lua_getfield(L, idx, name);
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    *v = -1;
  } else if (t != LUA_TNIL) {
    double s = lua_tonumber(L, -1);
    if (t != LUA_TNUMBER || isnan(s) || s < 0)
      misuse(L, "bad option '%s' (a non-negative number of seconds or false expected, "
                 "got %s)", name,
                 t == LUA_TNUMBER ? "a negative number" : luaL_typename(L, -1));
    *v = s;
  }
  lua_pop(L, 1);
}

/* opts[name] as a byte count: nil keeps *v, false (or math.huge) means none. Returns
 * whether the option was given. */
static int opt_size(lua_State *L, int idx, const char *name, size_t *v, int allow_none) {
  int t = lua_getfield(L, idx, name);
  int given = t != LUA_TNIL;
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1) && allow_none) {
    *v = SIZE_MAX;
  } else if (t == LUA_TNUMBER && lua_tonumber(L, -1) == HUGE_VAL && allow_none) {
    *v = SIZE_MAX;
  } else if (given) {
    int isint;
    lua_Integer n = lua_tointegerx(L, -1, &isint);
    if (!isint || n < 0)
      misuse(L, "bad option '%s' (a non-negative integer%s expected)", name,
                 allow_none ? " or false" : "");
    *v = (size_t)n;
  }
  lua_pop(L, 1);
  return given;
}

static int opt_int(lua_State *L, int idx, const char *name, int def, int min) {
  int isint;
  lua_Integer n;
  if (lua_getfield(L, idx, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  n = lua_tointegerx(L, -1, &isint);
  if (!isint || n < min || n > INT32_MAX)
    misuse(L, "bad option '%s' (an integer >= %d expected)", name, min);
  lua_pop(L, 1);
  return (int)n;
}

/* The timeouts and limits of opts at idx over *lim. Returns whether max_body was given. */
static int read_limits(lua_State *L, int idx, hc_limits *lim) {
  int given;
  opt_seconds(L, idx, "timeout", &lim->timeout);
  opt_seconds(L, idx, "connect_timeout", &lim->connect_timeout);
  opt_seconds(L, idx, "first_byte_timeout", &lim->first_byte_timeout);
  opt_seconds(L, idx, "idle_timeout", &lim->idle_timeout);
  given = opt_size(L, idx, "max_body", &lim->max_body, 1);
  opt_size(L, idx, "max_header", &lim->max_header, 0);
  opt_size(L, idx, "max_headers", &lim->max_headers, 0);
  if (lua_getfield(L, idx, "decompress") != LUA_TNIL)
    lim->decompress = lua_toboolean(L, -1);
  if (lua_getfield(L, idx, "tls_verify") != LUA_TNIL)
    lim->tls_verify = lua_toboolean(L, -1);
  if (lua_getfield(L, idx, "ca_file") != LUA_TNIL) {
    char err[512];
    if (lua_type(L, -1) != LUA_TSTRING && lua_toboolean(L, -1))
      misuse(L, "bad option 'ca_file' (a file name or false expected, got %s)",
             luaL_typename(L, -1));
    lim->tls_ctx = NULL;       /* false: the system's CAs */
    if (lua_type(L, -1) == LUA_TSTRING &&
        (lim->tls_ctx = hc_tls_ctx(lua_tostring(L, -1), err, sizeof err)) == NULL)
      misuse(L, "bad option 'ca_file' (%s)", err);
  }
  lua_pop(L, 3);
  return given;
}

/* ------------------------------------------------------------- requests */

static int req_step(lua_State *L, hc_req *r);

/* A cancellation or the total deadline took the task away: let go of everything. The
 * continuation still runs (catch_cancel) and frees the record. */
static void req_cleanup(sl_task *t, void *data) {
  hc_req *r = (hc_req *)data;
  (void)t;
  r->waiting = 0;
  hc_req_abort(r);
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  hc_req *r = (hc_req *)ctx;
  sl_task *me = sl_task_current(L);
  (void)status;
  r->waiting = 0;
  if (me->wake == SL_WAKE_CANCEL) {
    hc_req_abort(r);
    hc_req_free(r);
    sl_push_cancelled(L);
    return lua_error(L);
  }
  if (me->wake == SL_WAKE_TIMEOUT) {
    double t = r->lim.timeout;
    hc_req_abort(r);
    hc_req_free(r);
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
    uint64_t now = uv_hrtime(), end = r->t_start + (uint64_t)(r->lim.timeout * 1e9);
    timeout = end > now ? (double)(end - now) / 1e9 : 0;
  }
  r->waiting = 1;
  me->catch_cancel = 1;
  return sl_task_wait(L, me, req_cleanup, r, timeout, send_k, (lua_KContext)r);
}

/* The request ended: its response table, or the fail triple. */
static int req_finish(lua_State *L, hc_req *r) {
  int n;
  if (r->err_name != NULL) {
    n = sl_fail(L, r->err_name, "%s", r->err_msg);
    hc_req_free(r);
    return n;
  }
  n = hc_push_response(L, r, S_URL, r->pushed ? S_TOP + 1 : 0);
  hc_req_free(r);
  return n;
}

/* After a call of the sink or the body function: its error ends the request and goes on
 * up (a cancellation included), with the connection closed. */
static void after_call(lua_State *L, hc_req *r, int status) {
  if (status != LUA_OK && status != LUA_YIELD) {
    hc_req_abort(r);
    hc_req_free(r);
    lua_error(L);
  }
}

/* The continuation of a sink that waited. */
static int sink_k(lua_State *L, int status, lua_KContext ctx) {
  hc_req *r = (hc_req *)ctx;
  after_call(L, r, status);
  lua_settop(L, S_TOP);
  return req_step(L, r);
}

/* Pushes the sink and the next piece of body for it (hc_sink_piece). Returns 0 when there
 * is nothing to call it with (the pending bytes decoded to nothing more, or failed to
 * decode: r->err_name is then set). */
static int next_piece(lua_State *L, hc_req *r) {
  const char *piece;
  long n;
  lua_settop(L, S_TOP);
  n = hc_sink_piece(r, &piece);
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
    hc_req_write_body(r, NULL, 0, 1);
    lua_settop(L, S_TOP);
    return;
  }
  if (lua_type(L, S_TOP + 1) != LUA_TSTRING) {
    const char *tn = luaL_typename(L, S_TOP + 1);
    hc_req_abort(r);
    hc_req_free(r);
    misuse(L, "the body function must return strings, then nil (got a %s)", tn);
  }
  s = lua_tolstring(L, S_TOP + 1, &len);
  hc_req_write_body(r, s, len, 0);
}

/* The continuation of a body function that waited. */
static int body_k(lua_State *L, int status, lua_KContext ctx) {
  hc_req *r = (hc_req *)ctx;
  after_call(L, r, status);
  send_chunk(L, r);
  return req_step(L, r);
}

/* Runs the request on from wherever it stands: the sink, the body function, the end, or
 * another wait. A sink or body function that returns without waiting brings it back to
 * this loop (no recursion, however many chunks); one that waits, to its continuation. */
static int req_step(lua_State *L, hc_req *r) {
  for (;;) {
    if (r->sink && (r->paused || r->done) && hc_sink_pending(r) && r->err_name == NULL) {
      if (next_piece(L, r))
        after_call(L, r, lua_pcallk(L, 1, 0, 0, (lua_KContext)r, sink_k));
      lua_settop(L, S_TOP);
      continue;
    }
    if (r->done)
      return req_finish(L, r);
    if (r->err_name != NULL) { /* a decoding failure found while feeding the sink */
      hc_req_abort(r);
      r->done = 1;
      continue;
    }
    if (r->fn_body && r->ready && !r->body_sent && !(r->conn != NULL && r->conn->writing)) {
      lua_settop(L, S_TOP);
      lua_pushvalue(L, S_BODY);
      after_call(L, r, lua_pcallk(L, 0, 1, 0, (lua_KContext)r, body_k));
      send_chunk(L, r);
      continue;
    }
    if (r->sink && r->paused) {
      hc_req_resume_reading(r);
      continue;
    }
    return req_wait(L, r);
  }
}

static int is_method(const char *m, size_t n, const char *name) {
  return strlen(name) == n && memcmp(m, name, n) == 0;
}

/** client:_send(method, url [, opts]) -> response, or nil, "ENAME: message", "ENAME".
 * One request, no redirects (the Lua half follows them). Waits. */
static int client_send(lua_State *L) {
  hc_client *c = check_client(L, S_CLIENT);
  size_t mlen, ulen, tlen;
  const char *method = luaL_checklstring(L, S_METHOD, &mlen);
  const char *url = luaL_checklstring(L, S_URL, &ulen);
  const char *target, *fail, *err;
  char why[160];
  hc_limits lim = c->lim;
  int body_kind = 0, max_body_given = 0, max_redirects = c->max_redirects;
  sl_task *me;
  hc_req *r;
  if (!hc_token_valid(method, mlen))
    misuse(L, "bad method '%s' (not an HTTP token)", method);
  if (!lua_isnoneornil(L, S_OPTS)) {
    luaL_checktype(L, S_OPTS, LUA_TTABLE);
    lua_settop(L, S_OPTS);
    max_body_given = read_limits(L, S_OPTS, &lim);
    max_redirects = opt_int(L, S_OPTS, "max_redirects", max_redirects, 0);
    lua_getfield(L, S_OPTS, "headers");
    lua_getfield(L, S_OPTS, "body");
    lua_getfield(L, S_OPTS, "sink");
  }
  lua_settop(L, S_TOP);
  if (!lua_isnil(L, S_HEADERS) && !lua_istable(L, S_HEADERS))
    misuse(L, "bad option 'headers' (a table expected, got %s)",
               luaL_typename(L, S_HEADERS));
  if (lua_type(L, S_BODY) == LUA_TSTRING)
    body_kind = 1;
  else if (lua_isfunction(L, S_BODY))
    body_kind = 2;
  else if (!lua_isnil(L, S_BODY))
    misuse(L, "bad option 'body' (a string or a function expected, got %s)",
               luaL_typename(L, S_BODY));
  if (!lua_isnil(L, S_SINK) && !lua_isfunction(L, S_SINK))
    misuse(L, "bad option 'sink' (a function expected, got %s)",
               luaL_typename(L, S_SINK));
  me = sl_task_require(L, "http.get or http.request");
  r = hc_req_alloc();
  if (r == NULL)
    return luaL_error(L, "out of memory for an HTTP request");
  r->E = c->E;
  r->task = me;
  r->client = c;
  r->lim = lim;
  fail = hc_url_parse(r, url, ulen, &target, &tlen, why, sizeof why);
  if (fail != NULL) {
    hc_req_free(r);
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
  r->follows = max_redirects > 0;
  if (r->sink && !max_body_given)
    r->lim.max_body = SIZE_MAX;      /* streaming: no limit unless asked for */
  err = hc_build_head(L, r, method, mlen, target, tlen,
                      lua_isnil(L, S_HEADERS) ? 0 : S_HEADERS, body_kind);
  if (err != NULL) {
    hc_req_free(r);
    return misuse(L, "bad option 'headers' (%s)", err);
  }
  lua_settop(L, S_TOP);
  hc_req_start(r);
  return req_step(L, r);
}

/* ------------------------------------------------------------- clients */

static const char *const builtin_headers[][2] = {
  {"User-Agent", "sluice/0.1"},
  {"Accept", "*/*"},
  {"Accept-Encoding", "gzip, deflate"},
};

/* Adds (or replaces, or with value NULL removes) a default header of the client.
 * Content-Length and Transfer-Encoding are ignored, as in a request's headers: the body
 * decides them. */
static int default_header(hc_client *c, const char *name, size_t nlen, const char *v,
                          size_t vlen) {
  int i;
  char *lname = (char *)malloc(nlen + 1), *line;
  if (lname == NULL)
    return -1;
  for (i = 0; i < (int)nlen; i++)
    lname[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
  lname[nlen] = '\0';
  if (strcmp(lname, "content-length") == 0 || strcmp(lname, "transfer-encoding") == 0) {
    free(lname);
    return 0;
  }
  for (i = 0; i < c->ndh; i++)
    if (strcmp(c->dh[i].lname, lname) == 0)
      break;
  if (i < c->ndh) {            /* replace or remove an earlier one */
    free(c->dh[i].lname);
    free(c->dh[i].line);
    c->dh[i] = c->dh[--c->ndh];
  }
  if (v == NULL) {
    free(lname);
    return 0;
  }
  line = (char *)malloc(nlen + vlen + 5);
  if (line == NULL || c->ndh >= 64) {
    free(lname);
    free(line);
    return -1;
  }
  memcpy(line, name, nlen);
  memcpy(line + nlen, ": ", 2);
  memcpy(line + nlen + 2, v, vlen);
  memcpy(line + nlen + 2 + vlen, "\r\n", 3);
  c->dh[c->ndh].lname = lname;
  c->dh[c->ndh].line = line;
  c->dh[c->ndh].line_len = nlen + vlen + 4;
  c->ndh++;
  return 0;
}

/* The client's default headers: the built-in ones, then opts.headers (at idx) over them. */
static void read_default_headers(lua_State *L, hc_client *c, int idx) {
  size_t i;
  int j;
  c->dh_host = -1;
  c->dh = (hc_default_header *)calloc(64, sizeof(*c->dh));
  if (c->dh == NULL)
    luaL_error(L, "out of memory");
  for (i = 0; i < sizeof builtin_headers / sizeof builtin_headers[0]; i++) {
    if (i == 2 && !c->lim.decompress)
      continue;
    default_header(c, builtin_headers[i][0], strlen(builtin_headers[i][0]),
                   builtin_headers[i][1], strlen(builtin_headers[i][1]));
  }
  if (idx != 0) {
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      size_t nlen, vlen = 0;
      const char *name = lua_tolstring(L, -2, &nlen), *v = NULL;
      if (lua_type(L, -2) != LUA_TSTRING || !hc_token_valid(name, nlen))
        misuse(L, "bad option 'headers' (bad header name)");
      if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
        v = lua_tolstring(L, -1, &vlen);
      else if (!(lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
        misuse(L, "bad option 'headers' (header '%s' must be a string or false)", name);
      if (v != NULL && !hc_value_valid(v, vlen))
        misuse(L, "bad option 'headers' (header '%s' has a control character in its value)",
               name);
      if (default_header(c, name, nlen, v, vlen) < 0)
        misuse(L, "bad option 'headers' (at most 64 default headers)");
      lua_pop(L, 1);
    }
  }
  for (j = 0; j < c->ndh; j++) {
    if (strcmp(c->dh[j].lname, "host") == 0)
      c->dh_host = j;
    if (sl_buf_add(&c->dh_block, c->dh[j].line, c->dh[j].line_len) < 0)
      luaL_error(L, "out of memory");
  }
}

/** http.client([opts]) -> a client with its own defaults, limits and connection pool */
static int l_new(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  client_box *box;
  hc_client *c;
  lua_settop(L, 1);
  if (!lua_isnil(L, 1))
    luaL_checktype(L, 1, LUA_TTABLE);
  box = (client_box *)lua_newuserdatauv(L, sizeof(*box), 0);
  box->c = NULL;
  luaL_setmetatable(L, SL_HTTP_CLIENT_MT);
  c = (hc_client *)calloc(1, sizeof(*c));
  if (c == NULL)
    return luaL_error(L, "out of memory for an HTTP client");
  c->E = E;
  sl_queue_init(&c->idle);
  c->refs = 2;                 /* the Lua object and the sweep timer */
  uv_timer_init(E->loop, &c->sweep);
  c->sweep.data = c;
  uv_unref((uv_handle_t *)&c->sweep);
  box->c = c;
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
  if (!lua_isnil(L, 1)) {
    read_limits(L, 1, &c->lim);
    c->max_per_host = opt_int(L, 1, "max_per_host", c->max_per_host, 1);
    /* Fewer idle slots than connections per host would close and reopen connections
     * at every request once the limit is above it (73k connects for 200k GETs at 5000). */
    if (c->max_per_host > c->max_idle)
      c->max_idle = c->max_per_host;
    c->max_idle = opt_int(L, 1, "max_idle", c->max_idle, 0);
    c->max_redirects = opt_int(L, 1, "max_redirects", c->max_redirects, 0);
    opt_seconds(L, 1, "keepalive", &c->keepalive);
    if (c->keepalive < 0)
      c->keepalive = 0;
    lua_getfield(L, 1, "headers");
    if (!lua_isnil(L, -1) && !lua_istable(L, -1))
      misuse(L, "bad option 'headers' (a table expected, got %s)", luaL_typename(L, -1));
  } else {
    lua_pushnil(L);
  }
  read_default_headers(L, c, lua_istable(L, -1) ? lua_gettop(L) : 0);
  lua_settop(L, 2);
  return 1;
}

/** client:_max_redirects() -> the client's max_redirects (for the Lua half) */
static int client_max_redirects(lua_State *L) {
  lua_pushinteger(L, check_client(L, 1)->max_redirects);
  return 1;
}

/** client:close() -- closes its connections; later requests raise. Idempotent. */
static int client_close(lua_State *L) {
  client_box *box = check_box(L, 1);
  if (box->c != NULL)
    hc_client_shutdown(box->c);
  return 0;
}

static int client_gc(lua_State *L) {
  client_box *box = check_box(L, 1);
  if (box->c != NULL) {
    hc_client_shutdown(box->c);
    hc_client_unref(box->c);
    box->c = NULL;
  }
  return 0;
}

/** client:stats() -> counters of the client's pool and of the engine's DNS cache */
static int client_stats(lua_State *L) {
  hc_client *c = check_client(L, 1);
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
  hc_free_cached();
  hc_tls_cleanup();
  return 0;
}

int luaopen_sluice_http_client(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"new", l_new},
    {"header_values", hc_header_values},
    {NULL, NULL}
  };
  static const luaL_Reg methods[] = {
    {"_send", client_send},
    {"_max_redirects", client_max_redirects},
    {"close", client_close},
    {"stats", client_stats},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", client_gc},
    {"__close", client_close},
    {"__tostring", client_tostring},
    {NULL, NULL}
  };
  sl_dns_init(L);
  hc_parse_module_init();
  hc_req_register(L);
  sl_newmeta(L, SL_HTTP_CLIENT_MT, methods, meta);
  luaL_newlib(L, funcs);
  /* A sentinel collected with the state frees the cached request records last. */
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, module_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "_sentinel");
  return 1;
}
