/* coro.c: coroutine.resume and coroutine.wrap that let a sluice wait happen inside a user's
 * own coroutine (a generator reading a file, say): the wait's marker is passed up to the
 * task, and the values that wake the task are passed back down. */
#include "sluice.h"

/* Registry key of a weak-keyed table: coroutines parked in a wait on a task's behalf. */
static char parked_key;

/* How many are parked: while none is, a resume skips the table lookup (the common case,
 * a generator that does not wait). One engine per process for now. */
static int nparked;

/* ctx bits of the relay: how many fixed stack slots precede the values, and wrap mode. */
#define CTX_WRAP 0x100

static void set_parked(lua_State *L, int co_idx, int on) {
  nparked += on ? 1 : -1;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &parked_key);
  lua_pushvalue(L, co_idx);
  if (on)
    lua_pushboolean(L, 1);
  else
    lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static int is_parked(lua_State *L, int co_idx) {
  int r;
  if (nparked == 0)
    return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &parked_key);
  lua_pushvalue(L, co_idx);
  r = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return r;
}

static int relay_k(lua_State *L, int status, lua_KContext ctx);

/* Resumes co (at co_idx, a stack slot or an upvalue) with the top nargs values of L.
 * resume mode pushes true, results / false, error; wrap mode returns the results and
 * raises the error, like Lua's own. A sluice wait inside co makes L yield the marker. */
static int relay(lua_State *L, int co_idx, int nargs, lua_KContext ctx) {
  lua_State *co = lua_tothread(L, co_idx);
  int nres, st;
  if (!lua_checkstack(co, nargs)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too many arguments to resume");
    return 2;
  }
  lua_xmove(L, co, nargs);
  st = lua_resume(co, L, nargs, &nres);
  if (st == LUA_YIELD && nres == 1 && lua_touserdata(co, -1) == &sl_wait_mark) {
    lua_pop(co, 1);
    set_parked(L, co_idx, 1);
    lua_settop(L, (int)(ctx & 0xff));
    lua_pushlightuserdata(L, &sl_wait_mark);
    return lua_yieldk(L, 1, ctx, relay_k);
  }
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      return luaL_error(L, "too many results to resume");
    }
    if (ctx & CTX_WRAP) {
      lua_xmove(co, L, nres);
      return nres;
    }
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  lua_xmove(co, L, 1);           /* the error */
  if (ctx & CTX_WRAP) {
    /* Like Lua's wrap: close the dead coroutine's pending variables, add the position. */
    int stat = sl_closethread(co, L);
    if (stat != LUA_OK && stat != LUA_YIELD) {
      lua_pop(L, 1);
      lua_xmove(co, L, 1);
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

/* Resumed after passing a wait up: the values on top go down to the coroutine. */
static int relay_k(lua_State *L, int status, lua_KContext ctx) {
  int base = (int)(ctx & 0xff);
  int co_idx = (ctx & CTX_WRAP) ? lua_upvalueindex(1) : 1;
  (void)status;
  set_parked(L, co_idx, 0);
  return relay(L, co_idx, lua_gettop(L) - base, ctx);
}

/** coroutine.resume(co, ...) -> true, results... | false, error (waits pass through) */
static int co_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  if (is_parked(L, 1)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume a coroutine that is waiting inside a sluice task");
    return 2;
  }
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume dead coroutine");
    return 2;
  }
  if (co == L) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume non-suspended coroutine");
    return 2;
  }
  return relay(L, 1, lua_gettop(L) - 1, 1);
}

static int wrap_call(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  if (is_parked(L, lua_upvalueindex(1)))
    return luaL_error(L, "cannot resume a coroutine that is waiting inside a sluice task");
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0)
    return luaL_error(L, "cannot resume dead coroutine");
  return relay(L, lua_upvalueindex(1), lua_gettop(L), CTX_WRAP);
}

/** coroutine.wrap(f) -> a function resuming a new coroutine (waits pass through) */
static int co_wrap(lua_State *L) {
  lua_State *co;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, wrap_call, 1);
  return 1;
}

/* Replaces coroutine.resume and coroutine.wrap in the global coroutine table. */
void sl_coro_install(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &parked_key);
  lua_getglobal(L, "coroutine");
  if (lua_istable(L, -1)) {
    lua_pushcfunction(L, co_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, co_wrap);
    lua_setfield(L, -2, "wrap");
  }
  lua_pop(L, 1);
}
