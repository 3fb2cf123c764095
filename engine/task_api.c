/* task_api.c: the Lua side of tasks: sl.spawn, t:join and the other task methods, sl.sleep
 * and sl.now, sl.tasks (and the REPL's description of them), the helpers the executor uses
 * (end callbacks, re-raising), and the test runner's handle count. */
#include <stdio.h>
#include <string.h>

#include "sluice.h"

/* ---------------------------------------------------------------- outcome */

/* Expects the handle of an ended task at hidx; pushes ok, then its results (or its
 * error), pcall style, and returns how many values it pushed. Taking the outcome marks the
 * task observed, so its failure is not reported as never retrieved. */
int sl_task_push_outcome(lua_State *L, int hidx) {
  sl_task *t = (sl_task *)lua_touserdata(L, hidx);
  int n = t->status == SL_DONE ? t->nres : 1;
  hidx = lua_absindex(L, hidx);
  luaL_checkstack(L, n + 2, NULL);
  t->observed = 1;
  lua_pushboolean(L, t->status == SL_DONE);
  if (n == 0)
    return 1;
  lua_getiuservalue(L, hidx, SL_UV_RESULT);
  if (t->status == SL_DONE && n > 1) {
    int i, tbl = lua_gettop(L);
    for (i = 1; i <= n; i++)
      lua_rawgeti(L, tbl, i);
    lua_remove(L, tbl);
  }
  return n + 1;
}

/* Remembers the traceback of an error value re-raised in another task, so that if it
 * ends the main script the report shows where it really started. Expects the error at
 * the top and a traceback (or nil) below it; pops the traceback, leaves the error. */
static void remember_origin(lua_State *L) {
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, -3);
  lua_rawseti(L, -2, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sl_reraise_key);
  lua_remove(L, -2);
}

/* Pushes the results of the ended task at hidx, or raises its error. */
static int task_deliver(lua_State *L, int hidx) {
  int n = sl_task_push_outcome(L, hidx);
  if (!lua_toboolean(L, -n)) {
    lua_getiuservalue(L, hidx, SL_UV_TRACE);
    lua_insert(L, -2);
    remember_origin(L);
    return lua_error(L);
  }
  return n - 1;
}

/** core._reraise(err, traceback): raises err, remembering where it started */
static int l_reraise(lua_State *L) {
  lua_settop(L, 2);
  lua_insert(L, 1);
  remember_origin(L);
  return lua_error(L);
}

/** core._on_end(t, fn): fn(t) runs once t has ended (at once if it has), outside any
 * task: it must not wait. One callback per task; used by the executor's bookkeeping. */
static int l_on_end(lua_State *L) {
  sl_task *t = sl_task_check(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (sl_task_is_ended(t)) {
    lua_settop(L, 2);
    lua_insert(L, 1);
    lua_call(L, 1, 0);
    return 0;
  }
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, SL_UV_ONEND);
  t->has_on_end = 1;
  return 0;
}

/** core._observe(t): its error is reported by whoever called this, not by the handle */
static int l_observe(lua_State *L) {
  sl_task_check(L, 1)->observed = 1;
  return 0;
}

/* ------------------------------------------------------------- Lua API */

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L;
  (void)status;
  (void)ctx;
  return 0;
}

/** sl.sleep(seconds) -- sl.sleep(0) gives way to every other ready task once */
static int l_sleep(lua_State *L) {
  double s = lua_isnoneornil(L, 1) ? 0 : sl_check_seconds(L, 1, "sleep time");
  sl_task *me = sl_task_require(L, "sl.sleep");
  lua_settop(L, 0);
  return sl_task_wait(L, me, NULL, NULL, s, sleep_k, 0);
}

/** sl.now() -> seconds on the loop's monotonic clock */
static int l_now(lua_State *L) {
  lua_pushnumber(L, (double)sl_clock_ns(SL_ENGINE(L)) / 1e9);
  return 1;
}

/** sl.spawn(fn, ...) -> task */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  sl_task_new(L, 1, lua_gettop(L) - 1);
  return 1;
}

static void join_notify(sl_waiter *w) {
  sl_task *joiner = SL_CONTAINER_OF(w, sl_task, join_node);
  sl_task_wake(joiner, SL_WAKE_OK);
}

static void join_cleanup(sl_task *me, void *data) {
  (void)data;
  sl_task_remove_waiter(&me->join_node);
}

/* Common start of join and wait: returns 1 if the task at 1 has ended, else blocks. */
static int join_block(lua_State *L, sl_task *t, double timeout, lua_KFunction k) {
  sl_task *me = sl_task_require(L, "task:join");
  if (me == t)
    return luaL_error(L, "a task cannot wait for itself");
  me->join_node.notify = join_notify;
  sl_task_add_waiter(t, &me->join_node);
  return sl_task_wait(L, me, join_cleanup, NULL, timeout, k, 0);
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return task_deliver(L, 1);
}

