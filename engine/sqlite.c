/* sqlite.c: "sluice.sqlite", a small binding of SQLite 3 (Debian's libsqlite3): connections,
 * prepared statements, and db:batch, a transaction run on libuv's thread pool while the
 * calling task waits, so a slow commit never stalls the loop. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sluice.h"

#define SQ_CACHE 8             /* statements db:batch keeps prepared, by SQL text */

typedef struct sq_batch sq_batch;

typedef struct sq_db {
  sqlite3 *db;                 /* NULL once closed */
  sl_engine *E;
  sq_batch *work;              /* the batch running on the thread pool, or NULL: while set,
                                  the connection belongs to that thread, not to Lua */
  int close_after;             /* db:close() came while busy: close when the batch ends */
  int ref;                     /* anchors the userdata while a batch runs */
  struct {
    char *sql;
    sqlite3_stmt *st;
    unsigned mark;             /* the serial of the last batch that used it */
  } cache[SQ_CACHE];           /* db:batch's prepared statements, oldest replaced first */
  int cache_next;
  unsigned serial;             /* of the batch being built */
} sq_db;

typedef struct sq_stmt {
  sqlite3_stmt *st;            /* NULL once closed */
  sq_db *d;                    /* the connection (its userdata is this one's user value) */
} sq_stmt;

/* A value copied out of Lua for the thread pool: strings live in the batch's byte arena,
 * by offset, since the arena moves as it grows. */
typedef struct sq_val {
  int type;                    /* SQLITE_NULL, SQLITE_INTEGER, SQLITE_FLOAT or SQLITE_TEXT */
  union {
    sqlite3_int64 i;
    double d;
    size_t off;
  } u;
  size_t len;
} sq_val;

typedef struct sq_op {
  sqlite3_stmt *st;            /* from the connection's cache */
  int nvals;
  size_t first;                /* its values are vals[first .. first + nvals) */
} sq_op;

struct sq_batch {
  uv_work_t req;
  sq_db *d;
  sl_task *waiter;             /* the task waiting in db:batch */
  sq_op *ops;
  size_t nops, capops;
  sq_val *vals;
  size_t nvals, capvals;
  char *bytes;
  size_t nbytes, capbytes;
  sqlite3_stmt **own;          /* statements beyond the cache, finalized with the batch */
  size_t nown, capown;
  int done;                    /* the thread pool has finished with it */
  int rc;                      /* its outcome: SQLITE_OK, or the failing step's code */
  char *errmsg;                /* and message (malloc'd in the thread, NULL if none) */
};

/* The name of a primary result code, for the fail triple ("SQLITE_FULL"). */
static const char *sq_code_name(int rc) {
  static const char *const names[] = {
    "SQLITE_OK", "SQLITE_ERROR", "SQLITE_INTERNAL", "SQLITE_PERM", "SQLITE_ABORT",
    "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_NOMEM", "SQLITE_READONLY", "SQLITE_INTERRUPT",
    "SQLITE_IOERR", "SQLITE_CORRUPT", "SQLITE_NOTFOUND", "SQLITE_FULL", "SQLITE_CANTOPEN",
    "SQLITE_PROTOCOL", "SQLITE_EMPTY", "SQLITE_SCHEMA", "SQLITE_TOOBIG", "SQLITE_CONSTRAINT",
    "SQLITE_MISMATCH", "SQLITE_MISUSE", "SQLITE_NOLFS", "SQLITE_AUTH", "SQLITE_FORMAT",
    "SQLITE_RANGE", "SQLITE_NOTADB", "SQLITE_NOTICE", "SQLITE_WARNING"
  };
  int primary = rc & 0xff;
  if (primary >= 0 && primary < (int)(sizeof(names) / sizeof(names[0])))
    return names[primary];
  return "SQLITE_ERROR";
}

/* Pushes the fail triple for the connection's last error. */
static int sq_fail(lua_State *L, sqlite3 *db, int rc) {
  const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return sl_fail(L, sq_code_name(rc), "%s", msg);
}

static sq_db *check_db(lua_State *L, int idx) {
  sq_db *d = (sq_db *)luaL_checkudata(L, idx, SL_SQLITE_DB_MT);
  if (d->db == NULL)
    luaL_error(L, "attempt to use a closed database");
  return d;
}

