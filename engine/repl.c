/* repl.c: the C half of the REPL (require "sluice.repl_core"), its Lua API: read() waiting
 * for a line, routing Ctrl-C to the running input, start() and stop(), and describing the
 * tasks that are alive. How lines are read is repl_input.c's; lua/sluice/repl.lua does the
 * rest (compiling, running each input as a task, printing values, completion). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

#define R sl_repl_state        /* the one REPL (repl_input.c) */

/* --------------------------------------------------------------- read() */

/* The reader was cancelled (the REPL's own task is ending). */
static void read_cleanup(sl_task *t, void *data) {
  (void)t;
  (void)data;
  R.reader = NULL;
  sl_repl_input_stop();
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  if (sl_repl_take_line(L))
    return 1;
  /* Woken without a line (cannot happen today): wait again. */
  sl_repl_input_start((const char *)ctx);
  R.reader = sl_task_current(L);
  return sl_task_wait(L, R.reader, read_cleanup, NULL, -1, read_k, ctx);
}

/** core.read(prompt) -> the next line, false after Ctrl-C at the prompt, nil at the end of
 * input. Waits; the prompt is shown only on a terminal. */
static int l_read(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "");
  sl_task *me = sl_task_require(L, "repl_core.read");
  if (!R.active)
    return luaL_error(L, "repl_core.read: the REPL is not started");
  if (R.reader != NULL)
    return luaL_error(L, "repl_core.read: another task is reading");
  lua_settop(L, 1);
  R.early_sigint = 0;
  if (sl_repl_take_line(L))
    return 1;
  sl_repl_input_start(prompt);
  R.reader = me;
  /* The prompt string stays alive at index 1 of this frame while the task waits. */
  return sl_task_wait(L, me, read_cleanup, NULL, -1, read_k, (lua_KContext)prompt);
}

/* ----------------------------------------------------------------- Ctrl-C */

/* Ctrl-C while the REPL is on (engine/loop.c calls this on the loop, outside any task): it
 * cancels the running input (a busy one was already interrupted by loop.c's hook), or clears
 * the line being typed. It never ends the process. */
static void repl_sigint(sl_engine *E) {
  if (E->repl_input != NULL) {
    R.input_sigint = 1;
    sl_task_cancel(E->repl_input);   /* nothing to do if the hook has ended it already */
    return;
  }
  if (R.reader == NULL) {
    /* Between a line and its task: the Ctrl-C is meant for that input. */
    R.early_sigint = 1;
    return;
  }
  sl_repl_prompt_interrupted();
}

/** core.set_input(task or nil): the task running the current input, which Ctrl-C cancels;
 * returns whether Ctrl-C cancelled the previous one. */
static int l_set_input(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  sl_task *t = lua_isnoneornil(L, 1) ? NULL : sl_task_check(L, 1);
  int hit = R.input_sigint;
  luaL_unref(L, LUA_REGISTRYINDEX, R.input_ref);
  R.input_ref = LUA_NOREF;
  R.input_sigint = 0;
  E->repl_input = NULL;
  if (t != NULL && R.active) {
    lua_pushvalue(L, 1);
    R.input_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* keeps the record E points to alive */
    E->repl_input = t;
    if (R.early_sigint) {
      R.early_sigint = 0;
      R.input_sigint = 1;
      sl_task_cancel(t);
    }
  }
  lua_pushboolean(L, hit);
  return 1;
}

/** core.history_add(line): remembers an entered line (skipping a repeat of the last one) */
static int l_history_add(lua_State *L) {
  sl_repl_history_add(luaL_checkstring(L, 1));
  return 0;
}

/* ---------------------------------------------------------- start, stop */

static void keepalive_cb(uv_timer_t *h) {
  (void)h;
}

static void closed_cb(uv_handle_t *h) {
  (void)h;
  R.closing--;
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) {
    R.closing++;
    uv_close(h, closed_cb);
  }
}

/** core.start{history = path or nil, complete = fn or nil} -> how input is read ("readline",
 * "stream" or "file"), and whether it is a terminal. Ctrl-C belongs to the REPL from now on. */
