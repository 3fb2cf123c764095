/* sync.c: synchronisation between tasks: sl.semaphore(n), sl.event(), sl.queue(maxsize).
 * Waiters are served first come, first served; a cancelled waiter leaves the wait list. */
#include <string.h>

#include "sluice.h"

/* ------------------------------------------------------------ wait lists */

void sl_waitq_push(sl_waitq *q, sl_task *t) {
  sl_queue_insert_tail(&q->tasks, &t->wq_node);
}

/* A task already taken out (popped by a waker before its deadline's cleanup) stays out. */
void sl_waitq_remove(sl_waitq *q, sl_task *t) {
  (void)q;
  sl_queue_remove(&t->wq_node);
}

sl_task *sl_waitq_pop(sl_waitq *q) {
  sl_task *t;
  if (sl_queue_empty(&q->tasks))
    return NULL;
  t = SL_QUEUE_DATA(sl_queue_head(&q->tasks), sl_task, wq_node);
  sl_queue_remove(&t->wq_node);
  return t;
}

/* Cleanup of a task taken away from a wait list by a cancellation or a deadline. */
static void waitq_cleanup(sl_task *t, void *data) {
  sl_waitq_remove((sl_waitq *)data, t);
}

/* Blocks the running task (what names the call for the error outside a task) at the back
 * of q until a handoff wakes it, timeout passes, or it is cancelled; k runs then. A value
 * handed over is taken even if a cancellation follows (handoff). */
static int waitq_block(lua_State *L, sl_waitq *q, const char *what, double timeout,
                       lua_KFunction k) {
  sl_task *me = sl_task_require(L, what);
  sl_waitq_push(q, me);
  me->handoff = 1;
  return sl_task_wait(L, me, waitq_cleanup, q, timeout, k, 0);
}

static int timed_out(lua_State *L, const char *what) {
  return sl_fail(L, "ETIMEDOUT", "timed out waiting for %s", what);
}

/* ------------------------------------------------------------- semaphore */

typedef struct semaphore {
  lua_Integer count;           /* free slots */
  sl_waitq waiters;
} semaphore;

static semaphore *check_sem(lua_State *L) {
  return (semaphore *)luaL_checkudata(L, 1, SL_SEMAPHORE_MT);
}

/** sl.semaphore(n) -> semaphore with n slots */
static int l_semaphore(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, 1);
  semaphore *s;
  luaL_argcheck(L, n >= 0, 1, "the count must not be negative");
  s = (semaphore *)lua_newuserdatauv(L, sizeof(*s), 0);
  memset(s, 0, sizeof(*s));
  sl_waitq_init(&s->waiters);
  s->count = n;
  luaL_setmetatable(L, SL_SEMAPHORE_MT);
  return 1;
}

static int sem_acquire_k(lua_State *L, int status, lua_KContext ctx) {
  sl_task *me = sl_task_current(L);
  (void)status;
  (void)ctx;
  if (me->wake == SL_WAKE_TIMEOUT)
    return timed_out(L, "a semaphore");
  lua_settop(L, 1);
  return 1;                    /* the slot was handed over by release */
}

/** sem:acquire([timeout]) -> sem (usable as `local _ <close> = sem:acquire()`), or the
 * fail triple on timeout */
static int sem_acquire(lua_State *L) {
  semaphore *s = check_sem(L);
  double timeout = lua_isnoneornil(L, 2) ? -1 : sl_check_seconds(L, 2, "timeout");
  lua_settop(L, 1);
  if (s->count > 0 && sl_waitq_empty(&s->waiters)) {
    s->count--;
    return 1;
  }
  return waitq_block(L, &s->waiters, "semaphore:acquire", timeout, sem_acquire_k);
}

/** sem:try_acquire() -> true if a slot was free (never waits) */
static int sem_try_acquire(lua_State *L) {
  semaphore *s = check_sem(L);
  int ok = s->count > 0 && sl_waitq_empty(&s->waiters);
  if (ok)
    s->count--;
  lua_pushboolean(L, ok);
  return 1;
}

/** sem:release() -- hands the slot to the first waiter, if any */
static int sem_release(lua_State *L) {
  semaphore *s = check_sem(L);
  sl_task *t = sl_waitq_pop(&s->waiters);
  if (t != NULL)
    sl_task_wake(t, SL_WAKE_OK);
  else
    s->count++;
  return 0;
}

static int sem_close_l(lua_State *L) {
  return sem_release(L);
}

/** sem:count() -> free slots now */
static int sem_count(lua_State *L) {
  lua_pushinteger(L, check_sem(L)->count);
  return 1;
}

/* ----------------------------------------------------------------- event */

typedef struct event {
  int set;
  sl_waitq waiters;
} event;

static event *check_event(lua_State *L) {
  return (event *)luaL_checkudata(L, 1, SL_EVENT_MT);
}

/** sl.event() -> an event, initially clear */
static int l_event(lua_State *L) {
  event *e = (event *)lua_newuserdatauv(L, sizeof(event), 0);
  memset(e, 0, sizeof(*e));
  sl_waitq_init(&e->waiters);
  luaL_setmetatable(L, SL_EVENT_MT);
  return 1;
}

