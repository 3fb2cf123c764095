/* task.c: the task record, spawning, the one resume helper, waiting and waking, cancellation
 * and join. A task is a coroutine plus a C record kept inside its Lua handle (a userdata). */
#include <string.h>

#include "internal.h"

/* The handle's user values: the coroutine while the task lives, then its outcome. */
enum { UV_CO = 1, UV_RESULT = 2, UV_TRACE = 3, UV_ONEND = 4, UV_COUNT = 4 };

/* Finished coroutines kept for reuse; creating one costs more than the rest of a spawn. */
#define POOL_MAX 256

/* Registry keys (by address, cheaper than by name) of the two task metatables. */
static char task_mt_key, failed_mt_key;

/* Registry key of the last re-raised task error and its original traceback. */
static char reraise_key;

/* Yielded by a wait so that a task-level yield can be told from a stray coroutine.yield. */
static char wait_mark;

/* ---------------------------------------------------------------- handles */

/* A task handle has one of two metatables: finalizers are costly (Lua runs a few per GC
 * step, so a million finalizable handles outpace the collector), and only a failed task
 * needs one, to report an error nobody retrieved. */
sl_task *sl_task_test(lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  int ok = 0;
  if (p != NULL && lua_getmetatable(L, idx)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &task_mt_key);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    if (!ok) {
      lua_rawgetp(L, LUA_REGISTRYINDEX, &failed_mt_key);
      ok = lua_rawequal(L, -1, -2);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return ok ? (sl_task *)p : NULL;
}

sl_task *sl_task_check(lua_State *L, int idx) {
  sl_task *t = sl_task_test(L, idx);
  if (t == NULL)
    luaL_typeerror(L, idx, "task");
  return t;
}

sl_task *sl_task_current(lua_State *L) {
  return SL_ENGINE(L)->current;
}

sl_task *sl_task_require(lua_State *L, const char *what) {
  sl_task *t = SL_ENGINE(L)->current;
  if (t == NULL)
    luaL_error(L, "%s must be called inside a task (use sl.spawn, or call it from the "
               "main script)", what);
  if (!lua_isyieldable(L))
    luaL_error(L, "%s cannot wait here: the call is not yieldable (inside a metamethod "
               "or a C function called from Lua?)", what);
  return t;
}

int sl_task_is_ended(const sl_task *t) {
  return t->status >= SL_DONE;
}

void sl_task_push_handle(lua_State *L, sl_task *t) {
  /* Only live tasks have a ref; callers hold ended ones on their own stacks or tables. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
}

/* Pops a coroutine from the pool or makes one; pushes it on L. */
static lua_State *pool_take(sl_engine *E, lua_State *L) {
  if (E->npool > 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, E->pool_ref);
    lua_rawgeti(L, -1, E->npool);
    lua_pushnil(L);
    lua_rawseti(L, -3, E->npool--);
    lua_remove(L, -2);
    return lua_tothread(L, -1);
  }
  return lua_newthread(L);
}

/* Keeps a coroutine that ended cleanly for the next spawn; expects nothing on L. */
static void pool_give(sl_engine *E, lua_State *L, lua_State *co) {
  if (E->npool >= POOL_MAX || lua_status(co) != LUA_OK)
    return;
  lua_settop(co, 0);
  lua_sethook(co, NULL, 0, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, E->pool_ref);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  lua_rawseti(L, -2, ++E->npool);
  lua_pop(L, 1);
}

/* ----------------------------------------------------------------- entry */

/* Message handler of a task's outermost pcall: records the traceback in the handle before
 * the stack unwinds, and leaves the error value itself untouched so join re-raises it. */
static int task_msgh(lua_State *co) {
  sl_task *t = SL_ENGINE(co)->current;
  if (t != NULL && !sl_is_cancelled(co, 1)) {
    const char *msg = lua_tostring(co, 1);
    if (msg == NULL) {
      if (luaL_callmeta(co, 1, "__tostring") && lua_type(co, -1) == LUA_TSTRING)
        msg = lua_tostring(co, -1);
      else
        msg = lua_pushfstring(co, "(error object is a %s value)", luaL_typename(co, 1));
    }
    luaL_traceback(co, co, msg, 1);
    sl_task_push_handle(co, t);
    lua_insert(co, -2);
    lua_setiuservalue(co, -2, UV_TRACE);
    lua_settop(co, 1);
  }
  return 1;
}

/* Continuation of task_entry: stack is msgh, then results or the error. Returns
 * true, results... or false, error, so the scheduler never sees a raw error. */
static int task_entry_k(lua_State *co, int status, lua_KContext ctx) {
  (void)ctx;
  lua_pushboolean(co, status == LUA_OK || status == LUA_YIELD);
  lua_insert(co, 2);
  return lua_gettop(co) - 1;
}

/* Body of every task: expects msgh, fn, args... */
static int task_entry(lua_State *co) {
  int st = lua_pcallk(co, lua_gettop(co) - 2, LUA_MULTRET, 1, 0, task_entry_k);
  return task_entry_k(co, st, 0);
}

/* Starts fn (at fidx, followed by nargs arguments which are popped) as a new task queued to
 * run; pushes its handle. */
sl_task *sl_task_new(lua_State *L, int fidx, int nargs) {
  sl_engine *E = SL_ENGINE(L);
  sl_task *t;
  lua_State *co;
  fidx = lua_absindex(L, fidx);
  luaL_checkstack(L, 4, NULL);
  t = (sl_task *)lua_newuserdatauv(L, sizeof(*t), UV_COUNT);
  memset(t, 0, sizeof(*t));
  t->ref = LUA_NOREF;
  t->status = SL_SUSPENDED;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &task_mt_key);
  lua_setmetatable(L, -2);
  co = pool_take(E, L);
  lua_setiuservalue(L, -2, UV_CO);
  t->co = co;
  t->E = E;
  t->id = ++E->next_id;
  if (!lua_checkstack(co, nargs + 4))
    luaL_error(L, "not enough stack to start a task with %d arguments", nargs);
  lua_pushcfunction(co, task_entry);
  lua_pushcfunction(co, task_msgh);
  lua_pushvalue(L, fidx);
  lua_xmove(L, co, 1);
  if (nargs > 0) {
    int i;
    for (i = 1; i <= nargs; i++)
      lua_pushvalue(L, fidx + i);
    lua_xmove(L, co, nargs);
  }
  t->nargs = 2 + nargs;
  lua_pushvalue(L, -1);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->live_next = E->live;
  if (E->live)
    E->live->live_prev = t;
  E->live = t;
  E->nlive++;
  sl_engine_enqueue(E, t);
  return t;
}

