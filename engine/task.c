/* task.c: the task record, spawning, the ready queue and the one resume helper, ending,
 * waiting and waking, cancellation and its error, and waiting out work done on another
 * thread. A task is a coroutine plus a C record kept inside its Lua handle (a userdata); the
 * Lua-facing methods are in task_api.c. Below it are only timer.c and util.c; loop.c, above,
 * starts it (sl_task_engine_init) and runs the loop that drains its queue. */
#include <stdio.h>
#include <string.h>

#include "sluice.h"

/* Finished coroutines kept for reuse; creating one costs more than the rest of a spawn. */
#define POOL_MAX 256

/* Registry keys (by address, cheaper than by name) of the two task metatables. */
char sl_task_mt_key, sl_failed_mt_key;

/* Registry key of the last re-raised task error and its original traceback. */
char sl_reraise_key;

/* Yielded by a wait so that a task-level yield can be told from a stray coroutine.yield. */
char sl_wait_mark;

/* Registry key of the cancellation error object. */
static char cancelled_key;

/* ----------------------------------------------------------- cancellation */

/* The cancellation error is one table, told apart by identity (and shown by its metatable's
 * __tostring); made once for the engine, before any task can be cancelled. */
void sl_push_cancelled(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cancelled_key);
}

int sl_is_cancelled(lua_State *L, int idx) {
  int r;
  idx = lua_absindex(L, idx);
  sl_push_cancelled(L);
  r = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return r;
}

static int cancelled_tostring(lua_State *L) {
  lua_pushliteral(L, "cancelled");
  return 1;
}

/* Message handler for the user's handlers run by a server or listener: keeps the
 * cancellation error as it is (the handler's task is ending), adds a traceback to anything
 * else. */
int sl_handler_msgh(lua_State *L) {
  if (sl_is_cancelled(L, 1))
    return 1;
  return sl_traceback_msgh(L);
}

/* ---------------------------------------------------------------- handles */

/* A task handle has one of two metatables: finalizers are costly (Lua runs a few per GC
 * step, so a million finalizable handles outpace the collector), and only a failed task
 * needs one, to report an error nobody retrieved. */
sl_task *sl_task_test(lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  int ok = 0;
  if (p != NULL && lua_getmetatable(L, idx)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_task_mt_key);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    if (!ok) {
      lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_failed_mt_key);
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

/* ----------------------------------------------------------- ready queue */

/* The idle handle only keeps poll from blocking while tasks are ready; it does nothing. */
static void spin_cb(uv_idle_t *h) {
  (void)h;
}

/* Waking a task only queues it; the drain resumes it later, never the waker. A singly
 * linked FIFO through the task records: only appended to and popped, never unlinked in the
 * middle. */
static void task_enqueue(sl_engine *E, sl_task *t) {
  if (t->queued)
    return;
  t->queued = 1;
  t->next_ready = NULL;
  if (E->ready_tail)
    E->ready_tail->next_ready = t;
  else
    E->ready_head = t;
  E->ready_tail = t;
  if (!uv_is_active((uv_handle_t *)&E->spin))
    uv_idle_start(&E->spin, spin_cb);
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
    lua_setiuservalue(co, -2, SL_UV_TRACE);
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
  t = (sl_task *)lua_newuserdatauv(L, sizeof(*t), SL_UV_COUNT);
  memset(t, 0, sizeof(*t));
  t->ref = LUA_NOREF;
  t->status = SL_SUSPENDED;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_task_mt_key);
  lua_setmetatable(L, -2);
  co = pool_take(E, L);
  lua_setiuservalue(L, -2, SL_UV_CO);
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
  sl_queue_init(&t->waiters);
  sl_queue_init(&t->wq_node);
  sl_queue_insert_head(&E->live, &t->live_node);
  E->nlive++;
  task_enqueue(E, t);
  return t;
}

/* ---------------------------------------------------------------- ending */