static int l_start(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  uv_handle_type type = uv_guess_handle(0);
  const char *names[] = {"readline", "stream", "file"};
  luaL_checktype(L, 1, LUA_TTABLE);
  if (R.active || R.closing)
    return luaL_error(L, "repl_core.start: the REPL is already running");
  R.E = E;
  R.tty = type == UV_TTY;
  R.eof = R.interrupted = R.input_sigint = R.early_sigint = R.prompt_shown = R.reading = 0;
  R.in.len = 0;
  R.history_added = 0;
  R.reader = NULL;
  R.input_ref = R.complete_ref = R.matches_ref = LUA_NOREF;
  R.saved_ref[0] = R.saved_ref[1] = R.saved_ref[2] = LUA_NOREF;
  R.fd_flags = fcntl(0, F_GETFL);
  free(R.history);
  R.history = NULL;
  if (lua_getfield(L, 1, "history") == LUA_TSTRING)
    R.history = strdup(lua_tostring(L, -1));
  if (lua_getfield(L, 1, "complete") == LUA_TFUNCTION)
    R.complete_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_pop(L, 1);
  lua_pop(L, 1);
  R.kind = IN_FILE;
#ifdef SLUICE_READLINE
  if (R.tty && sl_repl_readline_start(L) == 0)
    R.kind = IN_READLINE;
#endif
  if (R.kind == IN_FILE && R.tty) {
    if (uv_tty_init(E->loop, &R.stream.tty, 0, 1) == 0)
      R.kind = IN_STREAM;
  } else if (R.kind == IN_FILE && type == UV_NAMED_PIPE) {
    if (uv_pipe_init(E->loop, &R.stream.pipe, 0) == 0) {
      if (uv_pipe_open(&R.stream.pipe, 0) == 0)
        R.kind = IN_STREAM;
      else
        close_handle((uv_handle_t *)&R.stream.pipe);
    }
  }
  if (R.tty) {
    uv_timer_init(E->loop, &R.keepalive);
    uv_timer_start(&R.keepalive, keepalive_cb, 3600 * 1000, 3600 * 1000);
  }
  R.active = 1;
  E->on_sigint = repl_sigint;
  lua_pushstring(L, names[R.kind]);
  lua_pushboolean(L, R.tty);
  return 2;
}

/** core.stop(): gives Ctrl-C back to the engine, saves the history, puts the terminal and
 * standard input back as they were. Idempotent. */
static int l_stop(lua_State *L) {
  sl_engine *E = SL_ENGINE(L);
  if (!R.active)
    return 0;
  R.active = 0;
  R.reader = NULL;
#ifdef SLUICE_READLINE
  if (R.kind == IN_READLINE) {
    sl_repl_readline_stop(L);
    close_handle((uv_handle_t *)&R.poll);
    close_handle((uv_handle_t *)&R.winch);
  }
#endif
  if (R.kind == IN_STREAM) {
    sl_repl_input_stop();
    close_handle((uv_handle_t *)&R.stream);
    if (R.tty)
      uv_tty_reset_mode();
  }
  if (R.tty)
    close_handle((uv_handle_t *)&R.keepalive);
  if (R.fd_flags >= 0)
    fcntl(0, F_SETFL, R.fd_flags);
  E->on_sigint = NULL;
  E->repl_input = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, R.input_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, R.complete_ref);
  R.input_ref = R.complete_ref = LUA_NOREF;
  free(R.line);
  R.line = NULL;
  sl_buf_free(&R.in);
  free(R.history);
  R.history = NULL;
  fflush(stdout);
  return 0;
}

/** core.tasks() -> an array, oldest first, describing each task alive except the REPL's own
 * (task_api.c's sl_task_list: task, id, status, wait, left, where, job) */
static int l_tasks(lua_State *L) {
  return sl_task_list(L, 1);
}

/* ---------------------------------------------------------- registration */

/** require "sluice.repl_core": what lua/sluice/repl.lua needs from C. */
int luaopen_sluice_repl_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"start", l_start},
    {"stop", l_stop},
    {"read", l_read},
    {"set_input", l_set_input},
    {"history_add", l_history_add},
    {"tasks", l_tasks},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
#ifdef SLUICE_READLINE
  lua_pushboolean(L, 1);
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "readline");
  return 1;
}
