/* lac.c: sl.limited_as_completed(source, limit [, handler]), the seeds' primitive in C.
 * At most `limit` jobs are running or finished-but-not-taken; the source is pulled only when
 * a slot is free, so memory depends on the limit and never on the number of jobs. */
#include <string.h>

#include "internal.h"

typedef struct lac lac;

typedef struct slot {
  sl_waiter w;                 /* linked into the slot's job task while it runs */
  lac *owner;
  int next;                    /* next slot in the done FIFO or the free list (1-based) */
} slot;

struct lac {
  int limit;
  int running;                 /* jobs started and not ended */
  int ndone;                   /* jobs ended and not yet handed to the consumer */
  int done_head, done_tail;    /* FIFO of ended slots, completion order */
  int free_head;               /* free slots */
  lua_Integer pos;             /* next index when the source is an array */
  lua_Integer pulled;          /* items taken from the source so far */
  uint8_t exhausted;           /* the source returned nil (or raised) */
  uint8_t is_array;
  uint8_t has_handler;
  uint8_t closed;
  sl_task *waiter;             /* the consumer, while blocked for a completion */
  slot s[1];                   /* limit slots, allocated with the object */
};

/* User values: the source, the handler, slot -> job task, slot -> job item. */
enum { UV_SOURCE = 1, UV_HANDLER, UV_TASKS, UV_JOBS, UV_N = 4 };

static lac *check_lac(lua_State *L, int idx) {
  return (lac *)luaL_checkudata(L, idx, SL_LAC_MT);
}

static void slot_notify(sl_waiter *w) {
  slot *sl = (slot *)w;
  lac *a = sl->owner;
  int i = (int)(sl - a->s) + 1;
  a->running--;
  a->ndone++;
  sl->next = 0;
  if (a->done_tail)
    a->s[a->done_tail - 1].next = i;
  else
    a->done_head = i;
  a->done_tail = i;
  if (a->waiter != NULL) {
    sl_task *t = a->waiter;
    a->waiter = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
}

/* Cancels every running job and stops watching them; idempotent. */
static void lac_shutdown(lua_State *L, lac *a, int idx) {
  int i;
  if (a->closed)
    return;
  a->closed = 1;
  a->exhausted = 1;
  lua_getiuservalue(L, idx, UV_TASKS);
  for (i = 0; i < a->limit; i++) {
    if (a->s[i].w.task != NULL) {
      sl_task *t = a->s[i].w.task;
      sl_task_remove_waiter(&a->s[i].w);
      sl_task_cancel(t);
    }
  }
  lua_pop(L, 1);
}

/* Starts a job for the item at the top of the stack (popped) in a free slot. */
static void lac_start(lua_State *L, lac *a, int idx) {
  int i = a->free_head;
  sl_task *t;
  a->free_head = a->s[i - 1].next;
  lua_getiuservalue(L, idx, UV_JOBS);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, i);
  lua_pop(L, 1);
  if (a->has_handler) {
    lua_getiuservalue(L, idx, UV_HANDLER);
    lua_insert(L, -2);
    t = sl_task_new(L, -2, 1);
    lua_replace(L, -3);
    lua_pop(L, 1);
  } else {
    if (lua_type(L, -1) != LUA_TFUNCTION) {
      lac_shutdown(L, a, idx);
      luaL_error(L, "limited_as_completed: job %I is a %s, not a function (pass a handler "
                 "to run plain values)", a->pulled, luaL_typename(L, -1));
      return;
    }
    t = sl_task_new(L, -1, 0);
    lua_remove(L, -2);
  }
  t->internal = 1;
  lua_getiuservalue(L, idx, UV_TASKS);
  lua_insert(L, -2);
  lua_rawseti(L, -2, i);
  lua_pop(L, 1);
  a->s[i - 1].w.notify = slot_notify;
  sl_task_add_waiter(t, &a->s[i - 1].w);
  a->running++;
}

static int lac_step(lua_State *L, lac *a);

/* Continuation after the source function (which may wait) returned an item or raised. */
static int pull_k(lua_State *L, int status, lua_KContext ctx) {
  lac *a = (lac *)lua_touserdata(L, 1);
  (void)ctx;
  if (status != LUA_OK && status != LUA_YIELD) {
    lac_shutdown(L, a, 1);
    return lua_error(L);
  }
  lua_settop(L, 3);             /* lac, control, item */
  if (lua_isnil(L, 3)) {
    a->exhausted = 1;
  } else if (!a->closed) {
    a->pulled++;
    lac_start(L, a, 1);
  }
  lua_settop(L, 1);
  return lac_step(L, a);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lac_step(L, (lac *)lua_touserdata(L, 1));
}

