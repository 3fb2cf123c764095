/* http_server_msg.c: the HTTP server's messages: the request table a handler gets (with
 * case-insensitive headers) and the response built from what it returns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_header.h"
#include "http_server.h"
#include "sluice.h"

/* ---------------------------------------------------------------- requests */

/* The separator of repeated lines of the header at h (its name in lower case). */
static const char *join_sep(const char *head, const hs_header *h) {
  return h->name_len == 6 && memcmp(head + h->name_off, "cookie", 6) == 0 ? "; " : ", ";
}

/* Header lines [from, to) that repeat a name: joined in one pass with a buffer per name,
 * so any number of repeats costs time linear in their bytes. The table at the top maps
 * each name to the index of its last line while the lines of one name are chained
 * (hs_header.next), then to the joined value. */
static void headers_join(lua_State *L, hs_conn *c, int from, int to) {
  char *head = c->head.p;
  int i;
  for (i = from; i < to; i++) {
    hs_header *h = &c->hdr[i];
    h->next = 0;
    h->repeat = 0;
    lua_pushlstring(L, head + h->name_off, h->name_len);
    if (lua_rawget(L, -2) == LUA_TNUMBER) {
      c->hdr[lua_tointeger(L, -1)].next = (uint32_t)i + 1;
      h->repeat = 1;
    }
    lua_pop(L, 1);
    lua_pushlstring(L, head + h->name_off, h->name_len);
    lua_pushinteger(L, i);
    lua_rawset(L, -3);
  }
  for (i = from; i < to; i++) {
    hs_header *h = &c->hdr[i];
    luaL_Buffer b;
    uint32_t k;
    if (h->repeat)
      continue;
    lua_pushlstring(L, head + h->name_off, h->name_len);
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, head + h->val_off, h->val_len);
    for (k = h->next; k != 0; k = c->hdr[k - 1].next) {
      luaL_addstring(&b, join_sep(head, h));
      luaL_addlstring(&b, head + c->hdr[k - 1].val_off, c->hdr[k - 1].val_len);
    }
    luaL_pushresult(&b);
    lua_rawset(L, -3);
  }
}

/* Pushes a table of the header lines [from, to): names in lower case, lookups ignoring
 * case. Repeated names have their values joined with ", " ("; " for cookie), as HTTP
 * allows. Requests without repeats (nearly all) take one pass and nothing more. */
static void push_headers(lua_State *L, hs_conn *c, int from, int to) {
  char *head = c->head.p;
  int i;
  lua_createtable(L, 0, to - from);
  for (i = from; i < to; i++) {
    hs_header *h = &c->hdr[i];
    char *name = head + h->name_off;
    uint32_t j;
    for (j = 0; j < h->name_len; j++)
      if (name[j] >= 'A' && name[j] <= 'Z')
        name[j] = (char)(name[j] + 32);
    lua_pushlstring(L, name, h->name_len);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) != LUA_TNIL) {  /* a repeat: start again, joining */
      lua_pop(L, 3);
      for (j = (uint32_t)i + 1; j < (uint32_t)to; j++) {
        char *n = head + c->hdr[j].name_off;
        uint32_t k;
        for (k = 0; k < c->hdr[j].name_len; k++)
          if (n[k] >= 'A' && n[k] <= 'Z')
            n[k] = (char)(n[k] + 32);
      }
      lua_createtable(L, 0, to - from);
      headers_join(L, c, from, to);
      break;
    }
    lua_pop(L, 1);
    lua_pushlstring(L, head + h->val_off, h->val_len);
    lua_rawset(L, -3);
  }
  sl_http_headers_setmt(L, -1);
}

/* Pushes the request c has just parsed as a table: its headers, and the trailers of a
 * chunked body apart from them (req.trailers, only when there are some). */
