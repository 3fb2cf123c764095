/* sluice.h: the engine core, which every engine source file includes: the engine state,
 * the task record, timers and waiters, errors and small shared helpers, module openers. */
#ifndef SLUICE_H
#define SLUICE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "queue.h"

#define SLUICE_VERSION "sluice 0.1.0"

/* Metatable names, one per Lua-visible type. */
#define SL_TASK_MT      "sluice.task"
#define SL_FAILED_MT    "sluice.task.failed"   /* same methods, plus a report in __gc */
#define SL_GROUP_MT     "sluice.group"
#define SL_LAC_MT       "sluice.lac"
#define SL_SEMAPHORE_MT "sluice.semaphore"
#define SL_EVENT_MT     "sluice.event"
#define SL_QUEUE_MT     "sluice.queue"
#define SL_LINES_MT     "sluice.lines"
#define SL_CANCELLED_MT "sluice.cancelled"

/* Lua 5.4.6 renamed lua_resetthread to lua_closethread; Debian 12 ships 5.4.4. */
#if LUA_VERSION_RELEASE_NUM >= 50406
#define sl_closethread(co, from) lua_closethread((co), (from))
#else
#define sl_closethread(co, from) ((void)(from), lua_resetthread(co))
#endif

typedef struct sl_engine sl_engine;
typedef struct sl_task sl_task;
typedef struct sl_timer sl_timer;
typedef struct sl_waiter sl_waiter;

/* ---------------------------------------------------------------- timers */

/* A deadline in the engine's timer heap. Embedded in whatever owns it (a task, a group);
 * one libuv timer serves the whole heap, so a million sleepers cost one heap entry each. */
struct sl_timer {
  uint64_t when;               /* deadline on the loop clock, in nanoseconds */
  uint64_t seq;                /* arming order: equal deadlines fire first-armed first */
  uint32_t slot;               /* 1-based position in the heap; 0 while not armed */
  void (*cb)(sl_timer *tm);    /* called from the loop once the deadline has passed */
};

void sl_timer_start(sl_engine *E, sl_timer *tm, double seconds);
void sl_timer_stop(sl_engine *E, sl_timer *tm);
uint64_t sl_clock_ns(sl_engine *E);
int sl_timer_init(sl_engine *E);
void sl_timer_shutdown(sl_engine *E);

/* ---------------------------------------------------------------- tasks */

enum sl_status {
  SL_SUSPENDED = 0,            /* not started yet, queued, or blocked in a wait */
  SL_RUNNING,                  /* the task being resumed right now */
  SL_DONE,                     /* returned normally; results kept in the handle */
  SL_FAILED,                   /* raised an error; error and traceback kept */
  SL_CANCELLED                 /* ended by a cancellation error */
};

enum sl_wake {
  SL_WAKE_OK = 0,              /* what it waited for happened */
  SL_WAKE_TIMEOUT,             /* the wait's deadline passed */
  SL_WAKE_CANCEL               /* the task was cancelled while it waited */
};

/* Told when a task ends. Waiters sit in an intrusive list in the task; whoever owns the
 * node (a joining task, a group slot) allocates it, so ending a task allocates nothing. */
struct sl_waiter {
  sl_queue node;               /* in the task's waiters list while task is set */
  sl_task *task;               /* the task waited for, NULL while unlinked */
  void (*notify)(sl_waiter *w); /* runs inside the ending task's completion: never resumes */
};

/* What a blocked task is blocked on: run exactly once when a cancellation or a deadline
 * takes the task away from its wait, so the semaphore, queue or group forgets it. */
typedef void (*sl_cleanup_fn)(sl_task *t, void *data);

struct sl_task {
  lua_State *co;               /* its coroutine; NULL once ended and recycled */
  sl_engine *E;
  int ref;                     /* registry ref anchoring the handle until the task ends */
  uint8_t status;              /* enum sl_status */
  uint8_t queued;              /* sitting in the ready queue */
  uint8_t waiting;             /* suspended inside sl_task_wait */
  uint8_t wake;                /* enum sl_wake: why the last wait ended */
  uint8_t cancel_req;          /* cancellation asked for and not yet delivered */
  uint8_t observed;            /* its outcome was taken: no "never retrieved" report */
  uint8_t started;             /* its function has begun running */
  uint8_t internal;            /* spawned by a primitive (a job), not by sl.spawn */
  uint8_t has_on_end;          /* an end callback is stored in the handle */
  uint8_t handoff;             /* this wait hands over a resource: a cancellation that
                                  arrives after the wake waits for the next wait */
  uint8_t catch_cancel;        /* this wait's continuation handles cancellation itself */
  uint8_t held_cancel;         /* a cancellation held back until work elsewhere is done */
  int nargs;                   /* values pushed on co for the next resume */
  int nres;                    /* results kept after SL_DONE (0, 1, or n in a table) */
  uint64_t id;                 /* creation number, for messages and sl.tasks() */
  sl_task *next_ready;         /* ready-queue link: a singly linked FIFO (task.c), only
                                * appended to and popped, never unlinked in the middle */
  sl_queue live_node;          /* in the engine's list of every task not yet ended */
  sl_queue waiters;            /* sl_waiter.node: told when this task ends */
  sl_cleanup_fn cleanup;       /* see sl_cleanup_fn; NULL when nothing to release */
  void *cleanup_data;
  lua_KFunction k;             /* the waiting primitive's continuation */
  lua_KContext kctx;
  sl_waiter join_node;         /* used while this task waits in join() */
  sl_queue wq_node;            /* in a semaphore's, event's or queue's wait list */
  sl_timer timer;              /* sleep and wait deadlines */
};