/** t:join() -> results... (re-raises the task's error) */
static int t_join(lua_State *L) {
  sl_task *t = sl_task_check(L, 1);
  lua_settop(L, 1);
  if (sl_task_is_ended(t))
    return task_deliver(L, 1);
  return join_block(L, t, -1, join_k);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  sl_task *t = (sl_task *)lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  lua_pushboolean(L, sl_task_is_ended(t));
  return 1;
}

/** t:wait([timeout]) -> true once ended, false if the timeout passed first */
static int t_wait(lua_State *L) {
  sl_task *t = sl_task_check(L, 1);
  double timeout = lua_isnoneornil(L, 2) ? -1 : sl_check_seconds(L, 2, "timeout");
  lua_settop(L, 1);
  if (sl_task_is_ended(t)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return join_block(L, t, timeout, wait_k);
}

/** t:result() -> ok, values... without raising (pcall style); nil if still running */
static int t_result(lua_State *L) {
  sl_task *t = sl_task_check(L, 1);
  if (!sl_task_is_ended(t)) {
    lua_pushnil(L);
    return 1;
  }
  return sl_task_push_outcome(L, 1);
}

/** t:cancel() -> true if the task was still running */
static int t_cancel(lua_State *L) {
  sl_task *t = sl_task_check(L, 1);
  lua_pushboolean(L, !sl_task_is_ended(t));
  sl_task_cancel(t);
  return 1;
}

/** t:done() -> boolean */
static int t_done(lua_State *L) {
  lua_pushboolean(L, sl_task_is_ended(sl_task_check(L, 1)));
  return 1;
}

const char *const sl_status_names[] = {
  "suspended", "running", "done", "failed", "cancelled"
};

/** t:status() -> "running" | "suspended" | "done" | "failed" | "cancelled" */
static int t_status(lua_State *L) {
  lua_pushstring(L, sl_status_names[sl_task_check(L, 1)->status]);
  return 1;
}

/** t:traceback() -> the traceback of a failed task, or nil */
static int t_traceback(lua_State *L) {
  sl_task_check(L, 1);
  lua_getiuservalue(L, 1, SL_UV_TRACE);
  return 1;
}

/** t:id() -> the task's creation number */
static int t_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_task_check(L, 1)->id);
  return 1;
}

static int t_tostring(lua_State *L) {
  sl_task *t = sl_task_check(L, 1);
  lua_pushfstring(L, "task %I (%s)", (lua_Integer)t->id, sl_status_names[t->status]);
  return 1;
}

/* A failed task whose outcome nobody took is reported once, when its handle is collected
 * (or when the state closes at exit), like asyncio's "exception was never retrieved". */
static int t_gc(lua_State *L) {
  sl_task *t = sl_task_check(L, 1);
  if (t->status == SL_FAILED && !t->observed) {
    const char *msg;
    t->observed = 1;
    lua_getiuservalue(L, 1, SL_UV_TRACE);
    msg = lua_tostring(L, -1);
    if (msg == NULL) {
      lua_getiuservalue(L, 1, SL_UV_RESULT);
      msg = luaL_tolstring(L, -1, NULL);
    }
    fprintf(stderr, "sluice: task %lld failed and its error was never retrieved:\n%s\n",
            (long long)t->id, msg);
    fflush(stderr);
    t->E->unhandled++;
  }
  return 0;
}

/** sl.current() -> the running task, or nil outside tasks */
static int l_current(lua_State *L) {
  sl_task *t = sl_task_current(L);
  if (t == NULL)
    lua_pushnil(L);
  else
    sl_task_push_handle(L, t);
  return 1;
}

/* Sets fields wait (the function a waiting task is blocked in) and where (the innermost line
 * of user code, skipping sluice's own Lua files) of the table at the top of L. */
static void describe_stack(lua_State *L, lua_State *co, int waiting) {
  lua_Debug ar;
  int level;
  if (co == NULL)
    return;
  if (waiting && lua_getstack(co, 0, &ar) && lua_getinfo(co, "n", &ar) && ar.name != NULL) {
    lua_pushstring(L, ar.name);
    lua_setfield(L, -2, "wait");
  }
  for (level = 0; lua_getstack(co, level, &ar); level++) {
    if (!lua_getinfo(co, "Sl", &ar) || ar.currentline <= 0)
      continue;
    if (strncmp(ar.source, "@lua/sluice/", 12) == 0)
      continue;
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
    lua_setfield(L, -2, "where");
    return;
  }
}

/* Pushes a table describing t for the REPL's tasks(): {task, id, status ("running" |
 * "ready" | "waiting" | "suspended"), wait, left (seconds to its deadline), where
 * ("file:line" of user code), job (started by a primitive)}. */
