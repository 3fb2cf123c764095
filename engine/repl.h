/* repl.h: what the REPL's two files share: repl.c (its Lua API, "sluice.repl_core": read,
 * Ctrl-C, start and stop) and repl_input.c (reading standard input line by line without
 * blocking the loop, and the terminal's readline: prompt, completion, history). There is one
 * REPL per process: its state is sl_repl_state. */
#ifndef SLUICE_REPL_H
#define SLUICE_REPL_H

#include "sluice.h"

enum { IN_READLINE, IN_STREAM, IN_FILE };

typedef struct sl_repl {
  sl_engine *E;
  int active;                  /* between start() and stop() */
  int closing;                 /* handles closed by stop() whose close callback is pending */
  int kind;                    /* IN_READLINE, IN_STREAM or IN_FILE */
  int tty;                     /* standard input is a terminal */
  int eof;                     /* the end of input has been read */
  int interrupted;             /* Ctrl-C at the prompt, not yet returned by read() */
  int input_sigint;            /* Ctrl-C cancelled the running input */
  int early_sigint;            /* Ctrl-C after a line was entered, before its task started */
  int prompt_shown;            /* readline: the prompt and the line are on the screen */
  int reading;                 /* stream: reading is started; file: a request is in flight */
  int fd_flags;                /* fd 0's flags at start(), put back by stop() */
  sl_task *reader;             /* the task waiting in read(), NULL if none */
  int input_ref;               /* registry ref of the running input's task handle */
  int complete_ref;            /* registry ref of the Lua completion function */
  int matches_ref;             /* registry ref of the last completion's matches */
  char *history;               /* history file, NULL for none */
  int history_added;           /* lines added to the history by this session */
  sl_buf in;                   /* bytes read and not yet returned as lines */
  char *line;                  /* readline: the line just entered (malloc'd), NULL if none */
  uv_poll_t poll;              /* IN_READLINE */
  union {
    uv_tty_t tty;
    uv_pipe_t pipe;
  } stream;                    /* IN_STREAM */
  uv_fs_t req;                 /* IN_FILE */
  char chunk[16 * 1024];       /* where stream and file reads land */
  uv_timer_t keepalive;        /* on a terminal: a loop waiting on an input is no deadlock */
  uv_signal_t winch;           /* readline: the terminal was resized */
  int saved_ref[3];            /* registry refs: print, io.write and file:write before
                                  wrapping */
} sl_repl;

extern sl_repl sl_repl_state;

/* repl_input.c. The next line, false after Ctrl-C or nil at the end of input, pushed if
 * known now (returns 1); returns 0, pushing nothing, when it must still be waited for. */
int sl_repl_take_line(lua_State *L);
/* Starts reading for a reader that found no line buffered (showing the prompt on a
 * terminal); stops once it has one. sl_repl_state.reader is woken when a line is there. */
void sl_repl_input_start(const char *prompt);
void sl_repl_input_stop(void);
void sl_repl_prompt_interrupted(void);    /* Ctrl-C at the prompt */
void sl_repl_history_add(const char *line);
#ifdef SLUICE_READLINE
int sl_repl_readline_start(lua_State *L); /* 0, or -1: read fd 0 another way */
void sl_repl_readline_stop(lua_State *L);
#endif

#endif