/* t:status()'s names, indexed by enum sl_status (task_api.c). */
extern const char *const sl_status_names[];

/* The task handle's user values (uv: Lua's user values, not libuv): the coroutine while it
 * lives, then its outcome. */
enum { SL_UV_CO = 1, SL_UV_RESULT = 2, SL_UV_TRACE = 3, SL_UV_ONEND = 4, SL_UV_COUNT = 4 };

/* Registry keys (by address, cheaper than by name) shared by task.c and task_api.c. */
extern char sl_task_mt_key, sl_failed_mt_key;   /* the two task metatables */
extern char sl_reraise_key;   /* the last re-raised task error and its first traceback */
extern char sl_wait_mark;     /* yielded by every wait, passed up by coroutine wrappers */

sl_task *sl_task_check(lua_State *L, int idx);
sl_task *sl_task_test(lua_State *L, int idx);           /* NULL if not a task */
sl_task *sl_task_current(lua_State *L);            /* NULL outside a task */
sl_task *sl_task_require(lua_State *L, const char *what); /* raises outside a task */
sl_task *sl_task_new(lua_State *L, int fidx, int nargs); /* pushes the handle */
void sl_task_wake(sl_task *t, int wake);
void sl_task_cancel(sl_task *t);
void sl_task_add_waiter(sl_task *t, sl_waiter *w);
void sl_task_remove_waiter(sl_waiter *w);
int sl_task_push_outcome(lua_State *L, int hidx);  /* pushes ok, values... (pcall style) */
void sl_task_push_handle(lua_State *L, sl_task *t);
void sl_task_cancel_all(sl_engine *E);
int sl_task_is_ended(const sl_task *t);

/* Blocks the running task (must be `return sl_task_wait(...)` from a lua_CFunction).
 * timeout < 0 means none. When the task is resumed, k runs with the values the waker
 * pushed; a cancellation raises the cancellation error before k is reached, and a timeout
 * calls k with SL_WAKE_TIMEOUT readable through sl_task_current(L)->wake. */
int sl_task_wait(lua_State *L, sl_task *t, sl_cleanup_fn cleanup, void *data,
                 double timeout, lua_KFunction k, lua_KContext ctx);
/* Waiting out work done on another thread (a parse, a transaction) that cannot be stopped
 * halfway: the task waits until whoever finishes the work sets its done flag and wakes it
 * (sl_task_wake, SL_WAKE_OK). A cancellation meanwhile is held back and delivered at the
 * task's next wait, after k has returned the outcome. Start with
 *   return sl_task_wait_work(L, me, k, ctx);
 * and begin k with
 *   if (!sl_task_work_done(L, job->done)) return sl_task_wait_work(L, me, k, ctx); */
int sl_task_wait_work(lua_State *L, sl_task *t, lua_KFunction k, lua_KContext ctx);
int sl_task_work_done(lua_State *L, int done);
/* Continuation for a wait that returns nothing and raises on cancellation. */
int sl_task_k_end(lua_State *L, int status, lua_KContext ctx);
/* The cancellation error (task.c): pushes it; tells it apart from any other value. */
void sl_push_cancelled(lua_State *L);
int sl_is_cancelled(lua_State *L, int idx);
/* Message handler for the user's handlers run by a server or listener: leaves the
 * cancellation error as it is, adds a traceback to anything else (task.c). */
int sl_handler_msgh(lua_State *L);
/* Pushes an array of the tasks not yet ended, oldest first: their handles (sl.tasks), or
 * with described set, a table describing each but the main task (the REPL's tasks();
 * task_api.c). */
int sl_task_list(lua_State *L, int described);

/* A FIFO of tasks blocked on one synchronisation object (sync.c); initialise before use. */
typedef struct sl_waitq {
  sl_queue tasks;              /* sl_task.wq_node, first come first */
} sl_waitq;

static inline void sl_waitq_init(sl_waitq *q) {
  sl_queue_init(&q->tasks);
}

static inline int sl_waitq_empty(const sl_waitq *q) {
  return sl_queue_empty(&q->tasks);
}

void sl_waitq_push(sl_waitq *q, sl_task *t);
sl_task *sl_waitq_pop(sl_waitq *q);
/* Takes t out of the wait list it is in, if any (q only names it for the reader). */
void sl_waitq_remove(sl_waitq *q, sl_task *t);

/* --------------------------------------------------------------- engine */

