/* http_client_req.c: the HTTP client's bytes and tables: parsing URLs, writing a request's
 * head, and turning a parsed response into its Lua table (headers, body, timings). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_client.h"
#include "http_header.h"
#include "sluice.h"
#include "url.h"

/* Registry key: the weak table of repeated header values. */
static char repeats_key;

/* ------------------------------------------------------------------- URLs */

/* Parses "http[s]://host[:port][/path][?query][#fragment]" into r->host (normalized as
 * url.normalize does, IPv6 without brackets), r->port (80 or 443 by default) and r->tls;
 * *target is the path and query ("/" when empty), inside url. Returns NULL, or the fail
 * name ("EINVAL", "ENOTSUP") with the reason in why. */
const char *sl_client_url_parse(hc_req *r, const char *u, size_t n, const char **target,
                                size_t *tlen, char *why, size_t whylen) {
  const char *p = u, *end = u + n, *s, *t;
  s = memchr(u, ':', n);
  if (s == NULL || end - s < 3 || s[1] != '/' || s[2] != '/' || s == u) {
    snprintf(why, whylen, "not an absolute http:// or https:// URL: %.100s", u);
    return "EINVAL";
  }
  r->tls = s - u == 5 && strncasecmp(u, "https", 5) == 0;
  if (!r->tls && (s - u != 4 || strncasecmp(u, "http", 4) != 0)) {
    snprintf(why, whylen, "unsupported URL scheme '%.*s' (only http:// and https:// are)",
             (int)(s - u), u);
    return "EINVAL";
  }
  p = s + 3;
  for (t = p; t < end && *t != '/' && *t != '?' && *t != '#'; t++)
    if (*t == '@') {
      snprintf(why, whylen, "credentials in URLs are not supported: %.100s", u);
      return "EINVAL";
    }
  /* p .. t is the authority: its host and port are parsed as sluice.url parses them, so
   * the client connects to the host and port the URL's origin names (127.1 is 127.0.0.1,
   * port 0 is refused). */
  {
    sl_url_auth a;
    sl_url_err e;
    _Static_assert(sizeof r->host > SL_URL_MAX_HOST, "r->host holds any normalized host");
    if (sl_url_authority(p, (size_t)(t - p), &a, &e) < 0) {
      snprintf(why, whylen, "%s in URL: %.100s", e.why, u);
      return e.code;
    }
    if (a.host[0] == '[') {      /* r->host holds IPv6 without its brackets */
      memcpy(r->host, a.host + 1, a.host_len - 2);
      r->host[a.host_len - 2] = '\0';
    } else {
      memcpy(r->host, a.host, a.host_len + 1);
    }
    r->port = a.port > 0 ? a.port : r->tls ? 443 : 80;
  }
  *target = t;
  for (s = t; s < end && *s != '#'; s++)
    ;
  *tlen = (size_t)(s - t);
  return NULL;
}

/* ------------------------------------------------------- request heads */

/* Appends the request target, percent-encoding what may not go on the wire as it is
 * (controls, spaces, bytes above 0x7e); "/" if empty, or before a bare "?query". */
static int add_target(sl_buf *b, const char *t, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  if (sl_buf_reserve(b, n * 3 + 1) < 0)
    return -1;
  if (n == 0 || t[0] != '/')
    b->p[b->len++] = '/';
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)t[i];
    if (ch <= 0x20 || ch >= 0x7f) {
      b->p[b->len++] = '%';
      b->p[b->len++] = hex[ch >> 4];
      b->p[b->len++] = hex[ch & 15];
    } else {
      b->p[b->len++] = (char)ch;
    }
  }
  return 0;
}

#define ADD(b, s) sl_buf_add((b), (s), sizeof(s) - 1)

/* Appends "name: value\r\n" for the value at the top of the stack (false: no such header,
 * not even a default one); notes which of the client's defaults it overrides, and a Host
 * given (*has_host; false for Host only drops the client's default one, since a request
 * always has one Host). Content-Length and Transfer-Encoding are left out: the body
 * decides them. Returns NULL or an argument error message. */