static void task_unlink_live(sl_engine *E, sl_task *t) {
  sl_queue_remove(&t->live_node);
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
    lua_getiuservalue(L, -1, SL_UV_TRACE);
    msg = lua_tostring(L, -1);
    if (msg == NULL) {
      lua_getiuservalue(L, -2, SL_UV_RESULT);
      msg = luaL_tolstring(L, -1, NULL);
    }
    fprintf(stderr, "sluice: %s\n", msg);
    /* An error re-raised from another task: show that task's traceback too. */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_reraise_key);
    if (lua_istable(L, -1)) {
      lua_rawgeti(L, -1, 1);
      lua_getiuservalue(L, top + 1, SL_UV_RESULT);
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
  if (lua_getiuservalue(L, -1, SL_UV_ONEND) != LUA_TNIL) {
    lua_pushnil(L);
    lua_setiuservalue(L, top + 1, SL_UV_ONEND);
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
      lua_setiuservalue(L, -2, SL_UV_RESULT);
    } else if (n > 1) {
      int i;
      lua_createtable(L, n, 1);
      lua_xmove(co, L, n);
      for (i = n; i >= 1; i--)
        lua_rawseti(L, -1 - i, i);
      lua_setiuservalue(L, -2, SL_UV_RESULT);
    }
    t->nres = n;
  } else {
    lua_xmove(co, L, 1);
    lua_setiuservalue(L, -2, SL_UV_RESULT);
    t->nres = 1;
    if (status == SL_FAILED && !t->observed) {
      lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_failed_mt_key);   /* arms the "never retrieved" */
      lua_setmetatable(L, -2);                             /* report in __gc */
    }
  }
  lua_pushnil(L);
  lua_setiuservalue(L, -2, SL_UV_CO);
  lua_pop(L, 1);
  t->status = (uint8_t)status;
  E->ended[status]++;
  t->co = NULL;
  t->cancel_req = 0;
  if (t->timer.slot)
    sl_timer_stop(E, &t->timer);
  pool_give(E, L, co);
  task_unlink_live(E, t);
  while (!sl_queue_empty(&t->waiters)) {
    w = SL_QUEUE_DATA(sl_queue_head(&t->waiters), sl_waiter, node);
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
static void task_run(sl_engine *E, sl_task *t) {
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

/* Runs the tasks queued when the pass began; tasks they wake wait for the next pass, after
 * the loop has polled for I/O, so a task yielding in a loop cannot starve the network. */
static void drain_cb(uv_check_t *h) {
  sl_engine *E = (sl_engine *)h->data;
  sl_task *last = E->ready_tail;
  while (E->ready_head != NULL) {
    sl_task *t = E->ready_head;
    E->ready_head = t->next_ready;
    if (E->ready_head == NULL)
      E->ready_tail = NULL;
    t->next_ready = NULL;
    t->queued = 0;
    task_run(E, t);
    if (t == last)
      break;
  }
  if (E->ready_head == NULL)
    uv_idle_stop(&E->spin);
}

/* The task layer's part of a new engine: the ready queue's drain (a check handle, after
 * every poll) and spinner, the coroutine pool, and the cancellation error. */
void sl_task_engine_init(sl_engine *E) {
  lua_State *L = E->L;
  static const luaL_Reg cancelled_meta[] = {
    {"__tostring", cancelled_tostring},
    {NULL, NULL}
  };
  sl_queue_init(&E->live);
  uv_check_init(E->loop, &E->drain);
  E->drain.data = E;
  uv_check_start(&E->drain, drain_cb);
  uv_unref((uv_handle_t *)&E->drain);
  uv_idle_init(E->loop, &E->spin);
  E->spin.data = E;
  lua_newtable(L);
  E->pool_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  sl_newmeta(L, SL_CANCELLED_MT, NULL, cancelled_meta);
  luaL_setmetatable(L, SL_CANCELLED_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cancelled_key);
}

/* ------------------------------------------------------- waiting, waking */

void sl_task_add_waiter(sl_task *t, sl_waiter *w) {
  w->task = t;
  sl_queue_insert_head(&t->waiters, &w->node);
}

void sl_task_remove_waiter(sl_waiter *w) {
  sl_task *t = w->task;
  if (t == NULL)
    return;
  sl_queue_remove(&w->node);
  w->task = NULL;
}

static void task_timer_cb(sl_timer *tm) {
  sl_task *t = SL_CONTAINER_OF(tm, sl_task, timer);
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
  task_enqueue(t->E, t);
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
  sl_queue *q;
  SL_QUEUE_FOREACH(q, &E->live)
    sl_task_cancel(SL_QUEUE_DATA(q, sl_task, live_node));
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

/* A continuation for waits that return nothing: with catch_cancel set, a cancellation
 * still ends the task (after the caller's cleanup has run). */
int sl_task_k_end(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  if (sl_task_current(L)->wake == SL_WAKE_CANCEL) {
    sl_push_cancelled(L);
    return lua_error(L);
  }
  return 0;
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
  lua_pushlightuserdata(L, &sl_wait_mark);
  return lua_yieldk(L, 1, 0, task_wait_k);
}

/* ---------------------------------------- waiting out work on another thread */

/* See sluice.h. catch_cancel brings a cancellation to k instead of raising it, and the wait
 * has no cleanup: the work cannot be taken back, whoever finishes it wakes the task. */
int sl_task_wait_work(lua_State *L, sl_task *t, lua_KFunction k, lua_KContext ctx) {
  t->catch_cancel = 1;
  return sl_task_wait(L, t, NULL, NULL, -1, k, ctx);
}

/* Called first in k, so t->wake is this wake's: a cancellation is held until done, then
 * left pending for the task's next wait. */
int sl_task_work_done(lua_State *L, int done) {
  sl_task *t = SL_ENGINE(L)->current;
  if (t->wake == SL_WAKE_CANCEL)
    t->held_cancel = 1;
  if (!done)
    return 0;
  if (t->held_cancel) {
    t->held_cancel = 0;
    t->cancel_req = 1;
  }
  return 1;
}