static int ev_wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  if (sl_task_current(L)->wake == SL_WAKE_TIMEOUT)
    return timed_out(L, "an event");
  lua_pushboolean(L, 1);
  return 1;
}

/** ev:wait([timeout]) -> true once set, or the fail triple on timeout */
static int ev_wait(lua_State *L) {
  event *e = check_event(L);
  double timeout = lua_isnoneornil(L, 2) ? -1 : sl_check_seconds(L, 2, "timeout");
  sl_task *me;
  if (e->set) {
    lua_pushboolean(L, 1);
    return 1;
  }
  me = sl_task_require(L, "event:wait");
  lua_settop(L, 1);
  sl_waitq_push(&e->waiters, me);
  return sl_task_wait(L, me, waitq_cleanup, &e->waiters, timeout, ev_wait_k, 0);
}

/** ev:set() -- wakes every waiter; later waits return at once until clear() */
static int ev_set(lua_State *L) {
  event *e = check_event(L);
  sl_task *t;
  e->set = 1;
  while ((t = sl_waitq_pop(&e->waiters)) != NULL)
    sl_task_wake(t, SL_WAKE_OK);
  return 0;
}

/** ev:clear() */
static int ev_clear(lua_State *L) {
  check_event(L)->set = 0;
  return 0;
}

/** ev:is_set() -> boolean */
static int ev_is_set(lua_State *L) {
  lua_pushboolean(L, check_event(L)->set);
  return 1;
}

/* ----------------------------------------------------------------- queue */

typedef struct queue {
  lua_Integer head, tail;      /* items are at keys head .. tail-1 of the user value */
  lua_Integer maxsize;         /* 0: unbounded */
  lua_Integer reserved;        /* room promised to putters that were woken */
  int closed;
  sl_waitq getters, putters;
} queue;

static queue *check_queue(lua_State *L) {
  return (queue *)luaL_checkudata(L, 1, SL_QUEUE_MT);
}

static lua_Integer q_size(const queue *q) {
  return q->tail - q->head;
}

/** sl.queue([maxsize]) -> a FIFO queue; put waits while maxsize items are queued */
static int l_queue(lua_State *L) {
  lua_Integer max = luaL_optinteger(L, 1, 0);
  queue *q;
  luaL_argcheck(L, max >= 0, 1, "maxsize must not be negative (0 means unbounded)");
  q = (queue *)lua_newuserdatauv(L, sizeof(queue), 1);
  memset(q, 0, sizeof(*q));
  sl_waitq_init(&q->getters);
  sl_waitq_init(&q->putters);
  q->maxsize = max;
  q->head = q->tail = 1;
  luaL_setmetatable(L, SL_QUEUE_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* Delivers the value at the top (popped) to the first waiting getter, or appends it. */
static void q_deliver(lua_State *L, queue *q) {
  sl_task *g = sl_waitq_pop(&q->getters);
  if (g != NULL) {
    lua_checkstack(g->co, 1);
    lua_xmove(L, g->co, 1);
    g->nargs = 1;
    sl_task_wake(g, SL_WAKE_OK);
    return;
  }
  lua_getiuservalue(L, 1, 1);
  lua_insert(L, -2);
  lua_rawseti(L, -2, q->tail++);
  lua_pop(L, 1);
}

static int put_k(lua_State *L, int status, lua_KContext ctx) {
  queue *q = (queue *)lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  if (sl_task_current(L)->wake == SL_WAKE_TIMEOUT)
    return timed_out(L, "room in a queue");
  if (lua_gettop(L) > 2)       /* woken by close(): the value is not taken */
    return luaL_error(L, "attempt to put into a closed queue");
  q->reserved--;
  lua_settop(L, 2);
  q_deliver(L, q);
  lua_pushboolean(L, 1);
  return 1;
}

/** q:put(value [, timeout]) -> true; waits while the queue is full */
static int q_put(lua_State *L) {
  queue *q = check_queue(L);
  double timeout = lua_isnoneornil(L, 3) ? -1 : sl_check_seconds(L, 3, "timeout");
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "a queue cannot hold nil");
  if (q->closed)
    return luaL_error(L, "attempt to put into a closed queue");
  lua_settop(L, 2);
  if (q->maxsize == 0 || q_size(q) + q->reserved < q->maxsize || !sl_waitq_empty(&q->getters)) {
    q_deliver(L, q);
    lua_pushboolean(L, 1);
    return 1;
  }
  return waitq_block(L, &q->putters, "queue:put", timeout, put_k);
}

/** q:try_put(value) -> true, or nil, "EAGAIN: queue is full", "EAGAIN" */
static int q_try_put(lua_State *L) {
  queue *q = check_queue(L);
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "a queue cannot hold nil");
  if (q->closed)
    return luaL_error(L, "attempt to put into a closed queue");
  lua_settop(L, 2);
  if (q->maxsize != 0 && q_size(q) + q->reserved >= q->maxsize && sl_waitq_empty(&q->getters))
    return sl_fail(L, "EAGAIN", "queue is full");
  q_deliver(L, q);
  lua_pushboolean(L, 1);
  return 1;
}