static void lac_cleanup(sl_task *t, void *data) {
  lac *a = (lac *)data;
  (void)t;
  a->waiter = NULL;
}

/* The iterator's body: fill free slots from the source, then hand out one ended job as
 * ok, value, job, waiting for one if none has ended; nothing when all are consumed.
 * Expects the lac at 1 and nothing else. */
static int lac_step(lua_State *L, lac *a) {
  while (!a->exhausted && a->running + a->ndone < a->limit) {
    if (a->is_array) {
      lua_getiuservalue(L, 1, UV_SOURCE);
      lua_rawgeti(L, -1, ++a->pos);
      lua_remove(L, -2);
      if (lua_isnil(L, -1)) {
        a->exhausted = 1;
        lua_pop(L, 1);
      } else {
        a->pulled++;
        lac_start(L, a, 1);
      }
    } else {
      int st;
      lua_pushnil(L);            /* keep the continuation's layout: lac, control, item */
      lua_getiuservalue(L, 1, UV_SOURCE);
      st = lua_pcallk(L, 0, 1, 0, 0, pull_k);
      return pull_k(L, st, 0);
    }
  }
  if (a->done_head != 0) {
    int i = a->done_head;
    a->done_head = a->s[i - 1].next;
    if (a->done_head == 0)
      a->done_tail = 0;
    a->ndone--;
    a->s[i - 1].next = a->free_head;
    a->free_head = i;
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, UV_TASKS);     /* 2 */
    lua_rawgeti(L, 2, i);                  /* 3: the task */
    lua_pushnil(L);
    lua_rawseti(L, 2, i);
    lua_getiuservalue(L, 1, UV_JOBS);      /* 4 */
    lua_rawgeti(L, 4, i);                  /* 5: the job item */
    lua_pushnil(L);
    lua_rawseti(L, 4, i);
    {
      int n = sl_task_push_outcome(L, 3);  /* 6: ok, 7: value */
      if (n == 1)
        lua_pushnil(L);
      lua_settop(L, 7);
    }
    lua_pushvalue(L, 5);
    return 3;
  }
  if (a->running == 0 || a->closed) {
    lac_shutdown(L, a, 1);
    return 0;
  }
  {
    sl_task *me = sl_task_require(L, "limited_as_completed");
    a->waiter = me;
    lua_settop(L, 1);
    return sl_task_wait(L, me, lac_cleanup, a, -1, wait_k, 0);
  }
}

/* The generic-for iterator: f(state, control). */
static int lac_iter(lua_State *L) {
  lac *a = check_lac(L, 1);
  lua_settop(L, 1);
  if (a->waiter != NULL)
    return luaL_error(L, "limited_as_completed: another task is already iterating");
  return lac_step(L, a);
}

/** sl.limited_as_completed(source, limit [, handler]) -> iterator, state, nil, closer */
static int l_lac(lua_State *L) {
  lua_Integer limit = luaL_checkinteger(L, 2);
  int is_array, i;
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
  size = sizeof(lac) + (size_t)(limit - 1) * sizeof(slot);
  a = (lac *)lua_newuserdatauv(L, size, UV_N);
  memset(a, 0, size);
  a->closed = 1;                 /* safe for __gc until set up */
  luaL_setmetatable(L, SL_LAC_MT);
  a->limit = (int)limit;
  a->is_array = (uint8_t)is_array;
  a->has_handler = !lua_isnoneornil(L, 3);
  for (i = 0; i < a->limit; i++) {
    a->s[i].owner = a;
    a->s[i].next = i + 2 <= a->limit ? i + 2 : 0;
  }
  a->free_head = 1;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_SOURCE);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, -2, UV_HANDLER);
  lua_createtable(L, a->limit < 1024 ? a->limit : 1024, 0);
  lua_setiuservalue(L, -2, UV_TASKS);
  lua_createtable(L, a->limit < 1024 ? a->limit : 1024, 0);
  lua_setiuservalue(L, -2, UV_JOBS);
  a->closed = 0;
  lua_pushcfunction(L, lac_iter);
  lua_insert(L, -2);
  lua_pushnil(L);
  lua_pushvalue(L, -2);
  return 4;
}

/** closer:close() / __close / __gc: cancels the jobs still running */
static int lac_close(lua_State *L) {
  lac_shutdown(L, check_lac(L, 1), 1);
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
  lua_pushcfunction(L, l_lac);
  lua_setfield(L, -2, "limited_as_completed");
}