static const char *add_header(lua_State *L, hc_req *r, const char *name, size_t nlen,
                              uint64_t *overridden, int *has_host) {
  hc_client *c = r->client;
  int suppress = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  size_t vlen = 0;
  const char *v = NULL;
  char lname[32];
  int i;
  if (!suppress) {
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      return lua_pushfstring(L, "header '%s' must be a string, a number, false or a list",
                             name);
    v = lua_tolstring(L, -1, &vlen);
    if (!sl_http_value_ok(v, vlen))
      return lua_pushfstring(L, "header '%s' has a control character in its value", name);
  }
  if (nlen < sizeof lname) {
    for (i = 0; i < (int)nlen; i++)
      lname[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    lname[nlen] = '\0';
    if (strcmp(lname, "content-length") == 0 || strcmp(lname, "transfer-encoding") == 0)
      return NULL;
    if (!suppress && strcmp(lname, "host") == 0) {
      if (*has_host)
        return "header 'Host' given more than once";
      *has_host = 1;
    }
    if (!suppress && strcmp(lname, "connection") == 0 && vlen >= 5 &&
        strncasecmp(v, "close", 5) == 0)
      r->close_after = 1;
    for (i = 0; i < c->ndh; i++)
      if (strcmp(lname, c->dh[i].lname) == 0)
        *overridden |= (uint64_t)1 << i;
  }
  if (suppress)
    return NULL;
  if (sl_buf_reserve(&r->wbuf, nlen + vlen + 4) < 0)
    return "out of memory";
  sl_buf_add(&r->wbuf, name, nlen);
  ADD(&r->wbuf, ": ");
  sl_buf_add(&r->wbuf, v, vlen);
  ADD(&r->wbuf, "\r\n");
  return NULL;
}

/* Writes the request head into r->wbuf: request line, the headers of the table at hidx
 * (0: none; a value may be a list for a repeated header), Host (the client's default one,
 * or one made from the URL) and the client's defaults unless given, then the body's
 * framing: Content-Length for a string body (body_kind 1), chunked for a function (2),
 * Content-Length: 0 for a POST, PUT or PATCH without one.
 * A string body of up to 4 KiB is copied in too, so the request goes in one piece.
 * Returns NULL, or an error message for a bad header (an argument error). */
const char *sl_client_build_head(lua_State *L, hc_req *r, const char *method, size_t mlen,
                                 const char *target, size_t tlen, int hidx, int body_kind) {
  hc_client *c = r->client;
  sl_buf *b = &r->wbuf;
  uint64_t overridden = 0;
  int has_host = 0, i;
  char num[32];
  b->len = 0;
  if (sl_buf_add(b, method, mlen) < 0 || ADD(b, " ") < 0 || add_target(b, target, tlen) < 0 ||
      ADD(b, " HTTP/1.1\r\n") < 0)
    return "out of memory";
  if (hidx != 0) {
    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
      size_t nlen;
      const char *name, *err = NULL;
      if (lua_type(L, -2) != LUA_TSTRING)
        return "header names must be strings";
      name = lua_tolstring(L, -2, &nlen);
      if (!sl_http_token(name, nlen))
        return lua_pushfstring(L, "bad header name '%s'", name);
      if (lua_istable(L, -1)) {
        lua_Integer j, n = (lua_Integer)lua_rawlen(L, -1);
        for (j = 1; j <= n && err == NULL; j++) {
          lua_rawgeti(L, -1, j);
          err = add_header(L, r, name, nlen, &overridden, &has_host);
          lua_pop(L, 1);
        }
      } else {
        err = add_header(L, r, name, nlen, &overridden, &has_host);
      }
      if (err != NULL)
        return err;
      lua_pop(L, 1);
    }
  }
  /* One Host line: the request's, else the client's default, else one from the URL. */
  if (!has_host && c->dh_host >= 0 && !(overridden & ((uint64_t)1 << c->dh_host)))
    has_host = 1;
  if (!has_host) {
    int ipv6 = strchr(r->host, ':') != NULL;
    if (ADD(b, "Host: ") < 0 || (ipv6 && ADD(b, "[") < 0) ||
        sl_buf_add(b, r->host, strlen(r->host)) < 0 || (ipv6 && ADD(b, "]") < 0))
      return "out of memory";
    if (r->port != (r->tls ? 443 : 80)) {       /* by hand: snprintf shows in profiles */
      int k = (int)sizeof num, p = r->port;
      do
        num[--k] = (char)('0' + p % 10);
      while ((p /= 10) > 0);
      num[--k] = ':';
      if (sl_buf_add(b, num + k, sizeof num - (size_t)k) < 0)
        return "out of memory";
    }
    if (ADD(b, "\r\n") < 0)
      return "out of memory";
  }
  if (overridden == 0) {
    if (sl_buf_add(b, c->dh_block.p, c->dh_block.len) < 0)
      return "out of memory";
  } else {
    for (i = 0; i < c->ndh; i++)
      if (!(overridden & ((uint64_t)1 << i)) &&
          sl_buf_add(b, c->dh[i].line, c->dh[i].line_len) < 0)
        return "out of memory";
  }
  if (body_kind == 2) {
    if (ADD(b, "Transfer-Encoding: chunked\r\n\r\n") < 0)
      return "out of memory";
    return NULL;
  }
  if (body_kind == 1 || (mlen == 4 && memcmp(method, "POST", 4) == 0) ||
      (mlen == 3 && memcmp(method, "PUT", 3) == 0) ||
      (mlen == 5 && memcmp(method, "PATCH", 5) == 0)) {
    int k = snprintf(num, sizeof num, "Content-Length: %zu\r\n", r->body_len);
    if (sl_buf_add(b, num, (size_t)k) < 0)
      return "out of memory";
  }
  if (ADD(b, "\r\n") < 0)
    return "out of memory";
  if (r->body_len > 0 && r->body_len <= 4096) {
    if (sl_buf_add(b, r->body, r->body_len) < 0)
      return "out of memory";
    r->body = NULL;
    r->body_len = 0;
  }
  return NULL;
}

