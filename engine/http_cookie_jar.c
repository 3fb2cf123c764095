/* http_cookie_jar.c: the cookie jar as a Lua object (http.cookiejar, shared by the clients
 * given it), and its files in the Netscape cookies.txt format curl reads and writes. Files
 * are read and written on the loop's thread: a jar holds at most a few thousand cookies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_cookie.h"
#include "sluice.h"
#include "url.h"

/* The Lua object; its user value 1 is the file given to http.cookiejar{file = ...}. */
typedef struct jar_box {
  sl_cookie_jar *j;
} jar_box;

static int64_t now_s(void) {
  return (int64_t)time(NULL);
}

sl_cookie_jar *sl_cookie_jar_test(lua_State *L, int idx) {
  jar_box *b = (jar_box *)luaL_testudata(L, idx, SL_COOKIE_JAR_MT);
  return b != NULL ? b->j : NULL;
}

sl_cookie_jar *sl_cookie_jar_check(lua_State *L, int idx) {
  return ((jar_box *)luaL_checkudata(L, idx, SL_COOKIE_JAR_MT))->j;
}

const char *sl_cookie_url_path(const char *url, size_t n, size_t *plen) {
  const char *end = url + n, *p = url, *s;
  const char *sep = strstr(url, "://");
  if (sep != NULL && sep < end)
    for (p = sep + 3; p < end && *p != '/' && *p != '?' && *p != '#'; p++)
      ;
  for (s = p; s < end && *s != '?' && *s != '#'; s++)
    ;
  *plen = (size_t)(s - p);
  return p;
}

/* The host (lower case, IPv6 without brackets), path and scheme of the URL argument at idx,
 * as the client sees them; raises an argument error for anything but http(s) URLs. */
static void url_arg(lua_State *L, int idx, char *host, const char **path, size_t *plen,
                    int *secure) {
  size_t n;
  const char *u = luaL_checklstring(L, idx, &n), *s = strstr(u, "://"), *a;
  sl_url_auth au;
  sl_url_err e;
  if (s == NULL || !((s - u == 4 && strncasecmp(u, "http", 4) == 0) ||
                     (s - u == 5 && strncasecmp(u, "https", 5) == 0)))
    luaL_argerror(L, idx, "an http:// or https:// URL expected");
  *secure = s - u == 5;
  for (a = s + 3; *a != '\0' && *a != '/' && *a != '?' && *a != '#'; a++)
    ;
  if (sl_url_authority(s + 3, (size_t)(a - (s + 3)), &au, &e) < 0)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s in URL", e.why));
  if (au.host[0] == '[') {
    memcpy(host, au.host + 1, au.host_len - 2);
    host[au.host_len - 2] = '\0';
  } else {
    memcpy(host, au.host, au.host_len + 1);
  }
  *path = sl_cookie_url_path(u, n, plen);
}

/* ------------------------------------------------------------- files */

/* Reads a cookies.txt file into j (as curl does: "#HttpOnly_" marks HttpOnly, other lines
 * starting with '#' and malformed lines are skipped). Returns the cookies added, or -1 with
 * errno set when the file cannot be read. */
static int load_file(sl_cookie_jar *j, const char *path) {
  FILE *f = fopen(path, "r");
  char line[2 * SL_COOKIE_MAX_SIZE];  /* a cookie, its path and domain fit */
  int64_t now = now_s();
  int added = 0, skipping = 0;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    size_t n = strlen(line);
    char *fld[7], *p = line;
    int nf = 0, http_only = 0;
    long long exp;
    if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
      skipping = 1;            /* a line too long for any cookie: skip it whole */
      continue;
    }
    if (skipping) {
      skipping = 0;
      continue;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (strncmp(p, "#HttpOnly_", 10) == 0) {
      http_only = 1;
      p += 10;
    } else if (p[0] == '#' || p[0] == '\0') {
      continue;
    }
    while (nf < 7) {
      fld[nf++] = p;
      if ((p = strchr(p, '\t')) == NULL)
        break;
      *p++ = '\0';
    }
    if (p != NULL && nf == 7 && strchr(p, '\t') != NULL)
      continue;                /* more than 7 fields */
    if (nf == 6)
      fld[nf++] = (char *)"";  /* curl writes an empty value so */
    if (nf != 7 || sscanf(fld[4], "%lld", &exp) != 1)
      continue;
    if (exp > SL_COOKIE_MAX_EXPIRY)
      exp = SL_COOKIE_MAX_EXPIRY;
    if (fld[0][0] == '.')
      fld[0]++;
    for (p = fld[0]; *p != '\0'; p++)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p + 32);
    if (sl_cookie_add(j, fld[0], strcasecmp(fld[1], "TRUE") != 0, fld[2],
                      strcasecmp(fld[3], "TRUE") == 0, http_only,
                      exp == 0 ? INT64_MAX : (int64_t)exp, fld[5], fld[6], now) > 0)
      added++;
  }
  if (ferror(f)) {
    int e = errno;
    fclose(f);
    errno = e;
    return -1;
  }
  fclose(f);
  return added;
}