static void describe_task(lua_State *L, sl_task *t, uint64_t now) {
  const char *state = t->status == SL_RUNNING ? "running" : t->queued ? "ready"
                      : t->waiting ? "waiting" : sl_status_names[t->status];
  lua_createtable(L, 0, 7);
  sl_task_push_handle(L, t);
  lua_setfield(L, -2, "task");
  lua_pushinteger(L, (lua_Integer)t->id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, state);
  lua_setfield(L, -2, "status");
  lua_pushboolean(L, t->internal);
  lua_setfield(L, -2, "job");
  if (t->timer.slot && t->timer.when > now) {
    lua_pushnumber(L, (double)(t->timer.when - now) / 1e9);
    lua_setfield(L, -2, "left");
  }
  describe_stack(L, t->co, t->waiting);
}

/* Pushes an array, oldest first, of every task that has not ended: their handles, or with
 * described set, a table describing each (describe_task) except the main task's. */
int sl_task_list(lua_State *L, int described) {
  sl_engine *E = SL_ENGINE(L);
  sl_queue *q;
  lua_Integer i = 0;
  uint64_t now = sl_clock_ns(E);
  lua_createtable(L, (int)E->nlive, 0);
  SL_QUEUE_FOREACH_REVERSE(q, &E->live) {
    sl_task *t = SL_QUEUE_DATA(q, sl_task, live_node);
    if (!described)
      sl_task_push_handle(L, t);
    else if (t != E->main)
      describe_task(L, t, now);
    else
      continue;
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/** sl.tasks() -> array of every task that has not ended, oldest first */
static int l_tasks(lua_State *L) {
  return sl_task_list(L, 0);
}

/* What core._handles counts: the handles a test could have left open, those that keep the
 * loop alive or hold a descriptor. Skipped: closing handles (as good as closed); unreferenced
 * timers (a client's or server's sweep timer goes with its object and holds nothing); the
 * engine's own: the drain check, the ready-queue spinner and the timer heap's timer by
 * address, and every async handle by kind (there are two, both the engine's: Ctrl-C and the
 * HTML parse thread's bell). An idle socket is unreferenced but counted: it holds a
 * descriptor until it is closed. */
static void count_handle(uv_handle_t *h, void *arg) {
  lua_State *L = (lua_State *)arg;
  sl_engine *E = SL_ENGINE(L);
  if (uv_is_closing(h) || (h->type == UV_TIMER && !uv_has_ref(h)) || h->type == UV_ASYNC
      || h == (uv_handle_t *)&E->drain || h == (uv_handle_t *)&E->spin
      || h == (uv_handle_t *)&E->heap_timer)
    return;
  lua_pushstring(L, uv_handle_type_name(h->type));
  lua_pushvalue(L, -1);
  lua_rawget(L, -3);
  lua_pushinteger(L, luaL_optinteger(L, -1, 0) + 1);
  lua_remove(L, -2);
  lua_rawset(L, -3);
}

/** core._handles() -> {kind = count}: the loop's open handles, less the engine's own */
static int l_handles(lua_State *L) {
  lua_newtable(L);
  uv_walk(SL_ENGINE(L)->loop, count_handle, L);
  return 1;
}

/** sl.is_cancelled(err) -> true for the cancellation error */
static int l_is_cancelled(lua_State *L) {
  lua_pushboolean(L, sl_is_cancelled(L, 1));
  return 1;
}

void sl_task_register(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"spawn", l_spawn},
    {"current", l_current},
    {"tasks", l_tasks},
    {"_handles", l_handles},
    {"is_cancelled", l_is_cancelled},
    {"_reraise", l_reraise},
    {"_observe", l_observe},
    {"_on_end", l_on_end},
    {"sleep", l_sleep},
    {"now", l_now},
    {NULL, NULL}
  };
  static const luaL_Reg methods[] = {
    {"join", t_join},
    {"wait", t_wait},
    {"result", t_result},
    {"cancel", t_cancel},
    {"done", t_done},
    {"status", t_status},
    {"traceback", t_traceback},
    {"id", t_id},
    {NULL, NULL}
  };
  static const luaL_Reg metamethods[] = {
    {"__tostring", t_tostring},
    {NULL, NULL}
  };
  static const luaL_Reg failed_metamethods[] = {
    {"__tostring", t_tostring},
    {"__gc", t_gc},
    {NULL, NULL}
  };
  sl_newmeta(L, SL_TASK_MT, methods, metamethods);
  sl_newmeta(L, SL_FAILED_MT, methods, failed_metamethods);
  luaL_getmetatable(L, SL_TASK_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sl_task_mt_key);
  luaL_getmetatable(L, SL_FAILED_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sl_failed_mt_key);
  lua_pushlightuserdata(L, &sl_wait_mark);
  lua_setfield(L, -2, "_wait_mark");
  sl_push_cancelled(L);   /* (made with the engine, by task.c) */
  lua_setfield(L, -2, "cancelled");
  luaL_setfuncs(L, funcs, 0);
}