void sl_server_push_request(lua_State *L, hs_conn *c) {
  llhttp_t *p = &c->parser;
  char *head = c->head.p ? c->head.p : (char *)"";
  const char *q;
  luaL_checkstack(L, 8, NULL);
  lua_createtable(L, 0, 9);
  lua_pushstring(L, llhttp_method_name((llhttp_method_t)p->method));
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, head, c->url_len);
  lua_setfield(L, -2, "target");
  q = (const char *)memchr(head, '?', c->url_len);
  if (q != NULL) {
    lua_pushlstring(L, head, (size_t)(q - head));
    lua_setfield(L, -2, "path");
    lua_pushlstring(L, q + 1, c->url_len - (size_t)(q + 1 - head));
  } else {
    lua_getfield(L, -1, "target");
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
  }
  lua_setfield(L, -2, "query");
  lua_pushstring(L, p->http_major == 1 && p->http_minor == 1 ? "1.1"
                    : p->http_major == 1 && p->http_minor == 0 ? "1.0" : "0.9");
  lua_setfield(L, -2, "version");
  push_headers(L, c, 0, c->nhead);
  lua_setfield(L, -2, "headers");
  if (c->nhdr > c->nhead) {
    push_headers(L, c, c->nhead, c->nhdr);
    lua_setfield(L, -2, "trailers");
  }
  lua_pushlstring(L, c->body.p ? c->body.p : "", c->body.len);
  lua_setfield(L, -2, "body");
  lua_pushstring(L, c->remote);
  lua_setfield(L, -2, "remote");
  lua_pushinteger(L, c->remote_port);
  lua_setfield(L, -2, "remote_port");
}

/* ------------------------------------------------------------- responses */

static const char *reason_phrase(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Unknown";
  }
}

/* The Date header's value, formatted once a second (RFC 9110's IMF-fixdate). */
static const char *http_date(void) {
  static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  static char buf[40];
  static time_t last = -1;
  time_t now = time(NULL);
  if (now != last) {
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    last = now;
  }
  return buf;
}

#define OUT(s, n) sl_buf_add(&c->out, (s), (n))
#define OUTS(lit) sl_buf_add(&c->out, lit, sizeof(lit) - 1)

/* Adds "name: value\r\n" to the head. Name and value must pass the rule the client's
 * requests pass too (http_header.h); the messages say which failed. */
static const char *add_header(hs_conn *c, const char *name, size_t nl, const char *val,
                              size_t vl) {
  if (nl == 0)
    return "a header name is empty";
  if (!sl_http_token(name, nl))
    return "a header name holds a byte that is not allowed in a token";
  if (!sl_http_value_ok(val, vl))
    return "a header value holds a control character";
  if (OUT(name, nl) || OUTS(": ") || OUT(val, vl) || OUTS("\r\n"))
    return "out of memory";
  return NULL;
}

/* Which of the headers the server adds the handler's headers gave. */
enum { H_DATE = 1, H_SERVER = 2, H_CLOSE = 4 };

static int name_is(const char *n, size_t nl, const char *lit, size_t ll) {
  return nl == ll && strncasecmp(n, lit, ll) == 0;
}

/* A Content-Length value the handler gave: one string (or integer) of decimal digits, or
 * NULL. */
static const char *content_length_value(lua_State *L, int idx, size_t *len) {
  const char *v;
  size_t i;
  if (lua_type(L, idx) != LUA_TSTRING && !lua_isinteger(L, idx))
    return NULL;
  v = lua_tolstring(L, idx, len);
  if (*len == 0 || *len > 19)
    return NULL;
  for (i = 0; i < *len; i++)
    if (v[i] < '0' || v[i] > '9')
      return NULL;
  return v;
}

/* Serializes the handler's header table (at idx) into the head. Returns an error message
 * or NULL; *flags tells which of the server's own headers it set. The server owns the
 * framing: Content-Length and Transfer-Encoding come from the body it sends, never from
 * the handler (one passing an upstream response's headers on would otherwise announce a
 * length or coding its body does not have), so the handler's are dropped. A valid
 * Content-Length is noted in *cl (it stays alive in the table) for the responses that
 * have no body to measure (HEAD, 304; see sl_server_respond). */