/* ---------------------------------------------------------------- ending */

static void task_unlink_live(sl_engine *E, sl_task *t) {
  if (t->live_prev)
    t->live_prev->live_next = t->live_next;
  else
    E->live = t->live_next;
  if (t->live_next)
    t->live_next->live_prev = t->live_prev;
  t->live_next = t->live_prev = NULL;
  E->nlive--;
}

/* The main script failed: report it now, with its traceback, and cancel everything else so
 * the process ends once their cleanups have run. Expects nothing on the stack. */
static void main_failed(sl_engine *E, sl_task *t) {
  lua_State *L = E->L;
  t->observed = 1;
  if (t->status == SL_FAILED) {
    const char *msg;
    int top = lua_gettop(L);
    sl_task_push_handle(L, t);
    lua_getiuservalue(L, -1, UV_TRACE);
    msg = lua_tostring(L, -1);
    if (msg == NULL) {
      lua_getiuservalue(L, -2, UV_RESULT);
      msg = luaL_tolstring(L, -1, NULL);
    }
    fprintf(stderr, "sluice: %s\n", msg);
    /* An error re-raised from another task: show that task's traceback too. */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &reraise_key);
    if (lua_istable(L, -1)) {
      lua_rawgeti(L, -1, 1);
      lua_getiuservalue(L, top + 1, UV_RESULT);
      lua_rawgeti(L, -3, 2);
      if (lua_rawequal(L, -2, -3) && lua_isstring(L, -1))
        fprintf(stderr, "the error was raised first in another task:\n%s\n",
                lua_tostring(L, -1));
    }
    fflush(stderr);
    lua_settop(L, top);
    E->exit_code = 1;
  } else if (!E->interrupted) {
    fprintf(stderr, "sluice: the main script was cancelled\n");
    E->exit_code = 1;
  }
  /* After Ctrl-C every task was already cancelled once; cancelling again would cut short
   * cleanups that wait (a <close> handler flushing a file, say). */
  if (!E->interrupted)
    sl_task_cancel_all(E);
}

/* Calls the task's end callback, if any, with its handle: on the main state, outside any
 * task, so it cannot wait. An error in it is reported, never propagated into the loop. */