struct sl_engine {
  lua_State *L;                /* the main state; libuv callbacks run on it */
  uv_loop_t *loop;
  uv_check_t drain;            /* runs the ready queue after each poll */
  uv_idle_t spin;              /* active while the queue is not empty: poll won't block */
  uv_signal_t sigint;
  sl_task *ready_head, *ready_tail; /* the ready queue (task.c) */
  sl_task *current;            /* the task being resumed, NULL between resumes */
  sl_task *main;               /* the script's own task: its failure ends the run */
  sl_queue live;               /* sl_task.live_node: every task not yet ended, newest first */
  size_t nlive;
  uint64_t next_id;
  int pool_ref;                /* registry table of finished coroutines to reuse */
  int npool;
  volatile sig_atomic_t interrupted; /* set by the SIGINT handler */
  int cancelled_all;           /* the first SIGINT's cancellation has been done */
  /* REPL mode (repl.c): Ctrl-C goes to on_sigint, on the loop, instead of cancelling every
   * task; a busy repl_input (the task running the current input) is interrupted by a hook
   * set from the signal handler. The process is never ended by Ctrl-C in this mode. */
  void (*on_sigint)(sl_engine *E);
  sl_task *repl_input;
  int unhandled;               /* failed tasks nobody ever looked at */
  uint64_t ended[SL_CANCELLED + 1]; /* tasks ended, by status (done, failed, cancelled) */
  int exit_code;
  /* timer heap (timer.c) */
  uv_timer_t heap_timer;
  sl_timer **heap;
  uint32_t heap_len, heap_cap;
  uint64_t heap_seq;
  uint64_t armed_for;          /* deadline the uv timer is armed for, 0 if none */
};

#define SL_ENGINE(L) (*(sl_engine **)lua_getextraspace(L))

sl_engine *sl_engine_new(lua_State *L);
void sl_engine_free(sl_engine *E);
/* fn runs first thing in sl_engine_free, before the handles are closed (at most 4). */
void sl_engine_at_free(void (*fn)(void));
/* The task layer's part of sl_engine_new: ready queue, coroutine pool, cancellation error. */
void sl_task_engine_init(sl_engine *E);
int sl_engine_run(sl_engine *E, sl_task *main_task);

/* ------------------------------------------------- errors and helpers */

int sl_fail(lua_State *L, const char *name, const char *fmt, ...);
int sl_fail_uv(lua_State *L, int uverr);
int sl_traceback_msgh(lua_State *L);
void sl_newmeta(lua_State *L, const char *name, const luaL_Reg *methods,
                const luaL_Reg *metamethods);
double sl_check_seconds(lua_State *L, int idx, const char *what);

/* A growable byte buffer (util.c); all zero is an empty one. It grows by doubling from
 * 256 bytes. */
typedef struct sl_buf {
  char *p;
  size_t len, cap;
} sl_buf;

int sl_buf_reserve(sl_buf *b, size_t extra);       /* 0, or -1 when out of memory */
int sl_buf_add(sl_buf *b, const void *s, size_t n); /* 0, or -1 when out of memory */
void sl_buf_free(sl_buf *b);

/* FNV-1a, the hash of every table keyed by name in the engine (DNS cache, connection pool,
 * the HTML element index): sl_fnv1a hashes n bytes, sl_fnv1a_word mixes one more value in
 * whole. Start from SL_FNV_BASIS. */
#define SL_FNV_BASIS 2166136261u
static inline uint32_t sl_fnv1a_word(uint32_t h, uint32_t v) {
  return (h ^ v) * 16777619u;
}
static inline uint32_t sl_fnv1a(uint32_t h, const void *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  size_t i;
  for (i = 0; i < n; i++)
    h = sl_fnv1a_word(h, s[i]);
  return h;
}

/* Installs coroutine.resume/wrap that pass sluice waits through user coroutines (coro.c). */
void sl_coro_install(lua_State *L);

/* The parts of "sluice.core" (main.c's module table lists them); each registers its
 * functions into the table at the top of the stack. */
void sl_task_register(lua_State *L);
void sl_group_register(lua_State *L);
void sl_lac_register(lua_State *L);
void sl_sync_register(lua_State *L);
void sl_fs_register(lua_State *L);

/* Network modules, each a C module of its own in package.preload:
 * "sluice.tcp" (tcp.c), "sluice.http.server_core" (http_server.c),
 * "sluice.http.client_core" (http_client.c); lua/sluice/http.lua joins the last two. */
int luaopen_sluice_tcp(lua_State *L);
int luaopen_sluice_http_server(lua_State *L);
int luaopen_sluice_http_client(lua_State *L);

/* The REPL's C half, "sluice.repl_core" in package.preload (repl.c, repl_input.c; repl.h). */
int luaopen_sluice_repl_core(lua_State *L);

/* "sluice.sqlite" (sqlite.c, sqlite_db.c; sqlite.h): SQLite connections, statements, and
 * batches run on libuv's thread pool. */
int luaopen_sluice_sqlite(lua_State *L);

/* "sluice.url" (url.c; url.h) and "sluice.html" (html.c; html.h). */
int luaopen_sluice_url(lua_State *L);
int luaopen_sluice_html(lua_State *L);

/* Embedded Lua modules (generated at build time into build/embedded.c). */
void sl_embedded_install(lua_State *L);

#endif
