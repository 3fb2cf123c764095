/* sqlite.h: what sqlite_db.c (connections and db:batch on the thread pool) gives sqlite.c
 * (running SQL from Lua, statements, the module): the connection record with its statement
 * cache, the connection's checks and failures, and its methods. */
#ifndef SLUICE_SQLITE_H
#define SLUICE_SQLITE_H

#include <sqlite3.h>

#include "sluice.h"

#define SL_SQLITE_DB_MT   "sluice.sqlite.db"
#define SL_SQLITE_STMT_MT "sluice.sqlite.stmt"

#define SQ_CACHE 8             /* statements db:batch keeps prepared, by SQL text */

typedef struct sl_sqlite_batch sl_sqlite_batch;

typedef struct sl_sqlite_db {
  sqlite3 *db;                 /* NULL once closed */
  sl_engine *E;
  sl_sqlite_batch *work;       /* the batch running on the thread pool, or NULL: while set,
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
} sl_sqlite_db;

/* The name of a primary result code, for the fail triple ("SQLITE_FULL"). */
const char *sl_sqlite_code_name(int rc);
/* Pushes the fail triple for the connection's last error (or rc's, without one). */
int sl_sqlite_fail(lua_State *L, sqlite3 *db, int rc);
/* The connection for a call made on the loop thread: raises when closed or while a batch
 * owns it. */
sl_sqlite_db *sl_sqlite_check_idle(lua_State *L, int idx);
/* sqlite.open (the module's one function), and the connection's methods and metamethods
 * that do not run SQL from Lua (close, batch, changes...; __gc, __close, __tostring). */
int sl_sqlite_open(lua_State *L);
extern const luaL_Reg sl_sqlite_db_methods[], sl_sqlite_db_meta[];

#endif