static void run_on_end(sl_engine *E, sl_task *t) {
  lua_State *L = E->L;
  int top = lua_gettop(L);
  if (!t->has_on_end)
    return;
  t->has_on_end = 0;
  sl_task_push_handle(L, t);
  if (lua_getiuservalue(L, -1, UV_ONEND) != LUA_TNIL) {
    lua_pushnil(L);
    lua_setiuservalue(L, top + 1, UV_ONEND);
    lua_pushcfunction(L, sl_traceback_msgh);
    lua_insert(L, -2);
    lua_pushvalue(L, top + 1);
    if (lua_pcall(L, 1, 0, top + 2) != LUA_OK) {
      fprintf(stderr, "sluice: error in the end callback of task %lld: %s\n",
              (long long)t->id, lua_tostring(L, -1));
      fflush(stderr);
    }
  }
  lua_settop(L, top);
}

/* Ends a task: moves its outcome (the top n values of co) into the handle, recycles the
 * coroutine, tells every waiter. Runs on the main state between resumes. */
static void task_finish(sl_engine *E, sl_task *t, int status, int n) {
  lua_State *L = E->L;
  lua_State *co = t->co;
  sl_waiter *w;
  luaL_checkstack(L, n + 3, NULL);
  sl_task_push_handle(L, t);
  if (status == SL_DONE) {
    if (n == 1) {
      lua_xmove(co, L, 1);
      lua_setiuservalue(L, -2, UV_RESULT);
    } else if (n > 1) {
      int i;
      lua_createtable(L, n, 1);
      lua_xmove(co, L, n);
      for (i = n; i >= 1; i--)
        lua_rawseti(L, -1 - i, i);
      lua_setiuservalue(L, -2, UV_RESULT);
    }
    t->nres = n;
  } else {
    lua_xmove(co, L, 1);
    lua_setiuservalue(L, -2, UV_RESULT);
    t->nres = 1;
    if (status == SL_FAILED && !t->observed) {
      lua_rawgetp(L, LUA_REGISTRYINDEX, &failed_mt_key);   /* arms the "never retrieved" */
      lua_setmetatable(L, -2);                             /* report in __gc */
    }
  }
  lua_pushnil(L);
  lua_setiuservalue(L, -2, UV_CO);
  lua_pop(L, 1);
  t->status = (uint8_t)status;
  t->co = NULL;
  t->cancel_req = 0;
  if (t->timer.slot)
    sl_timer_stop(E, &t->timer);
  pool_give(E, L, co);
  task_unlink_live(E, t);
  while ((w = t->waiters) != NULL) {
    sl_task_remove_waiter(w);
    w->notify(w);
  }
  if (t == E->main && status != SL_DONE)
    main_failed(E, t);
  run_on_end(E, t);
  luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
  t->ref = LUA_NOREF;
}

/* The one resume helper: runs a queued task until it waits or ends. Called only by the
 * ready-queue drain, never from inside another task's wake-up. */

void sl_task_run(sl_engine *E, sl_task *t) {
  lua_State *co = t->co;
  int nres = 0, st;
  if (!t->started) {
    t->started = 1;
    if (t->cancel_req) {              /* cancelled before it ever ran */
      lua_settop(co, 0);
      sl_push_cancelled(co);
      task_finish(E, t, SL_CANCELLED, 1);
      return;
    }
  }
  E->current = t;
  t->status = SL_RUNNING;
  st = lua_resume(co, E->L, t->nargs, &nres);
  t->nargs = 0;
  E->current = NULL;
  if (st == LUA_YIELD) {
    t->status = SL_SUSPENDED;
    if (t->waiting || t->queued) {
      lua_pop(co, nres);
      return;
    }
    /* A bare coroutine.yield at the task's top level: nothing would ever resume it. */
    lua_pop(co, nres);
    sl_closethread(co, E->L);
    lua_settop(co, 0);
    lua_pushliteral(co, "coroutine.yield called directly in a task; use sl.sleep(0) to "
                        "give way to other tasks");
    task_finish(E, t, SL_FAILED, 1);
    return;
  }
  if (st == LUA_OK && lua_toboolean(co, -nres)) {
    task_finish(E, t, SL_DONE, nres - 1);
  } else {
    /* false, err from task_entry, or an error outside its pcall (memory, msgh). */
    int cancelled = sl_is_cancelled(co, -1);
    if (st != LUA_OK) {
      lua_xmove(co, E->L, 1);
      sl_closethread(co, E->L);
      lua_xmove(E->L, co, 1);
    }
    task_finish(E, t, cancelled ? SL_CANCELLED : SL_FAILED, 1);
  }
}

