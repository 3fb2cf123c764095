/* main.c: the `sluice` command line, modelled on Lua's own lua.c: options, the arg table,
 * loading the script, and running it as the main task on the loop until every task ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice.h"

#include <lua-cjson.h>

static const char *progname = "sluice";

static void print_usage(FILE *f) {
  fprintf(f,
    "usage: %s [options] [script [args]]\n"
    "       %s test [paths] [test options]   (run specs; see: sluice test --help)\n"
    "       %s shell [URL]                   (the REPL with fetch() and page:css())\n"
    "       %s crawl [options] URL...        (the crawler; see: sluice crawl --help)\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat' (inside the main task)\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -v        show version information\n"
    "  -h        show this help\n"
    "  --        stop handling options\n"
    "  -         execute stdin and stop handling options\n"
    "Every piece of code runs as a task on the event loop; the process ends when the\n"
    "main script and every task it started have ended.\n",
    progname, progname, progname, progname);
}

/* One-line error for problems found before the loop starts; exit status 1. */
static int startup_error(lua_State *L, const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
  if (L != NULL)
    lua_settop(L, 0);
  return 1;
}

typedef struct options {
  int script;       /* index in argv of the script, 0 if none */
  int interactive;  /* -i */
  int version;      /* -v */
  int stdin_script; /* '-' given */
  int first_action; /* index of the first -e / -l, in argv order */
} options;

/* Parses options like lua.c's collectargs; returns -1 on a bad option (index in *bad). */
static int collect_args(int argc, char **argv, options *o, int *bad) {
  int i;
  memset(o, 0, sizeof *o);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      o->script = i;
      return 0;
    }
    if (strcmp(a, "-") == 0) {
      o->stdin_script = 1;
      o->script = i;
      return 0;
    }
    if (strcmp(a, "--") == 0) {
      if (i + 1 < argc)
        o->script = i + 1;
      return 0;
    }
    if (strcmp(a, "-i") == 0) {
      o->interactive = 1;
    } else if (strcmp(a, "-v") == 0) {
      o->version = 1;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      print_usage(stdout);
      exit(0);
    } else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
      if (i + 1 >= argc) {
        *bad = i;
        return -1;
      }
      i++;
    } else if ((a[1] == 'e' || a[1] == 'l') && a[2] != '\0') {
      /* -estat and -lmod, as lua accepts them */
    } else {
      *bad = i;
      return -1;
    }
  }
  return 0;
}

/* Builds the global `arg` like lua: arg[0] the script, positives its arguments,
 * negatives the interpreter and the options before it. */
static void create_arg_table(lua_State *L, int argc, char **argv, int script) {
  int i, base = script ? script : argc;
  lua_createtable(L, argc - base, base + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - base);
  }
  lua_setglobal(L, "arg");
}

/* Loads every -e / -l and the script into the boot's action list at the top of the stack,
 * so that they later run in order inside the main task. Returns 0, or 1 after reporting. */
static int load_actions(lua_State *L, int argc, char **argv, const options *o) {
  int i, n = 0, end = o->script ? o->script : argc;
  for (i = 1; i < end; i++) {
    const char *a = argv[i], *val = NULL;
    char kind;
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
      continue;
    kind = a[1];
    val = a[2] != '\0' ? a + 2 : argv[++i];
    lua_createtable(L, 0, 3);
    if (kind == 'e') {
      if (luaL_loadbuffer(L, val, strlen(val), "=(command line)") != LUA_OK)
        return startup_error(L, lua_tostring(L, -1));
      lua_setfield(L, -2, "fn");
    } else {
      const char *eq = strchr(val, '=');
      if (eq != NULL) {
        lua_pushlstring(L, val, (size_t)(eq - val));
        lua_setfield(L, -2, "global");
        lua_pushstring(L, eq + 1);
      } else {
        lua_pushstring(L, val);
      }
      lua_setfield(L, -2, "require");
    }
    lua_rawseti(L, -2, ++n);
  }
  if (o->script) {
    const char *fname = o->stdin_script ? NULL : argv[o->script];
    int j;
    if (fname != NULL && access(fname, F_OK) != 0) {
      lua_pushfstring(L, "cannot open %s: no such file", fname);
      return startup_error(L, lua_tostring(L, -1));
    }
    lua_createtable(L, argc - o->script, 1);
    if (luaL_loadfile(L, fname) != LUA_OK)
      return startup_error(L, lua_tostring(L, -1));
    lua_setfield(L, -2, "fn");
    for (j = o->script + 1; j < argc; j++) {
      lua_pushstring(L, argv[j]);
      lua_rawseti(L, -2, j - o->script);
    }
    lua_pushinteger(L, argc - o->script - 1);
    lua_setfield(L, -2, "n");
    lua_rawseti(L, -2, ++n);
  }
  return 0;
}