/* Writes j to path through a temporary file renamed over it, so a reader (or a crash) never
 * sees half a file. Returns 0, or -1 with errno set. */
static int save_file(sl_cookie_jar *j, const char *path) {
  sl_buf tmp = {0};
  sl_queue *q;
  FILE *f;
  int e = 0;
  if (sl_buf_add(&tmp, path, strlen(path)) < 0 || sl_buf_add(&tmp, ".tmp", 5) < 0) {
    sl_buf_free(&tmp);
    errno = ENOMEM;
    return -1;
  }
  sl_cookie_purge(j, now_s());
  if ((f = fopen(tmp.p, "w")) == NULL) {
    e = errno;
    sl_buf_free(&tmp);
    errno = e;
    return -1;
  }
  fputs("# Netscape HTTP Cookie File\n# https://curl.se/docs/http-cookies.html\n"
        "# This file was generated by sluice. Edit at your own risk.\n\n", f);
  SL_QUEUE_FOREACH(q, &j->all) {
    sl_cookie *c = SL_QUEUE_DATA(q, sl_cookie, node);
    fprintf(f, "%s%s%s\t%s\t%s\t%s\t%lld\t%s\t%s\n", c->http_only ? "#HttpOnly_" : "",
            c->host_only ? "" : ".", c->dom->name, c->host_only ? "FALSE" : "TRUE", c->path,
            c->secure ? "TRUE" : "FALSE",
            c->expiry == INT64_MAX ? 0LL : (long long)c->expiry, c->name, c->value);
  }
  if (ferror(f))
    e = errno != 0 ? errno : EIO;
  if (fclose(f) != 0 && e == 0)
    e = errno;
  if (e == 0 && rename(tmp.p, path) != 0)
    e = errno;
  if (e != 0)
    remove(tmp.p);
  sl_buf_free(&tmp);
  errno = e;
  return e != 0 ? -1 : 0;
}

static int fail_errno(lua_State *L, const char *what, const char *path) {
  int e = uv_translate_sys_error(errno);
  return sl_fail(L, uv_err_name(e), "cannot %s %s: %s", what, path, uv_strerror(e));
}

/* ------------------------------------------------------------- Lua */

static jar_box *check_box(lua_State *L) {
  return (jar_box *)luaL_checkudata(L, 1, SL_COOKIE_JAR_MT);
}

static int opt_limit(lua_State *L, int idx, const char *name, int def) {
  int v = def;
  lua_getfield(L, idx, name);
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 1000000)
      luaL_error(L, "bad option '%s' (an integer from 0 to 1000000 expected)", name);
    v = (int)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/** http.cookiejar([opts]) -> a cookie jar; opts: file (loaded if it exists, the default of
 * jar:save), max_cookies (3000), max_per_domain (50). */
static int l_cookiejar(lua_State *L) {
  jar_box *b;
  int max_total = 3000, max_dom = 50;
  lua_settop(L, 1);
  if (!lua_isnil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    max_total = opt_limit(L, 1, "max_cookies", max_total);
    max_dom = opt_limit(L, 1, "max_per_domain", max_dom);
    lua_getfield(L, 1, "file");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "bad option 'file' (a string expected, got %s)", luaL_typename(L, -1));
  } else {
    lua_pushnil(L);
  }
  b = (jar_box *)lua_newuserdatauv(L, sizeof(*b), 1);
  b->j = NULL;
  luaL_setmetatable(L, SL_COOKIE_JAR_MT);
  if ((b->j = sl_cookie_jar_new()) == NULL)
    return luaL_error(L, "out of memory for a cookie jar");
  b->j->max_total = max_total;
  b->j->max_per_domain = max_dom;
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  if (lua_isstring(L, 2) && load_file(b->j, lua_tostring(L, 2)) < 0 && errno != ENOENT) {
    fail_errno(L, "read", lua_tostring(L, 2));
    return luaL_error(L, "%s", lua_tostring(L, -2));
  }
  return 1;
}

void sl_cookie_jar_push(lua_State *L, sl_cookie_jar *j) {
  jar_box *b = (jar_box *)lua_newuserdatauv(L, sizeof(*b), 1);
  b->j = j;
  j->refs++;
  luaL_setmetatable(L, SL_COOKIE_JAR_MT);
}

/** jar:get(url) -> the Cookie header's value a request to url sends, or nil */
static int jar_get(lua_State *L) {
  sl_cookie_jar *j = check_box(L)->j;
  char host[SL_URL_MAX_HOST + 1];
  const char *path;
  size_t plen;
  int secure, n;
  sl_buf out = {0};
  url_arg(L, 2, host, &path, &plen, &secure);
  n = sl_cookie_header(j, host, path, plen, secure, now_s(), &out);
  if (n < 0) {
    sl_buf_free(&out);
    return luaL_error(L, "out of memory");
  }
  if (n == 0)
    lua_pushnil(L);
  else
    lua_pushlstring(L, out.p, out.len);
  sl_buf_free(&out);
  return 1;
}