/* ------------------------------------------------------- waiting, waking */

void sl_task_add_waiter(sl_task *t, sl_waiter *w) {
  w->task = t;
  w->prev = NULL;
  w->next = t->waiters;
  if (t->waiters)
    t->waiters->prev = w;
  t->waiters = w;
}

void sl_task_remove_waiter(sl_waiter *w) {
  sl_task *t = w->task;
  if (t == NULL)
    return;
  if (w->prev)
    w->prev->next = w->next;
  else
    t->waiters = w->next;
  if (w->next)
    w->next->prev = w->prev;
  w->next = w->prev = NULL;
  w->task = NULL;
}

static void task_timer_cb(sl_timer *tm) {
  sl_task *t = (sl_task *)((char *)tm - offsetof(sl_task, timer));
  sl_task_wake(t, SL_WAKE_TIMEOUT);
}

void sl_task_wake(sl_task *t, int wake) {
  if (!t->waiting)
    return;
  t->waiting = 0;
  t->wake = (uint8_t)wake;
  if (t->timer.slot)
    sl_timer_stop(t->E, &t->timer);
  if (wake != SL_WAKE_OK && t->cleanup != NULL)
    t->cleanup(t, t->cleanup_data);
  t->cleanup = NULL;
  t->cleanup_data = NULL;
  sl_engine_enqueue(t->E, t);
}

void sl_task_cancel(sl_task *t) {
  if (sl_task_is_ended(t))
    return;
  if (t->waiting)
    sl_task_wake(t, SL_WAKE_CANCEL);
  else
    t->cancel_req = 1;   /* running, queued or not started: delivered at its next wait */
}

void sl_task_cancel_all(sl_engine *E) {
  sl_task *t;
  for (t = E->live; t != NULL; t = t->live_next)
    sl_task_cancel(t);
}

/* The continuation of every wait: delivers a cancellation, else hands over to the
 * primitive's own continuation saved in the task (one wait at a time per task). */
static int task_wait_k(lua_State *L, int status, lua_KContext ctx) {
  sl_task *t = SL_ENGINE(L)->current;
  (void)status;
  (void)ctx;
  if (t->wake == SL_WAKE_CANCEL || (t->cancel_req && !t->handoff)) {
    t->cancel_req = 0;
    t->wake = SL_WAKE_CANCEL;
    t->handoff = 0;
    if (t->catch_cancel) {
      t->catch_cancel = 0;
      return t->k(L, LUA_YIELD, t->kctx);
    }
    sl_push_cancelled(L);
    return lua_error(L);
  }
  t->handoff = 0;
  t->catch_cancel = 0;
  return t->k(L, LUA_YIELD, t->kctx);
}

int sl_task_wait(lua_State *L, sl_task *t, sl_cleanup_fn cleanup, void *data,
                 double timeout, lua_KFunction k, lua_KContext ctx) {
  if (t->cancel_req) {
    if (cleanup != NULL)
      cleanup(t, data);
    t->cancel_req = 0;
    t->handoff = 0;
    if (t->catch_cancel) {
      t->catch_cancel = 0;
      t->wake = SL_WAKE_CANCEL;
      return k(L, LUA_OK, ctx);
    }
    sl_push_cancelled(L);
    return lua_error(L);
  }
  t->k = k;
  t->kctx = ctx;
  t->waiting = 1;
  t->wake = SL_WAKE_OK;
  t->cleanup = cleanup;
  t->cleanup_data = data;
  if (timeout == 0) {
    sl_task_wake(t, SL_WAKE_TIMEOUT);
  } else if (timeout > 0) {
    t->timer.cb = task_timer_cb;
    sl_timer_start(t->E, &t->timer, timeout);
  }
  lua_pushlightuserdata(L, &wait_mark);
  return lua_yieldk(L, 1, 0, task_wait_k);
}

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
  lua_getiuservalue(L, hidx, UV_RESULT);
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
  lua_rawsetp(L, LUA_REGISTRYINDEX, &reraise_key);
  lua_remove(L, -2);
}

