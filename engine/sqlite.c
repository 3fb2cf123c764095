/* sqlite.c: "sluice.sqlite", a small binding of SQLite 3 (Debian's libsqlite3): running SQL
 * from Lua (db:exec, db:prepare, db:rows, statements), values both ways, and the module's
 * registration. Connections and db:batch, on libuv's thread pool, are sqlite_db.c's. */
#include <stdlib.h>
#include <string.h>

#include "sqlite.h"

typedef struct sq_stmt {
  sqlite3_stmt *st;            /* NULL once closed */
  sl_sqlite_db *d;             /* the connection (its userdata is this one's user value) */
} sq_stmt;

static sq_stmt *check_stmt(lua_State *L, int idx) {
  sq_stmt *s = (sq_stmt *)luaL_checkudata(L, idx, SL_SQLITE_STMT_MT);
  if (s->st == NULL)
    luaL_error(L, "attempt to use a closed statement");
  if (s->d->db == NULL)
    luaL_error(L, "attempt to use a closed database");
  if (s->d->work != NULL)
    luaL_error(L, "sqlite: the database is busy with a db:batch in another task");
  return s;
}

/* Binds the Lua value at idx to parameter i of st. Raises on a value SQLite cannot hold. */
static int bind_value(lua_State *L, sqlite3_stmt *st, int i, int idx, int arg) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return sqlite3_bind_null(st, i);
  case LUA_TBOOLEAN:
    return sqlite3_bind_int(st, i, lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      return sqlite3_bind_int64(st, i, (sqlite3_int64)lua_tointeger(L, idx));
    return sqlite3_bind_double(st, i, lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return sqlite3_bind_text64(st, i, s, n, SQLITE_TRANSIENT, SQLITE_UTF8);
  }
  default:
    return luaL_error(L, "bad argument #%d (nil, boolean, number or string expected, got %s)",
                      arg, luaL_typename(L, idx));
  }
}

/* Binds the values at first .. top to st's parameters (after resetting it). */
static int bind_args(lua_State *L, sqlite3_stmt *st, int first) {
  int i, n = lua_gettop(L) - first + 1, want = sqlite3_bind_parameter_count(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (n > want)
    return luaL_error(L, "sqlite: %d values for a statement with %d parameters", n, want);
  for (i = 0; i < n; i++) {
    int rc = bind_value(L, st, i + 1, first + i, first + i);
    if (rc != SQLITE_OK)
      return luaL_error(L, "sqlite: cannot bind value %d: %s", i + 1, sqlite3_errstr(rc));
  }
  return 0;
}

/* Pushes the current row of st as a table, column name -> value (NULL columns absent). */
static void push_row(lua_State *L, sqlite3_stmt *st) {
  int i, n = sqlite3_column_count(st);
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(st, i));
      break;
    case SQLITE_FLOAT:
      lua_pushnumber(L, sqlite3_column_double(st, i));
      break;
    case SQLITE_NULL:
      continue;
    default: {   /* text and blobs alike: a Lua string */
      const void *p = sqlite3_column_blob(st, i);
      lua_pushlstring(L, (const char *)p, (size_t)sqlite3_column_bytes(st, i));
      break;
    }
    }
    lua_setfield(L, -2, sqlite3_column_name(st, i));
  }
}

/** db:exec(sql, ...) -> true | nil, msg, code: without values, runs every statement of sql;
 * with values, sql is one statement, bound to them and run to its end. */
