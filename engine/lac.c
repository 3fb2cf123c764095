/* lac.c: sl.limited_as_completed(source, limit [, handler]), the seeds' primitive in C.
 * At most `limit` jobs are running or finished-but-not-taken; the source is pulled only when
 * a slot is free, so memory depends on the limit and never on the number of jobs.
 *
 * Jobs run on worker tasks (at most `limit`, started on demand): the consumer pulls an item
 * and hands it to an idle worker, which runs it and posts a row (ok, value, job) to a ring
 * the consumer reads in completion order. A job costs a hand-off and a post, not a task. */
#include <string.h>

#include "sluice.h"

typedef struct lac {
  int limit;
  int running;                 /* items handed to workers and not yet posted */
  int ndone;                   /* rows posted and not yet taken by the consumer */
  int nworkers;                /* worker tasks alive */
  lua_Integer rhead;           /* ring position of the oldest row (rows are 3 slots each) */
  lua_Integer pos;             /* next index when the source is an array */
  lua_Integer pulled;          /* items taken from the source so far */
  uint8_t exhausted;           /* the source returned nil (or raised) */
  uint8_t is_array;
  uint8_t has_handler;
  uint8_t closed;              /* loop left or ended: rows are dropped, workers go away */
  sl_task *waiter;             /* the consumer, while blocked */
  sl_waitq idle;               /* workers waiting for an item */
  sl_task *workers[1];         /* limit entries: live workers by index, NULL when gone */
} lac;

/* User values: the source, the handler, the row ring (3 * limit slots). */
enum { UV_SOURCE = 1, UV_HANDLER, UV_ROWS, UV_N = 3 };

/* Registry key of the metatable, by address: the iterator checks it on every row, and a
 * lookup by name costs a string comparison each time. */
static char lac_mt_key;

static lac *check_lac(lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  if (p != NULL && lua_getmetatable(L, idx)) {
    int same;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lac_mt_key);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (same)
      return (lac *)p;
  }
  luaL_typeerror(L, idx, SL_LAC_MT);
  return NULL;
}

static void wake_consumer(lac *a) {
  if (a->waiter != NULL) {
    sl_task *t = a->waiter;
    a->waiter = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
}

/* ---------------------------------------------------------------- workers */

static int worker_run(lua_State *L);

/* A worker leaves: it was cancelled, or the loop is over. A cancelled worker ends with the
 * cancellation error, so its status says "cancelled" like any other task's. */
static int worker_exit(lua_State *L, lac *a, int cancelled) {
  int idx = (int)lua_tointeger(L, 2);
  a->workers[idx] = NULL;
  a->nworkers--;
  wake_consumer(a);
  if (cancelled) {
    sl_push_cancelled(L);
    return lua_error(L);
  }
  return 0;
}

static void idle_cleanup(sl_task *t, void *data) {
  sl_waitq_remove(&((lac *)data)->idle, t);
}

/* Resumed with the next item (handed over by the consumer), or cancelled. */
static int idle_k(lua_State *L, int status, lua_KContext ctx) {
  lac *a = (lac *)lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  if (sl_task_current(L)->wake == SL_WAKE_CANCEL)
    return worker_exit(L, a, 1);
  if (a->closed)
    return worker_exit(L, a, 0);
  return worker_run(L);
}

/* Posts the job's outcome (top of stack; job at 3) as a row, then waits for the next item.
 * Stack: lac, index, job, result-or-error. */
static int job_k(lua_State *L, int status, lua_KContext ctx) {
  lac *a = (lac *)lua_touserdata(L, 1);
  int ok = status == LUA_OK || status == LUA_YIELD;
  int cancelled = !ok && sl_is_cancelled(L, -1);
  sl_task *me;
  (void)ctx;
  a->running--;
  if (!a->closed) {
    lua_Integer r = 3 * ((a->rhead + a->ndone) % a->limit);
    lua_getiuservalue(L, 1, UV_ROWS);
    lua_pushboolean(L, ok);
    lua_rawseti(L, -2, r + 1);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, r + 2);
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, r + 3);
    a->ndone++;
    wake_consumer(a);
  }
  lua_settop(L, 2);
  if (cancelled || a->closed)
    return worker_exit(L, a, cancelled);
  me = sl_task_current(L);
  sl_waitq_push(&a->idle, me);
  me->handoff = 1;             /* an item handed over is run even if a cancel follows */
  me->catch_cancel = 1;
  return sl_task_wait(L, me, idle_cleanup, a, -1, idle_k, 0);
}