/* The connection for a call made on the loop thread: raises while a batch owns it. */
static sq_db *check_idle(lua_State *L, int idx) {
  sq_db *d = check_db(L, idx);
  if (d->work != NULL)
    luaL_error(L, "sqlite: the database is busy with a db:batch in another task");
  return d;
}

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

/* ------------------------------------------------------------ connections */

/** sqlite.open(path [, opts]) -> db | nil, msg, code: opens (creating unless opts.readonly)
 * a database; opts.timeout: seconds to wait for another process's lock (default 5). */
static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int readonly = 0, rc;
  double timeout = 5;
  sq_db *d;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "readonly");
    readonly = lua_toboolean(L, -1);
    lua_getfield(L, 2, "timeout");
    if (!lua_isnil(L, -1)) {
      timeout = lua_tonumber(L, -1);
      luaL_argcheck(L, lua_isnumber(L, -1) && timeout >= 0 && timeout < 1e6, 2,
                    "opts.timeout must be a number of seconds");
    }
    lua_pop(L, 2);
  }
  d = (sq_db *)lua_newuserdatauv(L, sizeof(sq_db), 0);
  memset(d, 0, sizeof(*d));
  d->ref = LUA_NOREF;
  d->E = SL_ENGINE(L);
  luaL_setmetatable(L, SL_SQLITE_DB_MT);
  rc = sqlite3_open_v2(path, &d->db,
                       readonly ? SQLITE_OPEN_READONLY
                                : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK) {
    int n = sq_fail(L, d->db, rc);
    sqlite3_close_v2(d->db);
    d->db = NULL;
    return n;
  }
  sqlite3_extended_result_codes(d->db, 0);
  sqlite3_busy_timeout(d->db, (int)(timeout * 1000));
  return 1;
}

/* Finalizes the cached statements and closes; statements still open keep the connection
 * alive until they are closed (sqlite3_close_v2). */
static void db_close_now(sq_db *d) {
  int i;
  for (i = 0; i < SQ_CACHE; i++) {
    sqlite3_finalize(d->cache[i].st);
    free(d->cache[i].sql);
    d->cache[i].st = NULL;
    d->cache[i].sql = NULL;
  }
  sqlite3_close_v2(d->db);
  d->db = NULL;
}

/** db:close(): closes the connection (idempotent); during a batch, once it has ended. */
static int db_close(lua_State *L) {
  sq_db *d = (sq_db *)luaL_checkudata(L, 1, SL_SQLITE_DB_MT);
  if (d->db == NULL)
    return 0;
  if (d->work != NULL)
    d->close_after = 1;
  else
    db_close_now(d);
  return 0;
}

/** db:exec(sql, ...) -> true | nil, msg, code: without values, runs every statement of sql;
 * with values, sql is one statement, bound to them and run to its end. */
