/* loop.c: the engine state around one libuv loop: making and freeing it, running until every
 * task has ended, deadlock detection, and Ctrl-C (cancel all, then exit now). The ready queue
 * and its drain are task.c's; this file sits above task.c and timer.c and starts both. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice.h"

/* The signal handler reaches the engine through this; one engine per process for now. */
static sl_engine *volatile sigint_engine;
static volatile sig_atomic_t sigint_count;
static uv_async_t sigint_async;

/* ---------------------------------------------------------------- Ctrl-C */

/* Lua hook set from the signal handler on the running coroutine: a task busy computing
 * never reaches a wait, so the cancellation is raised where it stands. */
static void sigint_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  sl_push_cancelled(L);
  lua_error(L);
}

static void sigint_handler(int sig) {
  sl_engine *E = sigint_engine;
  (void)sig;
  if (E != NULL && E->on_sigint != NULL) {
    /* REPL: interrupt only the input being run, if it is the one computing right now. */
    if (E->repl_input != NULL && E->current == E->repl_input && E->current->co != NULL)
      lua_sethook(E->current->co, sigint_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    uv_async_send(&sigint_async);
    return;
  }
  if (++sigint_count >= 2) {
    static const char msg[] = "\nsluice: interrupted twice, exiting now\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(130);
  }
  if (E == NULL)
    return;
  /* Recorded here, not in the async callback: a busy task cancelled by the hook may end
   * the run before the loop gets round to that callback, and the exit must still be 130. */
  E->interrupted = 1;
  {
    static const char msg[] = "\nsluice: interrupted: cancelling every task "
                              "(Ctrl-C again to exit now)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
  }
  if (E->current != NULL && E->current->co != NULL)
    lua_sethook(E->current->co, sigint_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  uv_async_send(&sigint_async);
}

static void sigint_async_cb(uv_async_t *h) {
  sl_engine *E = (sl_engine *)h->data;
  if (E->on_sigint != NULL) {
    E->on_sigint(E);
    return;
  }
  if (E->cancelled_all)
    return;
  E->cancelled_all = 1;
  sl_task_cancel_all(E);
}

/* ----------------------------------------------------------------- setup */

sl_engine *sl_engine_new(lua_State *L) {
  sl_engine *E = (sl_engine *)calloc(1, sizeof(*E));
  struct sigaction sa;
  if (E == NULL)
    return NULL;
  E->L = L;
  E->loop = uv_default_loop();
  SL_ENGINE(L) = E;
  sl_timer_init(E);
  sl_task_engine_init(E);
  uv_async_init(E->loop, &sigint_async, sigint_async_cb);
  sigint_async.data = E;
  uv_unref((uv_handle_t *)&sigint_async);
  sigint_engine = E;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = sigint_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  /* A write to a peer that has gone must fail with EPIPE, not kill the process: libuv
   * does not ignore SIGPIPE itself, and every socket module depends on this. */
  signal(SIGPIPE, SIG_IGN);
  return E;
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void (*at_free[4])(void);
static int nat_free;

void sl_engine_at_free(void (*fn)(void)) {
  if (nat_free < 4)
    at_free[nat_free++] = fn;
}

/* Closes every handle, then the loop; the Lua state must already be closed. */
void sl_engine_free(sl_engine *E) {
  int i;
  for (i = 0; i < nat_free; i++)
    at_free[i]();
  signal(SIGINT, SIG_DFL);
  sigint_engine = NULL;
  uv_walk(E->loop, close_walk_cb, NULL);
  uv_run(E->loop, UV_RUN_DEFAULT);
  uv_loop_close(E->loop);
  sl_timer_shutdown(E);
  free(E);
}

/* Tells which tasks are stuck when the loop has nothing left that could wake them. */
static void report_deadlock(sl_engine *E) {
  sl_queue *q;
  int shown = 0;
  fprintf(stderr, "sluice: deadlock: %zu task%s waiting for something that can no longer "
          "happen:", E->nlive, E->nlive == 1 ? " is" : "s are");
  for (q = sl_queue_head(&E->live); q != &E->live && shown < 10; q = q->next, shown++)
    fprintf(stderr, " task %lld", (long long)SL_QUEUE_DATA(q, sl_task, live_node)->id);
  fprintf(stderr, "%s\n", q != &E->live ? " ..." : "");
  fflush(stderr);
}

/* Runs the loop until every task has ended. Returns the process exit status. */
int sl_engine_run(sl_engine *E, sl_task *main_task) {
  int rounds = 0;
  (void)main_task;
  for (;;) {
    uv_run(E->loop, UV_RUN_DEFAULT);
    if (E->nlive == 0)
      break;
    /* Live tasks but nothing to wake them: cancel them so their cleanups run, once. */
    if (!E->exit_code) {
      report_deadlock(E);
      E->exit_code = 1;
    }
    sl_task_cancel_all(E);
    if (E->ready_head == NULL || ++rounds > 3)
      break;
  }
  if (E->interrupted) {
    /* What was done before the interrupt, so a long run stopped by Ctrl-C says how far
     * it got (its own output says what each finished task produced). */
    fprintf(stderr, "sluice: stopped: %llu task%s finished, %llu failed, %llu cancelled\n",
            (unsigned long long)E->ended[SL_DONE], E->ended[SL_DONE] == 1 ? "" : "s",
            (unsigned long long)E->ended[SL_FAILED],
            (unsigned long long)E->ended[SL_CANCELLED]);
    fflush(stderr);
    return 130;
  }
  return E->exit_code;
}