static const char *add_user_headers(lua_State *L, hs_conn *c, int idx, int *flags,
                                    const char **cl, size_t *cl_len) {
  const char *err = NULL;
  lua_pushnil(L);
  while (err == NULL && lua_next(L, idx) != 0) {
    size_t nl, vl;
    const char *name, *val;
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      return "a header name is not a string";
    }
    name = lua_tolstring(L, -2, &nl);
    if (name_is(name, nl, "content-length", 14) || name_is(name, nl, "transfer-encoding", 17)) {
      if (nl == 14)
        *cl = content_length_value(L, -1, cl_len);
      lua_pop(L, 1);
      continue;
    }
    if (name_is(name, nl, "date", 4))
      *flags |= H_DATE;
    else if (name_is(name, nl, "server", 6))
      *flags |= H_SERVER;
    if (lua_type(L, -1) == LUA_TTABLE) {     /* one line per value */
      lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1);
      for (i = 1; err == NULL && i <= n; i++) {
        lua_rawgeti(L, -1, i);
        val = lua_tolstring(L, -1, &vl);
        err = val ? add_header(c, name, nl, val, vl) : "a header value is not a string";
        lua_pop(L, 1);
      }
    } else if ((val = lua_tolstring(L, -1, &vl)) != NULL) {
      if (name_is(name, nl, "connection", 10) && name_is(val, vl, "close", 5))
        *flags |= H_CLOSE;
      err = add_header(c, name, nl, val, vl);
    } else {
      err = "a header value is not a string";
    }
    lua_pop(L, 1);
  }
  if (err != NULL)
    lua_pop(L, 1);
  return err;
}

static void log_failure(lua_State *L, hs_conn *c, const char *what) {
  fprintf(stderr, "sluice: http handler failed (%s %.*s): %s\n",
          llhttp_method_name((llhttp_method_t)c->parser.method), (int)c->url_len,
          c->head.p ? c->head.p : "", what);
  fflush(stderr);
  (void)L;
}


/* Builds and queues the response from the handler's results: HS_NEXT when it is queued,
 * HS_STREAM when the body function at 7 is to be called (8 then says whether chunks are
 * framed), HS_CANCELLED when the handler was cancelled (the connection is closed).
 * Stack: server, conn, req, msgh, status, headers, body (or the error at 5). */
int sl_server_respond(lua_State *L, hs_conn *c, int st) {
  hs_server *s = c->srv;
  int isnum, flags = 0, chunked = 0, head_only, no_body, closing;
  lua_Integer status;
  const char *err = NULL, *body = NULL, *cl = NULL;
  size_t blen = 0, cl_len = 0;
  char line[64];
  if (st != LUA_OK && st != LUA_YIELD) {
    if (sl_is_cancelled(L, -1)) {
      sl_server_conn_close(c);
      return HS_CANCELLED;
    }
    log_failure(L, c, lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
    sl_server_send_error(c, 500, 1);
    return HS_NEXT;
  }
  status = lua_tointegerx(L, 5, &isnum);
  if (!isnum || status < 100 || status > 999)
    err = "it returned no status (expected status, headers, body)";
  else if (!lua_isnoneornil(L, 6) && !lua_istable(L, 6))
    err = "its headers are not a table";
  else if (lua_type(L, 7) == LUA_TSTRING || lua_type(L, 7) == LUA_TNUMBER)
    body = lua_tolstring(L, 7, &blen);
  else if (!lua_isnoneornil(L, 7) && !lua_isfunction(L, 7))
    err = "its body is not a string or a function";
  if (err == NULL && (c->dead || c->closing))
    return HS_NEXT;                       /* nobody to answer */
  c->out.len = 0;
  if (err == NULL) {
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", (int)status,
                     reason_phrase((int)status));
    OUT(line, (size_t)n);
    if (lua_istable(L, 6))
      err = add_user_headers(L, c, 6, &flags, &cl, &cl_len);
  }
  if (err != NULL) {
    log_failure(L, c, err);
    sl_server_send_error(c, 500, 1);
    return HS_NEXT;
  }
  head_only = c->parser.method == HTTP_HEAD;
  no_body = status < 200 || status == 204 || status == 304;
  /* With no body, the handler's Content-Length is the only length there is: an answer to
   * HEAD, or a 304, says what a GET would have got (RFC 9110 8.6, 9.3.2). 1xx and 204
   * never have one. */
  if (!lua_isnoneornil(L, 7) || !(status == 304 || (head_only && !no_body)))
    cl = NULL;
  if (!(flags & H_SERVER))
    OUTS("Server: sluice\r\n");
  if (!(flags & H_DATE)) {
    OUTS("Date: ");
    OUT(http_date(), 29);
    OUTS("\r\n");
  }
  if (!no_body) {
    if (lua_isfunction(L, 7)) {
      if (c->parser.http_major == 1 && c->parser.http_minor >= 1) {
        OUTS("Transfer-Encoding: chunked\r\n");
        chunked = 1;
      } else {
        c->close_after = 1;              /* HTTP/1.0: the end of the body is the close */
      }
    } else if (cl == NULL) {
      int n = snprintf(line, sizeof line, "Content-Length: %zu\r\n", blen);
      OUT(line, (size_t)n);
    }
  }
  if (cl != NULL) {
    OUTS("Content-Length: ");
    OUT(cl, cl_len);
    OUTS("\r\n");
  }
  closing = !c->keepalive || c->close_after || s->closing || (flags & H_CLOSE);
  if (closing) {
    c->close_after = 1;
    if (!(flags & H_CLOSE))
      OUTS("Connection: close\r\n");
  } else if (c->parser.http_major == 1 && c->parser.http_minor == 0) {
    OUTS("Connection: keep-alive\r\n");
  }
  OUTS("\r\n");
  {
    uv_buf_t bufs[2];
    int n = 1;
    bufs[0] = uv_buf_init(c->out.p, (unsigned)c->out.len);
    if (body != NULL && blen > 0 && !head_only && !no_body)
      bufs[n++] = uv_buf_init((char *)body, (unsigned)blen);
    sl_server_send(c, bufs, n);
  }
  if (lua_isfunction(L, 7) && !head_only && !no_body) {
    lua_settop(L, 7);
    lua_pushboolean(L, chunked);       /* 8: whether chunks are framed */
    return HS_STREAM;
  }
  return HS_NEXT;
}

