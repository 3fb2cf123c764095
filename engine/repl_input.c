/* repl_input.c: the REPL's line reading: standard input read line by line without ever
 * blocking the loop, and on a terminal with GNU readline, the prompt kept intact under output
 * from background tasks, completion and history. repl.c, the Lua API, calls it.
 *
 * Standard input is read one of three ways, chosen at start():
 *   - a terminal, built with GNU readline: readline's callback interface, fed one character
 *     at a time from a uv_poll_t on fd 0, so the loop keeps running while the user types;
 *   - a terminal without readline, or a pipe: a uv_tty_t / uv_pipe_t stream read;
 *   - anything else (a file, /dev/null): uv_fs_read through libuv's thread pool.
 * Input is read only while the REPL waits for a line: what is typed while an input runs stays
 * in the terminal's buffer and reaches the next prompt. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repl.h"

#ifdef SLUICE_READLINE
#include <readline/readline.h>
#include <readline/history.h>
#endif

/* One REPL per process, like the engine's signal handling. */
sl_repl sl_repl_state;
#define R sl_repl_state
#define HISTORY_MAX 1000

/* ------------------------------------------------------------ the buffer */

static int has_line(void) {
  return R.line != NULL || (R.in.len > 0 && memchr(R.in.p, '\n', R.in.len) != NULL);
}

/* Pushes what read() returns if it is known now: false after Ctrl-C, the next line, or nil at
 * the end of input. Returns 0 (pushing nothing) when a line must still be waited for. */
int sl_repl_take_line(lua_State *L) {
  char *nl;
  if (R.interrupted) {
    R.interrupted = 0;
    lua_pushboolean(L, 0);
    return 1;
  }
  if (R.line != NULL) {
    lua_pushstring(L, R.line);
    free(R.line);
    R.line = NULL;
    return 1;
  }
  nl = R.in.len > 0 ? (char *)memchr(R.in.p, '\n', R.in.len) : NULL;
  if (nl != NULL || (R.eof && R.in.len > 0)) {
    size_t n = nl != NULL ? (size_t)(nl - R.in.p) : R.in.len;
    size_t used = nl != NULL ? n + 1 : n;
    lua_pushlstring(L, R.in.p, n > 0 && R.in.p[n - 1] == '\r' ? n - 1 : n);
    memmove(R.in.p, R.in.p + used, R.in.len - used);
    R.in.len -= used;
    return 1;
  }
  if (R.eof) {
    lua_pushnil(L);
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------- reading */

/* Hands what was read to the task waiting in read(); it runs later, from the ready queue. */
static void reader_wake(void) {
  sl_task *t = R.reader;
  sl_repl_input_stop();
  if (t != NULL) {
    R.reader = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  }
}

#ifdef SLUICE_READLINE
/* readline calls this once a line is complete (NULL at Ctrl-D on an empty line). The handler
 * is removed at once so that readline neither shows a new prompt nor reads on. */
static void rl_line_cb(char *line) {
  R.prompt_shown = 0;
  rl_callback_handler_remove();
  uv_poll_stop(&R.poll);
  if (line == NULL) {
    R.eof = 1;
    fputc('\n', stdout);
    fflush(stdout);
  } else {
    free(R.line);
    R.line = line;
  }
  reader_wake();
}

static int fd0_readable(void) {
  struct pollfd p;
  p.fd = 0;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* fd 0 is readable: feed readline every character that is there (a paste arrives at once),
 * stopping as soon as a line is complete so the rest waits for the next prompt. */
static void poll_cb(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0) {
    R.eof = 1;
    R.prompt_shown = 0;
    rl_callback_handler_remove();
    reader_wake();
    return;
  }
  do
    rl_callback_read_char();
  while (R.prompt_shown && fd0_readable());
}

static void winch_cb(uv_signal_t *h, int sig) {
  (void)h;
  (void)sig;
  if (R.prompt_shown)
    rl_resize_terminal();
}
#endif

static void stream_alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *b) {
  (void)h;
  (void)size;
  *b = uv_buf_init(R.chunk, sizeof R.chunk);
}

static void stream_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)s;
  if (n > 0 && sl_buf_add(&R.in, b->base, (size_t)n) != 0)
    n = UV_ENOMEM;
  if (n < 0)
    R.eof = 1;
  if (R.eof || has_line())
    reader_wake();
}

static void file_read_start(void);

static void file_read_cb(uv_fs_t *req) {
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  R.reading = 0;
  if (n > 0 && sl_buf_add(&R.in, R.chunk, (size_t)n) != 0)
    n = -1;
  if (n <= 0)
    R.eof = 1;
  if (R.reader == NULL)
    return;
  if (R.eof || has_line())
    reader_wake();
  else
    file_read_start();
}

