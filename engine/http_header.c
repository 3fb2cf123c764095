/* http_header.c: the header rule and header tables of both HTTP sides (http_header.h). */
#include <stdint.h>
#include <string.h>

#include "http_header.h"
#include "sluice.h"

/* Registry key (by address) of the header tables' metatable: a lookup for every response
 * or request table, cheaper than by name. */
static char headers_mt_key;

/* The tchars as a bit set over bytes 0-127: ALPHA DIGIT and !#$%&'*+-.^_`|~. */
static const uint64_t TCHAR[2] = {0x03ff6cfa00000000u, 0x57ffffffc7fffffeu};

int sl_http_token(const char *s, size_t n) {
  size_t i;
  if (n == 0)
    return 0;
  for (i = 0; i < n; i++) {
    unsigned c = (unsigned char)s[i];
    if (c >= 128 || !((TCHAR[c >> 6] >> (c & 63)) & 1))
      return 0;
  }
  return 1;
}

int sl_http_value_ok(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return 0;
  }
  return 1;
}

/* headers[k] for a key not stored as it is: the same name in lower case (any length). A
 * key already in lower case was looked up raw before __index was called: nothing more. */
static int headers_index(lua_State *L) {
  size_t n, i;
  const char *k = lua_tolstring(L, 2, &n);
  luaL_Buffer B;
  char *p;
  int changed = 0;
  if (k == NULL || lua_type(L, 2) != LUA_TSTRING)
    return 0;
  p = luaL_buffinitsize(L, &B, n);
  for (i = 0; i < n; i++) {
    p[i] = (k[i] >= 'A' && k[i] <= 'Z') ? (char)(k[i] + 32) : k[i];
    changed |= p[i] != k[i];
  }
  if (!changed)
    return 0;
  luaL_pushresultsize(&B, n);
  lua_rawget(L, 1);
  return 1;
}

void sl_http_headers_register(lua_State *L) {
  static const luaL_Reg meta[] = {{"__index", headers_index}, {NULL, NULL}};
  sl_newmeta(L, SL_HTTP_HEADERS_MT, NULL, meta);
  luaL_getmetatable(L, SL_HTTP_HEADERS_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &headers_mt_key);
}

void sl_http_headers_setmt(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &headers_mt_key);
  lua_setmetatable(L, idx);
}
