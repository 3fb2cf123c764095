/* util.c: small helpers shared by every module, at the bottom of the engine (it calls no
 * other engine file): the fail triple (nil, "ENAME: message", "ENAME"), the traceback message
 * handler of protected calls, argument checks, the growable byte buffer (sl_buf), and
 * metatable creation. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

/* Pushes nil, "NAME: message", "NAME" and returns 3: operational failures return this. */
int sl_fail(lua_State *L, const char *name, const char *fmt, ...) {
  va_list ap;
  lua_pushnil(L);
  lua_pushfstring(L, "%s: ", name);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  lua_pushstring(L, name);
  return 3;
}

/* The fail triple for a libuv error code. */
int sl_fail_uv(lua_State *L, int uverr) {
  return sl_fail(L, uv_err_name(uverr), "%s", uv_strerror(uverr));
}

/* Message handler for protected calls from C: adds a traceback to the message. */
int sl_traceback_msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Checks that the argument at idx is a number of seconds (0 or more); raises otherwise. */
double sl_check_seconds(lua_State *L, int idx, const char *what) {
  double s = luaL_checknumber(L, idx);
  if (isnan(s) || s < 0)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s must be a non-negative number of seconds",
                                          what));
  return s;
}

/* ------------------------------------------------------------ sl_buf */

int sl_buf_reserve(sl_buf *b, size_t extra) {
  size_t need = b->len + extra, cap;
  char *p;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  p = (char *)realloc(b->p, cap);
  if (p == NULL)
    return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

/* n may be 0 with b->p still NULL (llhttp gives empty spans): memcpy gets no NULL + 0. */
int sl_buf_add(sl_buf *b, const void *s, size_t n) {
  if (n == 0)
    return 0;
  if (sl_buf_reserve(b, n) < 0)
    return -1;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  return 0;
}

void sl_buf_free(sl_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* Creates the metatable `name` with methods reachable through __index and the given
 * metamethods; __close maps to close when the type has one. Leaves the stack unchanged. */
void sl_newmeta(lua_State *L, const char *name, const luaL_Reg *methods,
                const luaL_Reg *metamethods) {
  if (!luaL_newmetatable(L, name)) {
    lua_pop(L, 1);
    return;
  }
  if (metamethods != NULL)
    luaL_setfuncs(L, metamethods, 0);
  if (methods != NULL) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}