static int db_exec(lua_State *L) {
  sl_sqlite_db *d = sl_sqlite_check_idle(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  int rc;
  if (lua_gettop(L) <= 2) {
    rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
  } else {
    sqlite3_stmt *st = NULL;
    int i, n = lua_gettop(L) - 2;
    for (i = 3; i <= lua_gettop(L); i++) {   /* checked first: binding cannot raise then */
      int t = lua_type(L, i);
      luaL_argexpected(L, t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER ||
                       t == LUA_TSTRING, i, "nil, boolean, number or string");
    }
    rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && st == NULL)
      return luaL_error(L, "sqlite: no statement in %s", sql);
    if (rc == SQLITE_OK && n > sqlite3_bind_parameter_count(st)) {
      int want = sqlite3_bind_parameter_count(st);
      sqlite3_finalize(st);
      return luaL_error(L, "sqlite: %d values for a statement with %d parameters", n, want);
    }
    for (i = 0; rc == SQLITE_OK && i < n; i++)
      rc = bind_value(L, st, i + 1, i + 3, i + 3);
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {}
      if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
      int n2 = sl_sqlite_fail(L, d->db, rc);
      sqlite3_finalize(st);
      return n2;
    }
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_OK)
    return sl_sqlite_fail(L, d->db, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/** db:prepare(sql) -> stmt | nil, msg, code: compiles one statement. */
static int db_prepare(lua_State *L) {
  sl_sqlite_db *d = sl_sqlite_check_idle(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  sq_stmt *s = (sq_stmt *)lua_newuserdatauv(L, sizeof(sq_stmt), 1);
  int rc;
  s->st = NULL;
  s->d = d;
  luaL_setmetatable(L, SL_SQLITE_STMT_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);   /* the connection lives as long as its statements */
  rc = sqlite3_prepare_v2(d->db, sql, -1, &s->st, NULL);
  if (rc != SQLITE_OK)
    return sl_sqlite_fail(L, d->db, rc);
  if (s->st == NULL)
    return luaL_error(L, "sqlite: no statement in %s", sql);
  return 1;
}

/* The iterator of db:rows: the statement is its upvalue. */
static int rows_iter(lua_State *L) {
  sq_stmt *s = (sq_stmt *)lua_touserdata(L, lua_upvalueindex(1));
  int rc;
  if (s->st == NULL)
    return 0;
  check_stmt(L, lua_upvalueindex(1));
  rc = sqlite3_step(s->st);
  if (rc == SQLITE_ROW) {
    push_row(L, s->st);
    return 1;
  }
  sqlite3_finalize(s->st);
  s->st = NULL;
  if (rc != SQLITE_DONE)
    return luaL_error(L, "sqlite: %s: %s", sl_sqlite_code_name(rc), sqlite3_errmsg(s->d->db));
  return 0;
}

/** db:rows(sql, ...) -> iterator: each row of the statement (bound to the values) as a
 * table, column name -> value; raises on an error. */
static int db_rows(lua_State *L) {
  sq_stmt *s;
  int top = lua_gettop(L);
  sl_sqlite_check_idle(L, 1);
  luaL_checkstring(L, 2);
  lua_pushcfunction(L, db_prepare);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 3);
  if (lua_isnil(L, -3))
    return luaL_error(L, "sqlite: %s", lua_tostring(L, -2));
  lua_pop(L, 2);
  s = (sq_stmt *)lua_touserdata(L, -1);
  lua_insert(L, 3);   /* stmt, then the values */
  bind_args(L, s->st, 4);
  lua_settop(L, 3);
  (void)top;
  lua_pushcclosure(L, rows_iter, 1);
  return 1;
}

/* ------------------------------------------------------------ statements */

/** stmt:bind(...) -> stmt: resets the statement and binds its parameters to the values. */
static int stmt_bind(lua_State *L) {
  sq_stmt *s = check_stmt(L, 1);
  bind_args(L, s->st, 2);
  lua_settop(L, 1);
  return 1;
}

/** stmt:step() -> row | nil | nil, msg, code: the next row as a table (column name ->
 * value), nil when there is none left. */
static int stmt_step(lua_State *L) {
  sq_stmt *s = check_stmt(L, 1);
  int rc = sqlite3_step(s->st);
  if (rc == SQLITE_ROW) {
    push_row(L, s->st);
    return 1;
  }
  if (rc == SQLITE_DONE) {
    lua_pushnil(L);
    return 1;
  }
  rc = sqlite3_reset(s->st);   /* (the error code of the step, for the legacy interface) */
  return sl_sqlite_fail(L, s->d->db, rc != SQLITE_OK ? rc : SQLITE_ERROR);
}

/** stmt:reset() -> stmt: back to its start, bindings kept. */
static int stmt_reset(lua_State *L) {
  sq_stmt *s = check_stmt(L, 1);
  sqlite3_reset(s->st);
  lua_settop(L, 1);
  return 1;
}

/** stmt:close(): finalizes the statement (idempotent). */
static int stmt_close(lua_State *L) {
  sq_stmt *s = (sq_stmt *)luaL_checkudata(L, 1, SL_SQLITE_STMT_MT);
  if (s->st != NULL && s->d->work != NULL)
    return luaL_error(L, "sqlite: the database is busy with a db:batch in another task");
  sqlite3_finalize(s->st);
  s->st = NULL;
  return 0;
}

static int stmt_gc(lua_State *L) {
  sq_stmt *s = (sq_stmt *)luaL_checkudata(L, 1, SL_SQLITE_STMT_MT);
  /* A batch never uses a user's statement, and the connection's userdata (this one's user
   * value) is still there: finalizing is safe even during a batch. */
  sqlite3_finalize(s->st);
  s->st = NULL;
  return 0;
}

/* ------------------------------------------------------------ registration */

int luaopen_sluice_sqlite(lua_State *L) {
  static const luaL_Reg db_methods[] = {   /* beside sqlite_db.c's own */
    {"exec", db_exec},
    {"prepare", db_prepare},
    {"rows", db_rows},
    {NULL, NULL}
  };
  static const luaL_Reg stmt_methods[] = {
    {"bind", stmt_bind},
    {"step", stmt_step},
    {"reset", stmt_reset},
    {"close", stmt_close},
    {NULL, NULL}
  };
  static const luaL_Reg stmt_meta[] = {
    {"__close", stmt_close},
    {"__gc", stmt_gc},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"open", sl_sqlite_open},
    {NULL, NULL}
  };
  sl_newmeta(L, SL_SQLITE_DB_MT, sl_sqlite_db_methods, sl_sqlite_db_meta);
  luaL_getmetatable(L, SL_SQLITE_DB_MT);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, db_methods, 0);
  lua_pop(L, 2);
  sl_newmeta(L, SL_SQLITE_STMT_MT, stmt_methods, stmt_meta);
  luaL_newlib(L, funcs);
  lua_pushstring(L, sqlite3_libversion());
  lua_setfield(L, -2, "version");
  return 1;
}