/** jar:set(url, set_cookie) -> true, or false and why the jar ignored it */
static int jar_set(lua_State *L) {
  sl_cookie_jar *j = check_box(L)->j;
  char host[SL_URL_MAX_HOST + 1];
  const char *path, *why, *sc;
  size_t plen, n;
  int secure, r;
  url_arg(L, 2, host, &path, &plen, &secure);
  sc = luaL_checklstring(L, 3, &n);
  r = sl_cookie_set(j, host, path, plen, secure, sc, n, now_s(), &why);
  if (r < 0)
    return luaL_error(L, "out of memory");
  lua_pushboolean(L, r);
  if (r)
    return 1;
  lua_pushstring(L, why);
  return 2;
}

/** jar:clear() -- removes every cookie */
static int jar_clear(lua_State *L) {
  sl_cookie_jar_clear(check_box(L)->j);
  return 0;
}

/** jar:list() -> a list of the cookies, oldest first, each a table of its fields */
static int jar_list(lua_State *L) {
  static const char *const samesite[] = {NULL, "Strict", "Lax", "None"};
  sl_cookie_jar *j = check_box(L)->j;
  sl_queue *q;
  lua_Integer i = 0;
  sl_cookie_purge(j, now_s());
  lua_createtable(L, j->n, 0);
  SL_QUEUE_FOREACH(q, &j->all) {
    sl_cookie *c = SL_QUEUE_DATA(q, sl_cookie, node);
    lua_createtable(L, 0, 10);
    lua_pushlstring(L, c->name, c->name_len);
    lua_setfield(L, -2, "name");
    lua_pushlstring(L, c->value, c->value_len);
    lua_setfield(L, -2, "value");
    lua_pushlstring(L, c->dom->name, c->dom->len);
    lua_setfield(L, -2, "domain");
    lua_pushlstring(L, c->path, c->path_len);
    lua_setfield(L, -2, "path");
    lua_pushboolean(L, c->host_only);
    lua_setfield(L, -2, "host_only");
    lua_pushboolean(L, c->secure);
    lua_setfield(L, -2, "secure");
    lua_pushboolean(L, c->http_only);
    lua_setfield(L, -2, "http_only");
    if (c->expiry != INT64_MAX) {
      lua_pushinteger(L, (lua_Integer)c->expiry);
      lua_setfield(L, -2, "expires");
    }
    if (c->samesite != 0) {
      lua_pushstring(L, samesite[c->samesite]);
      lua_setfield(L, -2, "samesite");
    }
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* The path argument at 2, or the jar's own file. */
static const char *file_arg(lua_State *L, const char *fname) {
  if (!lua_isnoneornil(L, 2))
    return luaL_checkstring(L, 2);
  lua_getiuservalue(L, 1, 1);
  if (!lua_isstring(L, -1))
    luaL_error(L, "bad argument #1 to '%s' (a file name expected: the jar has none)", fname);
  return lua_tostring(L, -1);
}

/** jar:save([path]) -> true, or nil, "ENAME: message", "ENAME" */
static int jar_save(lua_State *L) {
  sl_cookie_jar *j = check_box(L)->j;
  const char *path = file_arg(L, "save");
  if (save_file(j, path) < 0)
    return fail_errno(L, "write", path);
  lua_pushboolean(L, 1);
  return 1;
}

/** jar:load(path) -> the number of cookies added, or nil, "ENAME: message", "ENAME" */
static int jar_load(lua_State *L) {
  sl_cookie_jar *j = check_box(L)->j;
  const char *path = file_arg(L, "load");
  int n = load_file(j, path);
  if (n < 0)
    return fail_errno(L, "read", path);
  lua_pushinteger(L, n);
  return 1;
}

static int jar_len(lua_State *L) {
  sl_cookie_jar *j = check_box(L)->j;
  sl_cookie_purge(j, now_s());
  lua_pushinteger(L, j->n);
  return 1;
}

static int jar_gc(lua_State *L) {
  jar_box *b = check_box(L);
  sl_cookie_jar_unref(b->j);
  b->j = NULL;
  return 0;
}

static int jar_tostring(lua_State *L) {
  jar_box *b = check_box(L);
  lua_pushfstring(L, "cookie jar (%d cookies): %p", b->j != NULL ? b->j->n : 0, (void *)b);
  return 1;
}

void sl_cookie_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"get", jar_get},
    {"set", jar_set},
    {"clear", jar_clear},
    {"list", jar_list},
    {"save", jar_save},
    {"load", jar_load},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", jar_gc},
    {"__len", jar_len},
    {"__tostring", jar_tostring},
    {NULL, NULL}
  };
  sl_newmeta(L, SL_COOKIE_JAR_MT, methods, meta);
  lua_pushcfunction(L, l_cookiejar);
  lua_setfield(L, -2, "cookiejar");
}