/* Pushes the results of the ended task at hidx, or raises its error. */
static int task_deliver(lua_State *L, int hidx) {
  int n = sl_task_push_outcome(L, hidx);
  if (!lua_toboolean(L, -n)) {
    lua_getiuservalue(L, hidx, UV_TRACE);
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
  lua_setiuservalue(L, 1, UV_ONEND);
  t->has_on_end = 1;
  return 0;
}

/** core._observe(t): its error is reported by whoever called this, not by the handle */
static int l_observe(lua_State *L) {
  sl_task_check(L, 1)->observed = 1;
  return 0;
}

/* ------------------------------------------------------------- Lua API */

/** sl.spawn(fn, ...) -> task */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  sl_task_new(L, 1, lua_gettop(L) - 1);
  return 1;
}

static void join_notify(sl_waiter *w) {
  sl_task *joiner = (sl_task *)((char *)w - offsetof(sl_task, join_node));
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

static const char *const status_names[] = {
  "suspended", "running", "done", "failed", "cancelled"
};

/** t:status() -> "running" | "suspended" | "done" | "failed" | "cancelled" */
static int t_status(lua_State *L) {
  lua_pushstring(L, status_names[sl_task_check(L, 1)->status]);
  return 1;
}

/** t:traceback() -> the traceback of a failed task, or nil */
static int t_traceback(lua_State *L) {
  sl_task_check(L, 1);
  lua_getiuservalue(L, 1, UV_TRACE);
  return 1;
}

/** t:id() -> the task's creation number */
static int t_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_task_check(L, 1)->id);
  return 1;
}

static int t_tostring(lua_State *L) {
  sl_task *t = sl_task_check(L, 1);
  lua_pushfstring(L, "task %I (%s)", (lua_Integer)t->id, status_names[t->status]);
  return 1;
}

/* A failed task whose outcome nobody took is reported once, when its handle is collected
 * (or when the state closes at exit), like asyncio's "exception was never retrieved". */
static int t_gc(lua_State *L) {
  sl_task *t = sl_task_check(L, 1);
  if (t->status == SL_FAILED && !t->observed) {
    const char *msg;
    t->observed = 1;
    lua_getiuservalue(L, 1, UV_TRACE);
    msg = lua_tostring(L, -1);
    if (msg == NULL) {
      lua_getiuservalue(L, 1, UV_RESULT);
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

/** sl.tasks() -> array of every task that has not ended, oldest first */
static int l_tasks(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  sl_task *t, *last = NULL;
  lua_Integer i = 0;
  lua_createtable(L, (int)E->nlive, 0);
  for (t = E->live; t != NULL; t = t->live_next)
    last = t;
  for (t = last; t != NULL; t = t->live_prev) {
    sl_task_push_handle(L, t);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/** sl.is_cancelled(err) -> true for the cancellation error */
static int l_is_cancelled(lua_State *L) {
  lua_pushboolean(L, sl_is_cancelled(L, 1));
  return 1;
}

static int cancelled_tostring(lua_State *L) {
  lua_pushliteral(L, "cancelled");
  return 1;
}

void sl_push_cancelled(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, (void *)&status_names);
}

int sl_is_cancelled(lua_State *L, int idx) {
  int r;
  idx = lua_absindex(L, idx);
  sl_push_cancelled(L);
  r = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return r;
}

void sl_task_register(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"spawn", l_spawn},
    {"current", l_current},
    {"tasks", l_tasks},
    {"is_cancelled", l_is_cancelled},
    {"_reraise", l_reraise},
    {"_observe", l_observe},
    {"_on_end", l_on_end},
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
  static const luaL_Reg cancelled_meta[] = {
    {"__tostring", cancelled_tostring},
    {NULL, NULL}
  };
  sl_newmeta(L, SL_TASK_MT, methods, metamethods);
  sl_newmeta(L, SL_FAILED_MT, methods, failed_metamethods);
  luaL_getmetatable(L, SL_TASK_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &task_mt_key);
  luaL_getmetatable(L, SL_FAILED_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &failed_mt_key);
  lua_pushlightuserdata(L, &wait_mark);
  lua_setfield(L, -2, "_wait_mark");
  /* The cancellation error: one table, told apart by identity and by its metatable. */
  lua_newtable(L);
  sl_newmeta(L, SL_CANCELLED_MT, NULL, cancelled_meta);
  luaL_setmetatable(L, SL_CANCELLED_MT);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, (void *)&status_names);
  lua_setfield(L, -2, "cancelled");
  luaL_setfuncs(L, funcs, 0);
}
