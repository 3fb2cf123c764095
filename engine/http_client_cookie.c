/* http_client_cookie.c: a client's cookie jar at work (http.client{cookies = ...}): the
 * Cookie header a request sends, and the Set-Cookie headers of every response stored, each
 * hop of a redirect included. Only clients with a jar come here (one pointer test in
 * http_client.c), so the others pay nothing. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_client.h"
#include "http_cookie.h"
#include "sluice.h"

/* Appends a user's Cookie value (a string, or a list of them) to b, "; " between. */
static void add_user_value(lua_State *L, int idx, sl_buf *b) {
  if (lua_istable(L, idx)) {
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      add_user_value(L, lua_gettop(L), b);
      lua_pop(L, 1);
    }
  } else if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    size_t n;
    const char *v = lua_tolstring(L, idx, &n);
    if (n > 0 && ((b->len > 0 && sl_buf_add(b, "; ", 2) < 0) || sl_buf_add(b, v, n) < 0))
      luaL_error(L, "out of memory");
  }
}

int sl_client_cookie_headers(lua_State *L, hc_req *r, int hidx, const char *target,
                             size_t tlen) {
  hc_client *c = r->client;
  sl_buf b = {0};
  size_t plen = 0;
  int given = 0, i, n, t;
  while (plen < tlen && target[plen] != '?')
    plen++;
  /* The user's Cookie first: the request's (false: none), else the client's default. */
  if (hidx != 0) {
    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_rawlen(L, -2) == 6 &&
          strcasecmp(lua_tostring(L, -2), "cookie") == 0) {
        given = 1;
        add_user_value(L, lua_gettop(L), &b);
      }
      lua_pop(L, 1);
    }
  }
  for (i = 0; i < c->ndh && !given; i++)
    if (strcmp(c->dh[i].lname, "cookie") == 0) {
      const char *v = c->dh[i].line + 8;       /* after "cookie: " */
      if (sl_buf_add(&b, v, c->dh[i].line_len - 10) < 0) {
        sl_buf_free(&b);
        luaL_error(L, "out of memory");
      }
    }
  n = sl_cookie_header(c->jar, r->host, target, plen, r->tls, (int64_t)time(NULL), &b);
  if (n <= 0) {
    sl_buf_free(&b);
    if (n < 0)
      luaL_error(L, "out of memory");
    return hidx;
  }
  /* A copy of the request's headers, with one Cookie: the user's, then the jar's. */
  lua_createtable(L, 0, 8);
  t = lua_gettop(L);
  if (hidx != 0) {
    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_rawlen(L, -2) == 6 &&
          strcasecmp(lua_tostring(L, -2), "cookie") == 0) {
        lua_pop(L, 1);
        continue;
      }
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, t);
    }
  }
  lua_pushlstring(L, b.p, b.len);
  sl_buf_free(&b);
  lua_setfield(L, t, "Cookie");
  return t;
}

void sl_client_cookie_store(hc_req *r, const char *url, size_t ulen) {
  size_t plen;
  const char *path = NULL, *why;
  int64_t now = 0;
  uint32_t i;
  for (i = 0; i < r->nhead; i++) {
    const hc_header *h = &r->hdr[i];
    if (h->name_len != 10 || h->value == UINT32_MAX ||
        strncasecmp(r->hbuf.p + h->name, "set-cookie", 10) != 0)
      continue;
    if (path == NULL) {
      path = sl_cookie_url_path(url, ulen, &plen);
      now = (int64_t)time(NULL);
    }
    sl_cookie_set(r->client->jar, r->host, path, plen, r->tls, r->hbuf.p + h->value,
                  h->value_len, now, &why);
  }
}