/* A chunk from the body function (at 9; 8 says chunked) goes out; nil ends the body.
 * Returns HS_STREAM (call it again), HS_FLUSH (wait for the writes first), HS_NEXT (the
 * body is over, or cut short) or HS_CANCELLED. */
int sl_server_stream_chunk(lua_State *L, hs_conn *c, int st) {
  int chunked = lua_toboolean(L, 8);
  size_t len;
  const char *data;
  if (st != LUA_OK && st != LUA_YIELD) {
    if (sl_is_cancelled(L, -1)) {
      sl_server_conn_close(c);
      return HS_CANCELLED;
    }
    log_failure(L, c, lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
    sl_server_conn_close(c);                  /* the head is out: only a cut body can tell */
    return HS_NEXT;
  }
  if (c->dead || c->closing)
    return HS_NEXT;
  if (lua_isnil(L, 9)) {
    if (chunked) {
      static const char last[] = "0\r\n\r\n";
      uv_buf_t b = uv_buf_init((char *)last, sizeof last - 1);
      sl_server_send(c, &b, 1);
    }
    return HS_NEXT;
  }
  data = lua_tolstring(L, 9, &len);
  if (data == NULL) {
    log_failure(L, c, "its body function returned something not a string");
    sl_server_conn_close(c);
    return HS_NEXT;
  }
  if (len > 0) {
    uv_buf_t b[3];
    char size[24];
    int n = 0;
    if (chunked) {
      b[n++] = uv_buf_init(size, (unsigned)snprintf(size, sizeof size, "%zx\r\n", len));
      b[n++] = uv_buf_init((char *)data, (unsigned)len);
      b[n++] = uv_buf_init((char *)"\r\n", 2);
    } else {
      b[n++] = uv_buf_init((char *)data, (unsigned)len);
    }
    sl_server_send(c, b, n);
  }
  lua_settop(L, 8);
  return hs_conn_pending(c) > 0 ? HS_FLUSH : HS_STREAM;
}

/* Creates the metatable of request header tables (shared with the client's responses). */
void sl_server_msg_register(lua_State *L) {
  sl_http_headers_register(L);
}