/* `sluice shell [URL]` and `sluice crawl ...`: an action that runs `chunk` with whether
 * stdin is a terminal and the command's arguments. Returns 0, or 1 after reporting. */
static int load_command(lua_State *L, int argc, char **argv, const char *chunk) {
  int i;
  create_arg_table(L, argc, argv, 1);
  lua_createtable(L, argc, 2);
  if (luaL_loadbuffer(L, chunk, strlen(chunk), "=(command)") != LUA_OK)
    return startup_error(L, lua_tostring(L, -1));
  lua_setfield(L, -2, "fn");
  lua_pushboolean(L, isatty(0));
  lua_rawseti(L, -2, 1);
  for (i = 2; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_pushinteger(L, argc - 1);
  lua_setfield(L, -2, "n");
  lua_rawseti(L, -2, 1);
  return 0;
}

/* The module table, the one list of what sluice is made of. "sluice.core" is the engine's
 * Lua API, one table filled by each of its parts; the C modules below are each loaded by
 * their require (package.preload). */
static void (*const core_parts[])(lua_State *L) = {
  sl_task_register,            /* task_api.c: spawn, task methods, sleep, now, tasks */
  sl_group_register,           /* group.c: gather, wait, as_completed */
  sl_lac_register,             /* lac.c: limited_as_completed */
  sl_sync_register,            /* sync.c: semaphore, event, queue */
  sl_fs_register,              /* fs.c: lines and file helpers */
};

/** require "sluice.core": the C half of the sluice module. */
static int luaopen_sluice_core(lua_State *L) {
  size_t i;
  lua_newtable(L);
  for (i = 0; i < sizeof core_parts / sizeof core_parts[0]; i++)
    core_parts[i](L);
  lua_pushliteral(L, SLUICE_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}

static const luaL_Reg c_modules[] = {
  {"sluice.core", luaopen_sluice_core},
  {"cjson", luaopen_cjson},
  {"sluice.tcp", luaopen_sluice_tcp},
  {"sluice.http.server_core", luaopen_sluice_http_server},
  {"sluice.http.client_core", luaopen_sluice_http_client},
  {"sluice.repl_core", luaopen_sluice_repl_core},
  {"sluice.url", luaopen_sluice_url},
  {"sluice.html", luaopen_sluice_html},
  {"sluice.sqlite", luaopen_sluice_sqlite},
  {NULL, NULL}
};

/* Prepares the state: standard libraries, the engine, the C and embedded Lua modules. */
static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  const char *devpath;
  if (L == NULL)
    return NULL;
  luaL_openlibs(L);
  /* Generational GC: a run holds many long-lived coroutines (sleepers, workers) while
   * results and rows die young; the incremental collector kept re-marking the former, and
   * measured twice as slow to spawn 300k tasks. Scripts may switch back with
   * collectgarbage("incremental"). */
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (sl_engine_new(L) == NULL) {
    lua_close(L);
    return NULL;
  }
  sl_coro_install(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  luaL_setfuncs(L, c_modules, 0);
  lua_pop(L, 1);
  /* SLUICE_LUA_PATH=lua loads lua/ from the source tree, so edits need no rebuild. */
  devpath = getenv("SLUICE_LUA_PATH");
  if (devpath != NULL && devpath[0] != '\0') {
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", devpath, devpath);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
  } else {
    sl_embedded_install(L);
  }
  return L;
}

/* Runs `sluice.boot` as the main task over the action list at the top of the stack.
 * Returns the exit status. */
static int run_main(lua_State *L, const char *mode) {
  sl_engine *E = SL_ENGINE(L);
  sl_task *t;
  int status;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "sluice.boot");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    return startup_error(L, lua_tostring(L, -1));
  lua_insert(L, -2);
  lua_pushstring(L, mode);
  t = sl_task_new(L, -3, 2);
  E->main = t;
  t->observed = 1;
  status = sl_engine_run(E, t);
  /* `sluice test` and the REPL end with the status their main function returned. */
  if (status == 0 && t->status == SL_DONE) {
    int n = sl_task_push_outcome(L, -1);
    if (n >= 2 && lua_isinteger(L, -n + 1))
      status = (int)lua_tointeger(L, -n + 1);
    lua_pop(L, n);
  }
  lua_pop(L, 1);
  return status;
}

int main(int argc, char **argv) {
  lua_State *L;
  sl_engine *E;
  options o;
  int bad = 0, status;
  const char *mode = "script";
  if (argv[0] && argv[0][0])
    progname = "sluice";
  L = new_state();
  if (L == NULL)
    return startup_error(NULL, "cannot create the Lua state: not enough memory");
  E = SL_ENGINE(L);
  lua_newtable(L);   /* the action list */
  if (argc >= 2 && strcmp(argv[1], "test") == 0) {
    int i;
    mode = "test";
    create_arg_table(L, argc, argv, 1);
    for (i = 2; i < argc; i++) {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, i - 1);
    }
  } else if (argc >= 2 && strcmp(argv[1], "shell") == 0) {
    mode = "repl";
    if (load_command(L, argc, argv, "return require('sluice.shell').main(...)") != 0) {
      status = 1;
      goto done;
    }
  } else if (argc >= 2 && strcmp(argv[1], "crawl") == 0) {
    if (load_command(L, argc, argv,
                     "return require('sluice.crawl.cli').main('sluice crawl', select(2, ...))")
        != 0) {
      status = 1;
      goto done;
    }
  } else {
    if (collect_args(argc, argv, &o, &bad) != 0) {
      char msg[256];
      snprintf(msg, sizeof msg, "unrecognized option '%s' (try '%s -h')", argv[bad],
               progname);
      if (argv[bad][1] == 'e' || argv[bad][1] == 'l')
        snprintf(msg, sizeof msg, "'%s' needs an argument", argv[bad]);
      status = startup_error(L, msg);
      goto done;
    }
    if (o.version)
      printf("%s (%s, libuv %s)\n", SLUICE_VERSION, LUA_RELEASE, uv_version_string());
    if (!o.script && !o.interactive && argc > 1 && o.version && o.first_action == 0) {
      int k, only_v = 1;
      for (k = 1; k < argc; k++)
        if (strcmp(argv[k], "-v") != 0)
          only_v = 0;
      if (only_v) {
        status = 0;
        goto done;
      }
    }
    if (!o.script && argc == 1 && !isatty(0)) {
      o.script = -1;   /* `sluice < file` runs stdin, as lua does */
      o.stdin_script = 1;
    }
    if (o.script == -1) {
      lua_newtable(L);
      if (luaL_loadfile(L, NULL) != LUA_OK) {
        status = startup_error(L, lua_tostring(L, -1));
        goto done;
      }
      lua_setfield(L, -2, "fn");
      lua_rawseti(L, -2, 1);
      create_arg_table(L, argc, argv, 0);
    } else {
      create_arg_table(L, argc, argv, o.script);
      if (load_actions(L, argc, argv, &o) != 0) {
        status = 1;
        goto done;
      }
    }
    if (o.interactive || (argc == 1 && isatty(0)))
      mode = "repl";
  }
  status = run_main(L, mode);
done:
  fflush(stdout);
  lua_close(L);
  if (status == 0 && E->unhandled > 0)
    status = 1;
  sl_engine_free(E);
  return status;
}