/* Pops the oldest item onto the stack and lets one waiting putter in. */
static void q_take(lua_State *L, queue *q) {
  sl_task *p;
  lua_getiuservalue(L, 1, 1);
  lua_rawgeti(L, -1, q->head);
  lua_pushnil(L);
  lua_rawseti(L, -3, q->head++);
  lua_remove(L, -2);
  p = sl_waitq_pop(&q->putters);
  if (p != NULL) {
    q->reserved++;
    sl_task_wake(p, SL_WAKE_OK);
  }
}

static int get_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  if (sl_task_current(L)->wake == SL_WAKE_TIMEOUT)
    return timed_out(L, "an item");
  if (lua_gettop(L) < 2 || lua_isnil(L, -1))   /* woken by close() */
    return sl_fail(L, "EOF", "queue is closed");
  return 1;                                     /* the value put() handed over */
}

/** q:get([timeout]) -> value; waits while empty; nil, "EOF: queue is closed", "EOF" once
 * a closed queue is drained; the fail triple on timeout */
static int q_get(lua_State *L) {
  queue *q = check_queue(L);
  double timeout = lua_isnoneornil(L, 2) ? -1 : sl_check_seconds(L, 2, "timeout");
  lua_settop(L, 1);
  if (q_size(q) > 0) {
    q_take(L, q);
    return 1;
  }
  if (q->closed)
    return sl_fail(L, "EOF", "queue is closed");
  return waitq_block(L, &q->getters, "queue:get", timeout, get_k);
}

/** q:try_get() -> value, or nil, "EAGAIN: queue is empty", "EAGAIN" (never waits) */
static int q_try_get(lua_State *L) {
  queue *q = check_queue(L);
  lua_settop(L, 1);
  if (q_size(q) == 0)
    return q->closed ? sl_fail(L, "EOF", "queue is closed")
                     : sl_fail(L, "EAGAIN", "queue is empty");
  q_take(L, q);
  return 1;
}

/** q:close() -- no more puts (waiting putters raise); getters drain what is left, then
 * get EOF */
static int q_close(lua_State *L) {
  queue *q = check_queue(L);
  sl_task *t;
  if (q->closed)
    return 0;
  q->closed = 1;
  /* Putters still waiting fail like a put after close; a marker value tells them. */
  while ((t = sl_waitq_pop(&q->putters)) != NULL) {
    lua_checkstack(t->co, 1);
    lua_pushboolean(t->co, 0);
    t->nargs = 1;
    sl_task_wake(t, SL_WAKE_OK);
  }
  while ((t = sl_waitq_pop(&q->getters)) != NULL) {
    lua_checkstack(t->co, 1);
    lua_pushnil(t->co);
    t->nargs = 1;
    sl_task_wake(t, SL_WAKE_OK);
  }
  return 0;
}

/** q:size() -> items queued; q:empty(); q:full(); q:is_closed() */
static int q_size_l(lua_State *L) {
  lua_pushinteger(L, q_size(check_queue(L)));
  return 1;
}

static int q_empty(lua_State *L) {
  lua_pushboolean(L, q_size(check_queue(L)) == 0);
  return 1;
}

static int q_full(lua_State *L) {
  queue *q = check_queue(L);
  lua_pushboolean(L, q->maxsize != 0 && q_size(q) + q->reserved >= q->maxsize);
  return 1;
}

static int q_is_closed(lua_State *L) {
  lua_pushboolean(L, check_queue(L)->closed);
  return 1;
}

void sl_sync_register(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"semaphore", l_semaphore},
    {"event", l_event},
    {"queue", l_queue},
    {NULL, NULL}
  };
  static const luaL_Reg sem_methods[] = {
    {"acquire", sem_acquire},
    {"try_acquire", sem_try_acquire},
    {"release", sem_release},
    {"count", sem_count},
    {NULL, NULL}
  };
  static const luaL_Reg sem_meta[] = {
    {"__close", sem_close_l},
    {NULL, NULL}
  };
  static const luaL_Reg ev_methods[] = {
    {"wait", ev_wait},
    {"set", ev_set},
    {"clear", ev_clear},
    {"is_set", ev_is_set},
    {NULL, NULL}
  };
  static const luaL_Reg q_methods[] = {
    {"put", q_put},
    {"try_put", q_try_put},
    {"get", q_get},
    {"try_get", q_try_get},
    {"close", q_close},
    {"size", q_size_l},
    {"empty", q_empty},
    {"full", q_full},
    {"is_closed", q_is_closed},
    {NULL, NULL}
  };
  sl_newmeta(L, SL_SEMAPHORE_MT, sem_methods, sem_meta);
  sl_newmeta(L, SL_EVENT_MT, ev_methods, NULL);
  sl_newmeta(L, SL_QUEUE_MT, q_methods, NULL);
  luaL_setfuncs(L, funcs, 0);
}