/* Runs the job at 3: handler(job), or job() when there is no handler. */
static int worker_run(lua_State *L) {
  lac *a = (lac *)lua_touserdata(L, 1);
  int st;
  lua_settop(L, 3);
  if (a->has_handler) {
    lua_getiuservalue(L, 1, UV_HANDLER);
    lua_pushvalue(L, 3);
    st = lua_pcallk(L, 1, 1, 0, 0, job_k);
  } else {
    lua_pushvalue(L, 3);
    st = lua_pcallk(L, 0, 1, 0, 0, job_k);
  }
  return job_k(L, st, 0);
}

/* Body of a worker task: expects lac, index, first item. */
static int worker_main(lua_State *L) {
  return worker_run(L);
}

/* Hands the item at the top of the stack (popped) to an idle worker, or starts one. The
 * lac is at index 1. */
static void lac_dispatch(lua_State *L, lac *a) {
  sl_task *w = sl_waitq_pop(&a->idle);
  a->running++;
  if (w != NULL) {
    lua_checkstack(w->co, 1);
    lua_xmove(L, w->co, 1);
    w->nargs = 1;
    sl_task_wake(w, SL_WAKE_OK);
    return;
  }
  {
    int i, fidx;
    for (i = 0; i < a->limit && a->workers[i] != NULL; i++) {
    }
    lua_pushcfunction(L, worker_main);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, i);
    lua_rotate(L, -4, -1);     /* item, fn, lac, index -> fn, lac, index, item */
    fidx = lua_gettop(L) - 3;
    a->workers[i] = sl_task_new(L, fidx, 3);
    a->workers[i]->internal = 1;
    a->nworkers++;
    lua_settop(L, fidx - 1);
  }
}

/* Stops the loop: drops future rows and cancels every worker; idempotent. */
static void lac_shutdown(lac *a) {
  int i;
  if (a->closed)
    return;
  a->closed = 1;
  a->exhausted = 1;
  while (sl_waitq_pop(&a->idle) != NULL) {
  }
  for (i = 0; i < a->limit; i++)
    if (a->workers[i] != NULL)
      sl_task_cancel(a->workers[i]);
}

/* --------------------------------------------------------------- consumer */

static int lac_step(lua_State *L, lac *a);

/* Continuation after the source function (which may wait) returned an item or raised.
 * Stack: lac, item-or-error. */
static int pull_k(lua_State *L, int status, lua_KContext ctx) {
  lac *a = (lac *)lua_touserdata(L, 1);
  (void)ctx;
  if (status != LUA_OK && status != LUA_YIELD) {
    lac_shutdown(a);
    return lua_error(L);
  }
  lua_settop(L, 2);
  if (lua_isnil(L, 2)) {
    a->exhausted = 1;
  } else if (!a->closed) {
    a->pulled++;
    if (!a->has_handler && lua_type(L, 2) != LUA_TFUNCTION) {
      lac_shutdown(a);
      return luaL_error(L, "limited_as_completed: job %I is a %s, not a function (pass a "
                        "handler to run plain values)", a->pulled, luaL_typename(L, 2));
    }
    lac_dispatch(L, a);
  }
  lua_settop(L, 1);
  return lac_step(L, a);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lac_step(L, (lac *)lua_touserdata(L, 1));
}

static void consumer_cleanup(sl_task *t, void *data) {
  (void)t;
  ((lac *)data)->waiter = NULL;
}

/* The iterator's body: fill free slots from the source, then hand out one row, waiting for
 * one if none is ready; nothing once every job is consumed and the workers have left.
 * Expects the lac at 1 and nothing else. */