static void file_read_start(void) {
  uv_buf_t b = uv_buf_init(R.chunk, sizeof R.chunk);
  if (R.reading)
    return;
  if (uv_fs_read(R.E->loop, &R.req, 0, &b, 1, -1, file_read_cb) < 0) {
    R.eof = 1;
    reader_wake();
    return;
  }
  R.reading = 1;
}

/* Starts reading for a reader that found no line buffered; shows the prompt on a terminal. */
void sl_repl_input_start(const char *prompt) {
  fflush(stdout);
  switch (R.kind) {
#ifdef SLUICE_READLINE
  case IN_READLINE:
    rl_callback_handler_install(prompt, rl_line_cb);
    R.prompt_shown = 1;
    uv_poll_start(&R.poll, UV_READABLE, poll_cb);
    break;
#endif
  case IN_STREAM:
    if (R.tty && prompt[0] != '\0') {
      fputs(prompt, stdout);
      fflush(stdout);
    }
    if (!R.reading && uv_read_start((uv_stream_t *)&R.stream, stream_alloc_cb,
                                    stream_read_cb) == 0)
      R.reading = 1;
    break;
  default:
    file_read_start();
    break;
  }
}

/* Stops reading once the reader has what it needs; a file request in flight just lands in
 * the buffer. Idempotent. */
void sl_repl_input_stop(void) {
#ifdef SLUICE_READLINE
  if (R.kind == IN_READLINE && R.prompt_shown) {
    R.prompt_shown = 0;
    rl_callback_handler_remove();
  }
  if (R.kind == IN_READLINE)
    uv_poll_stop(&R.poll);
#endif
  if (R.kind == IN_STREAM && R.reading) {
    uv_read_stop((uv_stream_t *)&R.stream);
    R.reading = 0;
  }
}

/* Ctrl-C at the prompt: the line being typed is dropped, and read() returns false. */
void sl_repl_prompt_interrupted(void) {
#ifdef SLUICE_READLINE
  if (R.kind == IN_READLINE && R.prompt_shown) {
    rl_free_line_state();
    rl_callback_sigcleanup();
    rl_replace_line("", 1);
    fputs("^C", stdout);
  }
#endif
  if (R.tty)
    fputc('\n', stdout);
  fflush(stdout);
  R.interrupted = 1;
  reader_wake();
}

/* ------------------------------------------------- output above the prompt */

#ifdef SLUICE_READLINE
/* print, io.write and file:write while readline shows the prompt: the prompt and the line
 * being typed are wiped, the output written, then both drawn again below it, so background
 * tasks never eat what is being typed. Upvalues: the original function, and its kind (0
 * print, 1 io.write, 2 file:write, which only does this for stdout and stderr). */
static int out_wrap(lua_State *L) {
  int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
  int n = lua_gettop(L), st, at_bol = 1;
  if (R.prompt_shown && kind == 2) {
    luaL_Stream *s = (luaL_Stream *)luaL_testudata(L, 1, LUA_FILEHANDLE);
    if (s == NULL || (s->f != stdout && s->f != stderr))
      kind = -1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  if (!R.prompt_shown || kind < 0) {
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
  }
  /* print ends its line; a write that does not end in "\n" gets one before the prompt. */
  if (kind != 0 && n > (kind == 2 ? 1 : 0)) {
    size_t len = 0;
    const char *s = lua_type(L, n + 1) == LUA_TSTRING ? lua_tolstring(L, n + 1, &len) : NULL;
    at_bol = s != NULL && len > 0 && s[len - 1] == '\n';
  }
  rl_clear_visible_line();
  fflush(rl_outstream);
  st = lua_pcall(L, n, LUA_MULTRET, 0);
  if (!at_bol)
    fputc('\n', stdout);
  fflush(stdout);
  fflush(stderr);
  if (R.prompt_shown) {
    rl_on_new_line();
    rl_redisplay();
  }
  if (st != LUA_OK)
    return lua_error(L);
  return lua_gettop(L);
}

/* Pushes the table holding the function slot `which` wraps, and its key. */
static const char *wrap_slot(lua_State *L, int which) {
  if (which == 0) {
    lua_pushglobaltable(L);
    return "print";
  }
  if (which == 1) {
    lua_getglobal(L, "io");
    return "write";
  }
  luaL_getmetatable(L, LUA_FILEHANDLE);
  lua_getfield(L, -1, "__index");
  lua_remove(L, -2);
  return "write";
}

static void output_wrap(lua_State *L) {
  int i;
  for (i = 0; i < 3; i++) {
    const char *key = wrap_slot(L, i);
    R.saved_ref[i] = LUA_NOREF;
    if (lua_istable(L, -1) && lua_getfield(L, -1, key) == LUA_TFUNCTION) {
      lua_pushvalue(L, -1);
      R.saved_ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
      lua_pushinteger(L, i);
      lua_pushcclosure(L, out_wrap, 2);
      lua_setfield(L, -2, key);
    } else {
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

/* Puts the originals back, unless a script has replaced the wrapper meanwhile. */
static void output_unwrap(lua_State *L) {
  int i;
  for (i = 0; i < 3; i++) {
    const char *key;
    if (R.saved_ref[i] == LUA_NOREF)
      continue;
    key = wrap_slot(L, i);
    if (lua_istable(L, -1) && lua_getfield(L, -1, key) == LUA_TFUNCTION &&
        lua_tocfunction(L, -1) == out_wrap) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, R.saved_ref[i]);
      lua_setfield(L, -3, key);
    }
    lua_pop(L, 2);
    luaL_unref(L, LUA_REGISTRYINDEX, R.saved_ref[i]);
    R.saved_ref[i] = LUA_NOREF;
  }
}

/* ------------------------------------------------------------ completion */

/* readline's generator: state 0 asks the Lua completer (which reads tables with rawget and
 * next only, so no user code runs) for every match of text; later calls hand them out. */
static char *complete_gen(const char *text, int state) {
  static lua_Integer next_i;
  lua_State *L = R.E->L;
  int top = lua_gettop(L);
  char *r = NULL;
  if (state == 0) {
    next_i = 0;
    luaL_unref(L, LUA_REGISTRYINDEX, R.matches_ref);
    R.matches_ref = LUA_NOREF;
    lua_pushcfunction(L, sl_traceback_msgh);
    lua_rawgeti(L, LUA_REGISTRYINDEX, R.complete_ref);
    lua_pushstring(L, text);
    if (lua_pcall(L, 1, 1, top + 1) == LUA_OK && lua_istable(L, -1))
      R.matches_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, top);
  }
  if (R.matches_ref == LUA_NOREF)
    return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, R.matches_ref);
  if (lua_rawgeti(L, -1, ++next_i) == LUA_TSTRING)
    r = strdup(lua_tostring(L, -1));
  lua_settop(L, top);
  return r;
}