/* ----------------------------------------------------------- responses */

static double span(uint64_t from, uint64_t to) {
  return from != 0 && to > from ? (double)(to - from) / 1e9 : 0.0;
}

/* Fills the headers table at h with r's headers, in time linear in their size however
 * often a name repeats: the first value of a name is stored as it is; the values of a
 * repeated name are collected in a list (the stack slot at lists, nil until the first
 * repeat, then the table of lists by name, registry[repeats][headers], which
 * http.header_values reads), and each list is joined with ", " once at the end. */
static void push_headers(lua_State *L, hc_req *r, int h, uint32_t from, uint32_t to) {
  int lists;
  uint32_t i;
  luaL_checkstack(L, 8, "too many response headers");
  lua_pushnil(L);
  lists = lua_gettop(L);
  for (i = from; i < to; i++) {
    const hc_header *x = &r->hdr[i];
    if (x->value == UINT32_MAX)
      continue;
    lua_pushlstring(L, r->hbuf.p + x->name, x->name_len);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, h) == LUA_TNIL) {        /* name nil: the common case */
      lua_pop(L, 1);
      lua_pushlstring(L, r->hbuf.p + x->value, x->value_len);
      lua_rawset(L, h);
      continue;
    }
    if (lua_isnil(L, lists)) {                 /* name first: the first repeat */
      lua_newtable(L);
      lua_replace(L, lists);
      lua_rawgetp(L, LUA_REGISTRYINDEX, &repeats_key);
      lua_pushvalue(L, h);
      lua_pushvalue(L, lists);
      lua_rawset(L, -3);
      lua_pop(L, 1);
    }
    lua_pushvalue(L, -2);
    if (lua_rawget(L, lists) == LUA_TNIL) {    /* name first nil: start the list */
      lua_pop(L, 1);
      lua_createtable(L, 4, 0);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, 1);
      lua_pushvalue(L, -3);
      lua_pushvalue(L, -2);
      lua_rawset(L, lists);
    }
    lua_pushlstring(L, r->hbuf.p + x->value, x->value_len);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 3);
  }
  if (!lua_isnil(L, lists)) {
    lua_pushnil(L);
    while (lua_next(L, lists) != 0) {          /* name list */
      luaL_Buffer B;
      int list = lua_gettop(L);
      lua_Integer j, n = (lua_Integer)lua_rawlen(L, list);
      lua_pushvalue(L, list - 1);              /* name list name */
      luaL_buffinit(L, &B);
      for (j = 1; j <= n; j++) {
        if (j > 1)
          luaL_addlstring(&B, ", ", 2);
        lua_rawgeti(L, list, j);
        luaL_addvalue(&B);
      }
      luaL_pushresult(&B);                     /* name list name joined */
      lua_rawset(L, h);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* Pushes the response table of a complete request: status, reason, headers, trailers
 * (only when the chunked body had some), body (the
 * string at bodyidx if the body was pushed already, else from r->rbody, decoded; nil
 * with a sink), url (the string at urlidx), redirects = 0, timings. Returns 1, or 3 for
 * the fail triple of a body that cannot be decoded. */
int sl_client_push_response(lua_State *L, hc_req *r, int urlidx, int bodyidx) {
  int res, h;
  lua_createtable(L, 0, 8);
  res = lua_gettop(L);
  lua_pushinteger(L, r->status);
  lua_setfield(L, res, "status");
  /* hbuf is still NULL when the response had neither a reason phrase nor a header */
  lua_pushlstring(L, r->reason_len > 0 ? r->hbuf.p + r->reason : "", r->reason_len);
  lua_setfield(L, res, "reason");
  lua_createtable(L, 0, (int)r->nhead);
  h = lua_gettop(L);
  push_headers(L, r, h, 0, r->nhead);
  sl_http_headers_setmt(L, h);
  lua_setfield(L, res, "headers");
  if (r->nhdr > r->nhead) {    /* trailers: a table of their own, never merged */
    lua_createtable(L, 0, (int)(r->nhdr - r->nhead));
    h = lua_gettop(L);
    push_headers(L, r, h, r->nhead, r->nhdr);
    sl_http_headers_setmt(L, h);
    lua_setfield(L, res, "trailers");
  }
  if (bodyidx != 0) {
    lua_pushvalue(L, bodyidx);
  } else if (r->sink) {
    lua_pushnil(L);
  } else if (r->encoding != 0 && r->rbody.len > 0) {
    int n = sl_client_push_decoded(L, r);
    if (n != 1)
      return n;
  } else {
    lua_pushlstring(L, r->rbody.p ? r->rbody.p : "", r->rbody.len);
  }
  lua_setfield(L, res, "body");
  lua_pushvalue(L, urlidx);
  lua_setfield(L, res, "url");
  lua_pushinteger(L, 0);
  lua_setfield(L, res, "redirects");
  if (r->tls) {
    lua_pushboolean(L, r->tls_resumed);
    lua_setfield(L, res, "tls_resumed");
  }
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, span(r->t_dns, r->t_dns_done));
  lua_setfield(L, -2, "dns");
  lua_pushnumber(L, r->reused ? 0.0 : span(r->t_dns_done ? r->t_dns_done : r->t_connect,
                                          r->t_connected));
  lua_setfield(L, -2, "connect");
  lua_pushnumber(L, r->t_tls_done ? span(r->t_tls, r->t_tls_done) : 0.0);
  lua_setfield(L, -2, "tls");
  lua_pushnumber(L, span(r->t_start, r->t_first));
  lua_setfield(L, -2, "first_byte");
  lua_pushnumber(L, span(r->t_start, r->t_done));
  lua_setfield(L, -2, "total");
  lua_setfield(L, res, "timings");
  return 1;
}

/** http.header_values(headers, name) -> every value of a header in the order received
 * (a list, empty when absent); a header that came once gives a list of one */
int sl_client_header_values(lua_State *L) {
  size_t n, i;
  const char *k;
  luaL_Buffer B;
  char *p;
  luaL_checktype(L, 1, LUA_TTABLE);
  k = luaL_checklstring(L, 2, &n);
  lua_settop(L, 2);
  p = luaL_buffinitsize(L, &B, n);
  for (i = 0; i < n; i++)
    p[i] = (k[i] >= 'A' && k[i] <= 'Z') ? (char)(k[i] + 32) : k[i];
  luaL_pushresultsize(&B, n);                  /* 3: the stored name */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &repeats_key);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, 4) == LUA_TTABLE) {
    lua_pushvalue(L, 3);
    if (lua_rawget(L, 5) == LUA_TTABLE) {      /* repeated: a copy of its list */
      lua_Integer j, len = (lua_Integer)lua_rawlen(L, 6);
      lua_createtable(L, (int)len, 0);
      for (j = 1; j <= len; j++) {
        lua_rawgeti(L, 6, j);
        lua_rawseti(L, -2, j);
      }
      return 1;
    }
  }
  lua_settop(L, 3);
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, 3);
  if (lua_rawget(L, 1) != LUA_TNIL)
    lua_rawseti(L, -2, 1);
  else
    lua_pop(L, 1);
  return 1;
}

/* Creates the headers metatable and the weak table of repeated values. */
void sl_client_req_register(lua_State *L) {
  sl_http_headers_register(L);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &repeats_key);
}
