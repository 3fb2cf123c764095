/* http_header.h: what the HTTP client and the HTTP server share about header fields: the
 * one rule for names and values, and the one kind of header table Lua code gets. */
#ifndef SLUICE_HTTP_HEADER_H
#define SLUICE_HTTP_HEADER_H

#include "sluice.h"

/* The metatable of header tables (a response's in the client, a request's in the
 * server): names are stored in lower case and lookups ignore case. */
#define SL_HTTP_HEADERS_MT "sluice.http.headers"

/* A method or header name is a token (RFC 9110, 5.6.2): at least one tchar. */
int sl_http_token(const char *s, size_t n);
/* A header value may hold any byte but the controls, HTAB excepted (RFC 9110, 5.5): CR or
 * LF would let it inject header lines or a body, NUL would cut it short for some peers,
 * and strict peers refuse the others. */
int sl_http_value_ok(const char *s, size_t n);
/* Creates the header tables' metatable (once per state; both modules call it). */
void sl_http_headers_register(lua_State *L);
/* Sets the header tables' metatable on the table at idx. */
void sl_http_headers_setmt(lua_State *L, int idx);

#endif
