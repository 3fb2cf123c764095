/* http_client_opts.c: the options of http.client{} and of a request (timeouts, limits,
 * TLS), a client's default headers, and the misuse errors they raise at the user's code. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "http_header.h"
#include "sluice.h"

/* Raises a misuse error located at the user's code. Every entry point that reads options
 * (http.client, a request, its body function) is a C function called by one API function
 * of lua/sluice/http/client.lua, itself called by the user: so the user's frame is the one
 * after the C frames at the top of the stack and that one Lua frame. */
int sl_client_misuse(lua_State *L, const char *fmt, ...) {
  lua_Debug ar;
  va_list ap;
  int level = 1, wrapper = 1;
  while (lua_getstack(L, level, &ar)) {
    lua_getinfo(L, "S", &ar);
    if (strcmp(ar.what, "C") != 0 && wrapper-- == 0)
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

/* opts[name] as seconds: nil keeps *v, false means none (-1). */
void sl_client_opt_seconds(lua_State *L, int idx, const char *name, double *v) {
  int t = lua_getfield(L, idx, name);
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    *v = -1;
  } else if (t != LUA_TNIL) {
    double s = lua_tonumber(L, -1);
    if (t != LUA_TNUMBER || isnan(s) || s < 0)
      sl_client_misuse(L, "bad option '%s' (a non-negative number of seconds or false "
                       "expected, got %s)", name,
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
      sl_client_misuse(L, "bad option '%s' (a non-negative integer%s expected)", name,
                 allow_none ? " or false" : "");
    *v = (size_t)n;
  }
  lua_pop(L, 1);
  return given;
}

int sl_client_opt_int(lua_State *L, int idx, const char *name, int def, int min) {
  int isint;
  lua_Integer n;
  if (lua_getfield(L, idx, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  n = lua_tointegerx(L, -1, &isint);
  if (!isint || n < min || n > INT32_MAX)
    sl_client_misuse(L, "bad option '%s' (an integer >= %d expected)", name, min);
  lua_pop(L, 1);
  return (int)n;
}

/* The timeouts and limits of opts at idx over *lim. Returns whether max_body was given. */
int sl_client_read_limits(lua_State *L, int idx, hc_limits *lim) {
  int given;
  sl_client_opt_seconds(L, idx, "timeout", &lim->timeout);
  sl_client_opt_seconds(L, idx, "connect_timeout", &lim->connect_timeout);
  sl_client_opt_seconds(L, idx, "first_byte_timeout", &lim->first_byte_timeout);
  sl_client_opt_seconds(L, idx, "idle_timeout", &lim->idle_timeout);
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
      sl_client_misuse(L, "bad option 'ca_file' (a file name or false expected, got %s)",
             luaL_typename(L, -1));
    lim->tls_ctx = NULL;       /* false: the system's CAs */
    if (lua_type(L, -1) == LUA_TSTRING &&
        (lim->tls_ctx = sl_client_tls_ctx(lua_tostring(L, -1), err, sizeof err)) == NULL)
      sl_client_misuse(L, "bad option 'ca_file' (%s)", err);
  }
  lua_pop(L, 3);
  return given;
}

static const char *const builtin_headers[][2] = {
  {"User-Agent", "sluice/0.1"},
  {"Accept", "*/*"},
  {"Accept-Encoding", HC_ACCEPT_ENCODING},
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
      if (lua_type(L, -2) != LUA_TSTRING || !sl_http_token(name, nlen))
        sl_client_misuse(L, "bad option 'headers' (bad header name)");
      if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
        v = lua_tolstring(L, -1, &vlen);
      else if (!(lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
        sl_client_misuse(L, "bad option 'headers' (header '%s' must be a string or false)",
                         name);
      if (v != NULL && !sl_http_value_ok(v, vlen))
        sl_client_misuse(L, "bad option 'headers' (header '%s' has a control character in "
                         "its value)", name);
      if (default_header(c, name, nlen, v, vlen) < 0)
        sl_client_misuse(L, "bad option 'headers' (at most 64 default headers)");
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


/* Reads http.client{}'s options (the table at idx, or none when idx is 0) into c, whose
 * defaults are set; raises on a bad one. Touches no handle: l_new calls it protected and
 * frees c on error. */
void sl_client_read_client_opts(lua_State *L, hc_client *c, int idx) {
  int top = lua_gettop(L);
  if (idx != 0) {
    sl_client_read_limits(L, idx, &c->lim);
    c->max_per_host = sl_client_opt_int(L, idx, "max_per_host", c->max_per_host, 1);
    /* Fewer idle slots than connections per host would close and reopen connections
     * at every request once the limit is above it (73k connects for 200k GETs at 5000). */
    if (c->max_per_host > c->max_idle)
      c->max_idle = c->max_per_host;
    c->max_idle = sl_client_opt_int(L, idx, "max_idle", c->max_idle, 0);
    c->max_redirects = sl_client_opt_int(L, idx, "max_redirects", c->max_redirects, 0);
    sl_client_opt_seconds(L, idx, "keepalive", &c->keepalive);
    if (c->keepalive < 0)
      c->keepalive = 0;
    lua_getfield(L, idx, "headers");
    if (!lua_isnil(L, -1) && !lua_istable(L, -1))
      sl_client_misuse(L, "bad option 'headers' (a table expected, got %s)", luaL_typename(L, -1));
  } else {
    lua_pushnil(L);
  }
  read_default_headers(L, c, lua_istable(L, -1) ? lua_gettop(L) : 0);
  lua_settop(L, top);
}