static char **complete_cb(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1;    /* never fall back to file names */
  rl_completion_suppress_append = 1;   /* the completer appends "(" or "." itself */
  if (R.complete_ref == LUA_NOREF)
    return NULL;
  return rl_completion_matches(text, complete_gen);
}

int sl_repl_readline_start(lua_State *L) {
  static char breaks[] = " \t\n\"'`@$><=;|&{}()[]+-*/%^~#,";
  int flags = fcntl(0, F_GETFL);
  if (uv_poll_init(R.E->loop, &R.poll, 0) != 0)
    return -1;
  /* uv_poll_init made fd 0 non-blocking, and fd 0 usually shares its open file with stdout
   * and the shell: put the flags back (readline only reads once poll says there is data). */
  if (flags >= 0)
    fcntl(0, F_SETFL, flags);
  rl_readline_name = "sluice";
  rl_instream = stdin;
  rl_outstream = stdout;
  rl_catch_signals = 0;                /* Ctrl-C is the engine's (see repl_sigint) */
  rl_catch_sigwinch = 0;
  rl_change_environment = 0;           /* leave LINES and COLUMNS alone */
  rl_basic_word_break_characters = breaks;
  rl_completer_word_break_characters = breaks;
  rl_attempted_completion_function = complete_cb;
  using_history();
  stifle_history(HISTORY_MAX);
  if (R.history != NULL)
    read_history(R.history);
  uv_signal_init(R.E->loop, &R.winch);
  uv_signal_start(&R.winch, winch_cb, SIGWINCH);
  uv_unref((uv_handle_t *)&R.winch);
  output_wrap(L);
  return 0;
}

void sl_repl_readline_stop(lua_State *L) {
  if (R.prompt_shown) {        /* leaving from another task (os.exit): end the prompt's line */
    sl_repl_input_stop();
    fputc('\n', stdout);
  }
  output_unwrap(L);
  /* Append this session's lines, so sessions running side by side all keep theirs. */
  if (R.history != NULL && R.history_added > 0) {
    int n = R.history_added < history_length ? R.history_added : history_length;
    int rc = access(R.history, F_OK) == 0 ? append_history(n, R.history)
                                           : write_history(R.history);
    if (rc == 0)
      history_truncate_file(R.history, HISTORY_MAX);
  }
  clear_history();
  luaL_unref(L, LUA_REGISTRYINDEX, R.matches_ref);
  R.matches_ref = LUA_NOREF;
}
#endif


/* Remembers an entered line, skipping a repeat of the last one (readline only). */
void sl_repl_history_add(const char *line) {
#ifdef SLUICE_READLINE
  if (R.active && R.kind == IN_READLINE) {
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1)
                                          : NULL;
    if (last == NULL || strcmp(last->line, line) != 0) {
      add_history(line);
      R.history_added++;
    }
  }
#else
  (void)line;
#endif
}
