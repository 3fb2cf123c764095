/* group.c: a completion group, the C core under sl.gather, sl.wait and sl.as_completed.
 * It watches a fixed list of tasks and hands them out in the order they end. */
#include <string.h>

#include "sluice.h"

typedef struct group group;

typedef struct member {
  sl_waiter w;                 /* linked into the member task while it runs */
  group *g;
  int next_done;               /* next member in the done FIFO, 0 for none (1-based) */
} member;

struct group {
  sl_engine *E;
  int n;                       /* members */
  int npending;                /* members not yet ended */
  int done_head, done_tail;    /* FIFO of ended members not yet handed out (1-based) */
  sl_task *waiter;             /* task blocked in next() */
  int closed;
  member m[1];                 /* n members, allocated with the group */
};

/* User value 1 of a group: the member handles, in input order. */

static group *check_group(lua_State *L, int idx) {
  return (group *)luaL_checkudata(L, idx, SL_GROUP_MT);
}

static void group_push_done(group *g, int i) {
  g->m[i - 1].next_done = 0;
  if (g->done_tail)
    g->m[g->done_tail - 1].next_done = i;
  else
    g->done_head = i;
  g->done_tail = i;
}

static int group_pop_done(group *g) {
  int i = g->done_head;
  if (i) {
    g->done_head = g->m[i - 1].next_done;
    if (g->done_head == 0)
      g->done_tail = 0;
  }
  return i;
}

static void member_notify(sl_waiter *w) {
  member *mb = (member *)w;
  group *g = mb->g;
  g->npending--;
  group_push_done(g, (int)(mb - g->m) + 1);
  if (g->waiter != NULL) {
    sl_task *t = g->waiter;
    g->waiter = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
}

/* Stops watching every member; the group can no longer be waited on. */
static void group_detach(group *g) {
  int i;
  if (g->closed)
    return;
  g->closed = 1;
  for (i = 0; i < g->n; i++)
    sl_task_remove_waiter(&g->m[i].w);
}

/** core.group(list) -> group: functions in the list are spawned; tasks are watched. */
static int l_group(lua_State *L) {
  lua_Integer n, i;
  group *g;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_len(L, 1);
  if (n > 100000000)
    return luaL_argerror(L, 1, "too many tasks");
  g = (group *)lua_newuserdatauv(L, sizeof(group) + (size_t)(n > 0 ? n - 1 : 0) *
                                 sizeof(member), 1);
  memset(g, 0, sizeof(group) + (size_t)(n > 0 ? n - 1 : 0) * sizeof(member));
  g->E = SL_ENGINE(L);
  g->closed = 1;               /* safe for __gc until the members are linked */
  luaL_setmetatable(L, SL_GROUP_MT);
  lua_createtable(L, (int)n, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (lua_type(L, -1) == LUA_TFUNCTION) {
      sl_task_new(L, -1, 0);
      lua_remove(L, -2);
    } else if (sl_task_test(L, -1) == NULL) {
      /* Level 2: the script that called gather/wait/as_completed, not their Lua code. */
      luaL_where(L, 2);
      lua_pushfstring(L, "bad item #%d in the task list (a task or a function expected, "
                      "got %s)", (int)i, luaL_typename(L, -2));
      lua_concat(L, 2);
      return lua_error(L);
    }
    lua_rawseti(L, -2, i);
  }
  lua_setiuservalue(L, -2, 1);
  g->n = (int)n;
  g->closed = 0;
  lua_getiuservalue(L, -1, 1);
  for (i = 1; i <= n; i++) {
    sl_task *t;
    lua_rawgeti(L, -1, i);
    t = (sl_task *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    g->m[i - 1].g = g;
    g->m[i - 1].w.notify = member_notify;
    if (sl_task_is_ended(t)) {
      group_push_done(g, (int)i);
    } else {
      g->npending++;
      sl_task_add_waiter(t, &g->m[i - 1].w);
    }
  }
  lua_pop(L, 1);
  return 1;
}

/* Pushes index, task of the next ended member, or nil when none is left. */
static int group_hand_out(lua_State *L, group *g) {
  int i = group_pop_done(g);
  if (i == 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, i);
  lua_getiuservalue(L, 1, 1);
  lua_rawgeti(L, -1, i);
  lua_remove(L, -2);
  return 2;
}

static void group_cleanup(sl_task *t, void *data) {
  group *g = (group *)data;
  (void)t;
  g->waiter = NULL;
}

static int next_k(lua_State *L, int status, lua_KContext ctx) {
  group *g = (group *)lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  if (g->done_head == 0) {     /* the deadline passed first */
    lua_pushboolean(L, 0);
    return 1;
  }
  return group_hand_out(L, g);
}

/** g:next([timeout]) -> index, task in completion order; nil when all were handed out;
 * false when the timeout passed first (timeout 0 never waits). */
static int g_next(lua_State *L) {
  group *g = check_group(L, 1);
  double timeout = lua_isnoneornil(L, 2) ? -1 : sl_check_seconds(L, 2, "timeout");
  sl_task *me;
  lua_settop(L, 1);
  if (g->done_head != 0 || g->npending == 0 || g->closed)
    return group_hand_out(L, g);
  if (timeout == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  me = sl_task_require(L, "waiting on tasks");
  if (g->waiter != NULL)
    return luaL_error(L, "another task is already waiting on this group");
  g->waiter = me;
  return sl_task_wait(L, me, group_cleanup, g, timeout, next_k, 0);
}

/** g:cancel() -> cancels every member that has not ended */
static int g_cancel(lua_State *L) {
  group *g = check_group(L, 1);
  int i;
  lua_getiuservalue(L, 1, 1);
  for (i = 1; i <= g->n; i++) {
    lua_rawgeti(L, -1, i);
    sl_task_cancel((sl_task *)lua_touserdata(L, -1));
    lua_pop(L, 1);
  }
  return 0;
}

/** g:pending() -> number of members not yet ended */
static int g_pending(lua_State *L) {
  lua_pushinteger(L, check_group(L, 1)->npending);
  return 1;
}

/** g:tasks() -> the member handles in input order */
static int g_tasks(lua_State *L) {
  check_group(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

/** g:close() -> stop watching (members keep running) */
static int g_close(lua_State *L) {
  group_detach(check_group(L, 1));
  return 0;
}

void sl_group_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"next", g_next},
    {"cancel", g_cancel},
    {"pending", g_pending},
    {"tasks", g_tasks},
    {"close", g_close},
    {NULL, NULL}
  };
  static const luaL_Reg metamethods[] = {
    {"__gc", g_close},
    {"__close", g_close},
    {NULL, NULL}
  };
  sl_newmeta(L, SL_GROUP_MT, methods, metamethods);
  lua_pushcfunction(L, l_group);
  lua_setfield(L, -2, "group");
}