static int db_exec(lua_State *L) {
  sq_db *d = check_idle(L, 1);
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
      int n2 = sq_fail(L, d->db, rc);
      sqlite3_finalize(st);
      return n2;
    }
    sqlite3_finalize(st);
  }
  if (rc != SQLITE_OK)
    return sq_fail(L, d->db, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/** db:prepare(sql) -> stmt | nil, msg, code: compiles one statement. */
static int db_prepare(lua_State *L) {
  sq_db *d = check_idle(L, 1);
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
    return sq_fail(L, d->db, rc);
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
    return luaL_error(L, "sqlite: %s: %s", sq_code_name(rc), sqlite3_errmsg(s->d->db));
  return 0;
}

/** db:rows(sql, ...) -> iterator: each row of the statement (bound to the values) as a
 * table, column name -> value; raises on an error. */
static int db_rows(lua_State *L) {
  sq_stmt *s;
  int top = lua_gettop(L);
  check_idle(L, 1);
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

/** db:changes() -> integer: rows changed by the last statement. */
static int db_changes(lua_State *L) {
  sq_db *d = check_idle(L, 1);
  lua_pushinteger(L, (lua_Integer)sqlite3_changes64(d->db));
  return 1;
}

/** db:last_insert_rowid() -> integer */
static int db_last_insert_rowid(lua_State *L) {
  sq_db *d = check_idle(L, 1);
  lua_pushinteger(L, (lua_Integer)sqlite3_last_insert_rowid(d->db));
  return 1;
}

/** db:filename() -> string: the database file's absolute path ("" for a temporary one). */
static int db_filename(lua_State *L) {
  sq_db *d = check_db(L, 1);
  const char *name = sqlite3_db_filename(d->db, "main");
  lua_pushstring(L, name != NULL ? name : "");
  return 1;
}

static int db_gc(lua_State *L) {
  sq_db *d = (sq_db *)luaL_checkudata(L, 1, SL_SQLITE_DB_MT);
  if (d->db != NULL && d->work == NULL)   /* (anchored while busy: never collected then) */
    db_close_now(d);
  return 0;
}

static int db_tostring(lua_State *L) {
  sq_db *d = (sq_db *)luaL_checkudata(L, 1, SL_SQLITE_DB_MT);
  const char *name = d->db != NULL ? sqlite3_db_filename(d->db, "main") : NULL;
  lua_pushfstring(L, "sluice.sqlite.db (%s)", d->db == NULL ? "closed" : name ? name : "");
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
  return sq_fail(L, s->d->db, rc != SQLITE_OK ? rc : SQLITE_ERROR);
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

/* ------------------------------------------------------------ db:batch */

static void batch_free(sq_batch *b) {
  size_t i;
  for (i = 0; i < b->nown; i++)
    sqlite3_finalize(b->own[i]);
  free(b->own);
  free(b->ops);
  free(b->vals);
  free(b->bytes);
  free(b->errmsg);
  free(b);
}

/* Makes room for `need` elements of `size` bytes in p (allocating at least once, so a
 * non-NULL result always means success); returns the block, or NULL when out of memory
 * (p is then left as it was). */
static void *grow(void *p, size_t *cap, size_t need, size_t size) {
  size_t ncap = *cap ? *cap : 16;
  void *np;
  if (p != NULL && need <= *cap)
    return p;
  while (ncap < need)
    ncap *= 2;
  np = realloc(p, ncap * size);
  if (np != NULL)
    *cap = ncap;
  return np;
}

/* A statement for sql: from the connection's cache, prepared into it if needed, or, when
 * every cached statement is used by this batch already, one the batch owns. NULL with *rc
 * set when sql does not compile. */
static sqlite3_stmt *batch_stmt(sq_batch *b, const char *sql, size_t len, int *rc) {
  sq_db *d = b->d;
  int i, slot = -1;
  sqlite3_stmt *st = NULL;
  for (i = 0; i < SQ_CACHE; i++) {
    if (d->cache[i].sql != NULL && strlen(d->cache[i].sql) == len &&
        memcmp(d->cache[i].sql, sql, len) == 0) {
      d->cache[i].mark = d->serial;
      return d->cache[i].st;
    }
  }
  *rc = sqlite3_prepare_v2(d->db, sql, (int)len, &st, NULL);
  if (*rc != SQLITE_OK || st == NULL) {
    if (*rc == SQLITE_OK)
      *rc = SQLITE_MISUSE;   /* (no statement in the text) */
    return NULL;
  }
  for (i = 0; i < SQ_CACHE && slot < 0; i++) {   /* the oldest not used by this batch */
    int j = (d->cache_next + i) % SQ_CACHE;
    if (d->cache[j].st == NULL || d->cache[j].mark != d->serial)
      slot = j;
  }
  if (slot < 0) {
    sqlite3_stmt **own = (sqlite3_stmt **)grow(b->own, &b->capown, b->nown + 1,
                                               sizeof(sqlite3_stmt *));
    if (own == NULL) {
      sqlite3_finalize(st);
      *rc = SQLITE_NOMEM;
      return NULL;
    }
    b->own = own;
    b->own[b->nown++] = st;
    return st;
  }
  d->cache_next = (slot + 1) % SQ_CACHE;
  sqlite3_finalize(d->cache[slot].st);
  free(d->cache[slot].sql);
  d->cache[slot].st = NULL;
  d->cache[slot].sql = (char *)malloc(len + 1);
  if (d->cache[slot].sql == NULL) {
    sqlite3_finalize(st);
    *rc = SQLITE_NOMEM;
    return NULL;
  }
  memcpy(d->cache[slot].sql, sql, len);
  d->cache[slot].sql[len] = '\0';
  d->cache[slot].st = st;
  d->cache[slot].mark = d->serial;
  return st;
}

/* Copies one statement {sql, v1, ..., vn} of the list (at the top of the stack) into b.
 * Returns 0; -1 with the reason pushed (a misuse); or the SQLite code when sql does not
 * compile. */
static int batch_add(lua_State *L, sq_batch *b, lua_Integer k) {
  size_t len, i;
  const char *sql;
  int rc = SQLITE_OK, n;
  sq_op *op, *ops;
  sq_val *vals;
  sqlite3_stmt *st;
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pushfstring(L, "statement %I is not a table ({sql, values...})", k);
    return -1;
  }
  if (lua_geti(L, -1, 1) != LUA_TSTRING) {
    lua_pushfstring(L, "statement %I has no SQL text at [1]", k);
    return -1;
  }
  sql = lua_tolstring(L, -1, &len);
  st = batch_stmt(b, sql, len, &rc);
  lua_pop(L, 1);
  if (st == NULL)   /* (SQL that does not compile is a failure, not a misuse: fail triple) */
    return rc;
  n = sqlite3_bind_parameter_count(st);
  if ((ops = (sq_op *)grow(b->ops, &b->capops, b->nops + 1, sizeof(sq_op))) != NULL)
    b->ops = ops;
  if (ops == NULL ||
      (vals = (sq_val *)grow(b->vals, &b->capvals, b->nvals + (size_t)n, sizeof(sq_val))) == NULL) {
    lua_pushliteral(L, "out of memory");
    return -1;
  }
  b->vals = vals;
  op = &b->ops[b->nops++];
  op->st = st;
  op->nvals = n;
  op->first = b->nvals;
  for (i = 0; i < (size_t)n; i++) {
    sq_val *v = &b->vals[b->nvals++];
    int t = lua_geti(L, -1, (lua_Integer)i + 2);
    v->len = 0;
    if (t == LUA_TNIL) {
      v->type = SQLITE_NULL;
    } else if (t == LUA_TBOOLEAN) {
      v->type = SQLITE_INTEGER;
      v->u.i = lua_toboolean(L, -1);
    } else if (t == LUA_TNUMBER && lua_isinteger(L, -1)) {
      v->type = SQLITE_INTEGER;
      v->u.i = (sqlite3_int64)lua_tointeger(L, -1);
    } else if (t == LUA_TNUMBER) {
      v->type = SQLITE_FLOAT;
      v->u.d = lua_tonumber(L, -1);
    } else if (t == LUA_TSTRING) {
      const char *s = lua_tolstring(L, -1, &v->len);
      v->type = SQLITE_TEXT;
      char *bytes = (char *)grow(b->bytes, &b->capbytes, b->nbytes + v->len + 1, 1);
      if (bytes == NULL) {
        lua_pushliteral(L, "out of memory");
        return -1;
      }
      b->bytes = bytes;
      memcpy(b->bytes + b->nbytes, s, v->len);
      v->u.off = b->nbytes;
      b->nbytes += v->len;
    } else {
      lua_pushfstring(L, "statement %I, value %d: nil, boolean, number or string expected, "
                      "got %s", k, (int)i + 1, luaL_typename(L, -1));
      return -1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* Runs on a thread of the pool: BEGIN, every statement, COMMIT; ROLLBACK on a failure. The
 * connection is this thread's alone until batch_after_cb (d->work is set). */
static void batch_work_cb(uv_work_t *req) {
  sq_batch *b = (sq_batch *)req->data;
  sqlite3 *db = b->d->db;
  size_t i;
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  for (i = 0; rc == SQLITE_OK && i < b->nops; i++) {
    sq_op *op = &b->ops[i];
    int j;
    sqlite3_reset(op->st);
    for (j = 0; rc == SQLITE_OK && j < op->nvals; j++) {
      sq_val *v = &b->vals[op->first + (size_t)j];
      switch (v->type) {
      case SQLITE_INTEGER: rc = sqlite3_bind_int64(op->st, j + 1, v->u.i); break;
      case SQLITE_FLOAT: rc = sqlite3_bind_double(op->st, j + 1, v->u.d); break;
      case SQLITE_TEXT:
        rc = sqlite3_bind_text64(op->st, j + 1, b->bytes + v->u.off, v->len, SQLITE_STATIC,
                                 SQLITE_UTF8);
        break;
      default: rc = sqlite3_bind_null(op->st, j + 1); break;
      }
    }
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(op->st)) == SQLITE_ROW) {}
      if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    }
    sqlite3_reset(op->st);
    sqlite3_clear_bindings(op->st);   /* (the arena goes when the batch does) */
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    const char *msg = sqlite3_errmsg(db);
    b->errmsg = (char *)malloc(strlen(msg) + 1);
    if (b->errmsg != NULL)
      strcpy(b->errmsg, msg);
    if (!sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  }
  b->rc = rc;
}

/* Back on the loop: the connection is Lua's again; wakes the task if it still waits. */
static void batch_after_cb(uv_work_t *req, int status) {
  sq_batch *b = (sq_batch *)req->data;
  sq_db *d = b->d;
  lua_State *L = d->E->L;
  (void)status;   /* (never cancelled: uv_cancel is not used) */
  b->done = 1;
  d->work = NULL;
  if (d->close_after)
    db_close_now(d);
  luaL_unref(L, LUA_REGISTRYINDEX, d->ref);
  d->ref = LUA_NOREF;
  if (b->waiter != NULL)
    sl_task_wake(b->waiter, SL_WAKE_OK);
}

/* The batch cannot be stopped halfway, and the connection is the thread's until it ends: a
 * cancellation meanwhile is delivered at the task's next wait, after db:batch has returned
 * the outcome (sl_task_wait_work). */
static int batch_k(lua_State *L, int status, lua_KContext ctx) {
  sq_batch *b = (sq_batch *)ctx;
  (void)status;
  if (!sl_task_work_done(L, b->done))
    return sl_task_wait_work(L, sl_task_current(L), batch_k, ctx);
  if (b->rc != SQLITE_OK) {
    int rc = b->rc;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", sq_code_name(rc), b->errmsg ? b->errmsg : sqlite3_errstr(rc));
    lua_pushstring(L, sq_code_name(rc));
    batch_free(b);
    return 3;
  }
  batch_free(b);
  lua_pushboolean(L, 1);
  return 1;
}

/** db:batch(list) -> true | nil, msg, code *waits*: runs the statements of list, each
 * {sql, v1, ..., vn} (n: the statement's parameters), in one transaction on libuv's thread
 * pool; rolled back as a whole if one fails. */
static int db_batch(lua_State *L) {
  sq_db *d = check_idle(L, 1);
  sl_task *me = sl_task_require(L, "db:batch");
  sq_batch *b;
  lua_Integer k, n;
  int rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  b = (sq_batch *)calloc(1, sizeof(sq_batch));
  if (b == NULL)
    return luaL_error(L, "sqlite: out of memory");
  b->d = d;
  d->serial++;
  n = luaL_len(L, 2);
  for (k = 1; k <= n; k++) {
    lua_geti(L, 2, k);
    rc = batch_add(L, b, k);
    if (rc > 0) {
      batch_free(b);
      return sq_fail(L, d->db, rc);
    }
    if (rc != 0) {
      lua_pushfstring(L, "bad argument #1 to 'batch' (%s)", lua_tostring(L, -1));
      batch_free(b);
      return lua_error(L);
    }
    lua_settop(L, 2);
  }
  b->req.data = b;
  rc = uv_queue_work(d->E->loop, &b->req, batch_work_cb, batch_after_cb);
  if (rc < 0) {
    batch_free(b);
    return sl_fail_uv(L, rc);
  }
  d->work = b;
  b->waiter = me;
  lua_pushvalue(L, 1);
  d->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return sl_task_wait_work(L, me, batch_k, (lua_KContext)b);
}

/* ------------------------------------------------------------ registration */

int luaopen_sluice_sqlite(lua_State *L) {
  static const luaL_Reg db_methods[] = {
    {"exec", db_exec},
    {"prepare", db_prepare},
    {"rows", db_rows},
    {"batch", db_batch},
    {"changes", db_changes},
    {"last_insert_rowid", db_last_insert_rowid},
    {"filename", db_filename},
    {"close", db_close},
    {NULL, NULL}
  };
  static const luaL_Reg db_meta[] = {
    {"__close", db_close},
    {"__gc", db_gc},
    {"__tostring", db_tostring},
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
    {"open", l_open},
    {NULL, NULL}
  };
  sl_newmeta(L, SL_SQLITE_DB_MT, db_methods, db_meta);
  sl_newmeta(L, SL_SQLITE_STMT_MT, stmt_methods, stmt_meta);
  luaL_newlib(L, funcs);
  lua_pushstring(L, sqlite3_libversion());
  lua_setfield(L, -2, "version");
  return 1;
}