static int lac_step(lua_State *L, lac *a) {
  sl_task *me;
  while (!a->exhausted && a->running + a->ndone < a->limit) {
    if (a->is_array) {
      lua_getiuservalue(L, 1, UV_SOURCE);
      lua_rawgeti(L, -1, ++a->pos);
      lua_remove(L, -2);       /* pull_k expects lac, item */
      return pull_k(L, LUA_OK, 0);
    } else {
      int st;
      lua_getiuservalue(L, 1, UV_SOURCE);
      st = lua_pcallk(L, 0, 1, 0, 0, pull_k);
      return pull_k(L, st, 0);
    }
  }
  if (a->ndone > 0) {
    lua_Integer r = 3 * a->rhead;
    int i;
    a->rhead = (a->rhead + 1) % a->limit;
    a->ndone--;
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, UV_ROWS);
    /* The slots are not cleared: the ring overwrites them, so at most `limit` old rows
     * stay referenced, and clearing cost three table writes per job. */
    for (i = 1; i <= 3; i++)
      lua_rawgeti(L, 2, r + i);
    return 3;
  }
  if (a->running == 0 && a->exhausted) {
    /* Every job is consumed: let idle workers go, and end once they have. */
    sl_task *w;
    while ((w = sl_waitq_pop(&a->idle)) != NULL)
      sl_task_cancel(w);
    if (a->nworkers == 0) {
      a->closed = 1;
      return 0;
    }
  }
  me = sl_task_require(L, "limited_as_completed");
  a->waiter = me;
  lua_settop(L, 1);
  return sl_task_wait(L, me, consumer_cleanup, a, -1, wait_k, 0);
}

/* The generic-for iterator: f(state, control). */
static int lac_iter(lua_State *L) {
  lac *a = check_lac(L, 1);
  lua_settop(L, 1);
  if (a->waiter != NULL)
    return luaL_error(L, "limited_as_completed: another task is already iterating");
  if (a->closed && a->ndone == 0)
    return 0;
  return lac_step(L, a);
}

/** sl.limited_as_completed(source, limit [, handler]) -> iterator, state, nil, closer */
static int l_lac(lua_State *L) {
  lua_Integer limit = luaL_checkinteger(L, 2);
  int is_array;
  size_t size;
  lac *a;
  if (lua_type(L, 1) == LUA_TTABLE && !luaL_getmetafield(L, 1, "__call"))
    is_array = 1;
  else if (lua_type(L, 1) == LUA_TFUNCTION || lua_type(L, 1) == LUA_TTABLE)
    is_array = 0;
  else
    return luaL_typeerror(L, 1, "function, array or generator");
  if (!is_array && lua_type(L, 1) == LUA_TTABLE)
    lua_pop(L, 1);               /* the __call found by getmetafield */
  luaL_argcheck(L, limit >= 1, 2, "limit must be at least 1");
  luaL_argcheck(L, limit <= 10000000, 2, "limit is too large (at most 10000000)");
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_settop(L, 3);
  size = sizeof(lac) + (size_t)(limit - 1) * sizeof(sl_task *);
  a = (lac *)lua_newuserdatauv(L, size, UV_N);
  memset(a, 0, size);
  sl_waitq_init(&a->idle);
  a->closed = 1;                 /* safe for __gc until set up */
  luaL_setmetatable(L, SL_LAC_MT);
  a->limit = (int)limit;
  a->is_array = (uint8_t)is_array;
  a->has_handler = !lua_isnoneornil(L, 3);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_SOURCE);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, -2, UV_HANDLER);
  lua_createtable(L, limit < 1024 ? 3 * (int)limit : 3072, 0);
  lua_setiuservalue(L, -2, UV_ROWS);
  a->closed = 0;
  lua_pushcfunction(L, lac_iter);
  lua_insert(L, -2);
  lua_pushnil(L);
  lua_pushvalue(L, -2);
  return 4;
}

/** closer:close() / __close / __gc: cancels the jobs still running */
static int lac_close(lua_State *L) {
  lac_shutdown(check_lac(L, 1));
  return 0;
}

/** closer:running() -> jobs running now; closer:pending() -> ended, not yet taken */
static int lac_running(lua_State *L) {
  lua_pushinteger(L, check_lac(L, 1)->running);
  return 1;
}

static int lac_pending(lua_State *L) {
  lua_pushinteger(L, check_lac(L, 1)->ndone);
  return 1;
}

void sl_lac_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", lac_close},
    {"running", lac_running},
    {"pending", lac_pending},
    {NULL, NULL}
  };
  static const luaL_Reg metamethods[] = {
    {"__close", lac_close},
    {"__gc", lac_close},
    {NULL, NULL}
  };
  sl_newmeta(L, SL_LAC_MT, methods, metamethods);
  luaL_getmetatable(L, SL_LAC_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lac_mt_key);
  lua_pushcfunction(L, l_lac);
  lua_setfield(L, -2, "limited_as_completed");
}
