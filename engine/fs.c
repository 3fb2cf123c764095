/* fs.c: sl.lines(path), a file read line by line through libuv's thread pool so a 10 GB
 * list of URLs is a job source that never blocks the loop and uses constant memory. */
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <errno.h>
#include <unistd.h>

#include "sluice.h"

#define CHUNK (64 * 1024)

typedef struct lines {
  uv_fs_t req;                 /* one request at a time: open, read or close */
  sl_engine *E;
  uv_file fd;                  /* -1 when not open */
  char *buf;                   /* bytes read and not yet returned as lines */
  size_t start, len, cap;      /* unread data is buf[start .. start+len) */
  int64_t offset;              /* file offset of the next read */
  int busy;                    /* a request is in flight */
  int eof;
  int closed;
  int ref;                     /* anchors the object while a request is in flight */
  sl_task *waiter;             /* task waiting for the request, NULL if it went away */
  ssize_t result;              /* the finished request's result */
  char *path;
} lines;

static lines *check_lines(lua_State *L, int idx) {
  return (lines *)luaL_checkudata(L, idx, SL_LINES_MT);
}

/* Closes the file and frees the buffer; while a request is in flight (the thread pool may
 * be writing into the buffer) it only marks the object, and fs_cb finishes the job. */
static void close_now(lines *f) {
  f->closed = 1;
  if (f->busy)
    return;
  if (f->fd >= 0) {
    uv_fs_t req;
    uv_fs_close(f->E->loop, &req, f->fd, NULL);   /* synchronous: close does not block */
    uv_fs_req_cleanup(&req);
    f->fd = -1;
  }
  free(f->buf);
  f->buf = NULL;
  f->len = f->start = f->cap = 0;
}

/* libuv finished a request: record it, release the anchor, wake the task if still there.
 * If the task was cancelled meanwhile, nobody will read on: close the file here. */
static void fs_cb(uv_fs_t *req) {
  lines *f = (lines *)req->data;
  int was_open = req->fs_type == UV_FS_OPEN;
  f->result = req->result;
  uv_fs_req_cleanup(req);
  f->busy = 0;
  if (f->waiter != NULL) {
    sl_task *t = f->waiter;
    f->waiter = NULL;
    sl_task_wake(t, SL_WAKE_OK);
  } else {
    if (was_open && f->result >= 0)
      f->fd = (uv_file)f->result;
    close_now(f);
  }
  luaL_unref(f->E->L, LUA_REGISTRYINDEX, f->ref);
  f->ref = LUA_NOREF;
}

/* Cancellation while a request is in flight: the request finishes on its own later. */
static void fs_cleanup(sl_task *t, void *data) {
  lines *f = (lines *)data;
  (void)t;
  f->waiter = NULL;
  f->closed = 1;
}

static int lines_step(lua_State *L, lines *f);

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  lines *f = (lines *)lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  if (f->result < 0) {
    int err = (int)f->result;
    close_now(f);
    return luaL_error(L, "sl.lines: cannot read %s: %s", f->path, uv_strerror(err));
  }
  if (f->result == 0)
    f->eof = 1;
  f->len += (size_t)f->result;
  f->offset += f->result;
  return lines_step(L, f);
}

/* Starts a read into the free end of the buffer and waits for it. */
static int start_read(lua_State *L, lines *f) {
  sl_task *me = sl_task_require(L, "sl.lines");
  uv_buf_t b;
  int rc;
  if (f->start > 0) {          /* slide unread bytes to the front */
    memmove(f->buf, f->buf + f->start, f->len);
    f->start = 0;
  }
  if (f->cap - f->len < CHUNK / 2) {   /* a line longer than the buffer: grow */
    size_t ncap = f->cap * 2;
    char *nb = (char *)realloc(f->buf, ncap);
    if (nb == NULL)
      return luaL_error(L, "sl.lines: out of memory for a line of %zu bytes", f->len);
    f->buf = nb;
    f->cap = ncap;
  }
  b = uv_buf_init(f->buf + f->len, (unsigned)(f->cap - f->len));
  f->req.data = f;
  rc = uv_fs_read(f->E->loop, &f->req, f->fd, &b, 1, f->offset, fs_cb);
  if (rc < 0)
    return luaL_error(L, "sl.lines: cannot read %s: %s", f->path, uv_strerror(rc));
  f->busy = 1;
  f->waiter = me;
  lua_pushvalue(L, 1);
  f->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 1);
  return sl_task_wait(L, me, fs_cleanup, f, -1, read_k, 0);
}

/* Returns the next line (without \n or \r\n) if the buffer has one, else reads. */
static int lines_step(lua_State *L, lines *f) {
  char *p, *nl;
  size_t n;
  if (f->closed) {
    close_now(f);
    return 0;
  }
  p = f->buf + f->start;
  nl = (char *)memchr(p, '\n', f->len);
  if (nl == NULL && !f->eof)
    return start_read(L, f);
  if (nl == NULL && f->len == 0) {   /* end of file */
    close_now(f);
    return 0;
  }
  n = nl != NULL ? (size_t)(nl - p) : f->len;
  lua_pushlstring(L, p, n > 0 && p[n - 1] == '\r' ? n - 1 : n);
  n = nl != NULL ? n + 1 : n;
  f->start += n;
  f->len -= n;
  return 1;
}

/* The iterator is a closure over the lines object, so it needs no state argument and can
 * be handed on its own to limited_as_completed as a job source. */
static int lines_iter(lua_State *L) {
  lines *f = check_lines(L, lua_upvalueindex(1));
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  if (f->busy)
    return luaL_error(L, "sl.lines: another task is reading this file");
  return lines_step(L, f);
}

static int open_k(lua_State *L, int status, lua_KContext ctx) {
  lines *f = (lines *)lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  if (f->result < 0) {
    f->closed = 1;
    return luaL_error(L, "sl.lines: cannot open %s: %s", f->path,
                      uv_strerror((int)f->result));
  }
  f->fd = (uv_file)f->result;
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, lines_iter, 1);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 1);
  return 4;
}

/** sl.lines(path) -> iterator, nil, nil, closer: each call returns the next line without
 * its end-of-line (\n or \r\n), nil at the end; raises if the file cannot be opened or read */
static int l_lines(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sl_task *me = sl_task_require(L, "sl.lines");
  lines *f;
  int rc;
  lua_settop(L, 1);
  f = (lines *)lua_newuserdatauv(L, sizeof(lines), 0);
  memset(f, 0, sizeof(*f));
  f->fd = -1;
  f->ref = LUA_NOREF;
  f->closed = 1;
  luaL_setmetatable(L, SL_LINES_MT);
  lua_replace(L, 1);
  f->E = SL_ENGINE(L);
  f->path = strdup(path);
  f->buf = (char *)malloc(CHUNK);
  if (f->path == NULL || f->buf == NULL)
    return luaL_error(L, "sl.lines: out of memory");
  f->cap = CHUNK;
  f->closed = 0;
  f->req.data = f;
  rc = uv_fs_open(f->E->loop, &f->req, path, O_RDONLY, 0, fs_cb);
  if (rc < 0)
    return luaL_error(L, "sl.lines: cannot open %s: %s", path, uv_strerror(rc));
  f->busy = 1;
  f->waiter = me;
  lua_pushvalue(L, 1);
  f->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return sl_task_wait(L, me, fs_cleanup, f, -1, open_k, 0);
}

/** closer:close() / __close / __gc: closes the file (idempotent) */
static int lines_close(lua_State *L) {
  lines *f = check_lines(L, 1);
  close_now(f);
  return 0;
}

static int lines_gc(lua_State *L) {
  lines *f = check_lines(L, 1);
  close_now(f);
  free(f->path);
  f->path = NULL;
  return 0;
}

/* The FILE* of a Lua file handle (io.stderr, io.open's result), raising if it is closed. */
static FILE *check_stream(lua_State *L, int idx) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, idx, LUA_FILEHANDLE);
  if (p->closef == NULL || p->f == NULL) luaL_error(L, "attempt to use a closed file");
  return p->f;
}

/** core._isatty(file) -> boolean: whether a Lua file handle is a terminal (for live
 * status lines, which only make sense on one). */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty(fileno(check_stream(L, 1))));
  return 1;
}

/** core._truncate(file, size) -> true | nil, msg: flushes a Lua file handle and cuts the
 * file to size bytes (the crawler drops records its journal never confirmed). */
static int l_truncate(lua_State *L) {
  FILE *f = check_stream(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  luaL_argcheck(L, size >= 0, 2, "size must be >= 0");
  if (fflush(f) != 0 || ftruncate(fileno(f), (off_t)size) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

void sl_fs_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", lines_close},
    {NULL, NULL}
  };
  static const luaL_Reg metamethods[] = {
    {"__close", lines_close},
    {"__gc", lines_gc},
    {NULL, NULL}
  };
  sl_newmeta(L, SL_LINES_MT, methods, metamethods);
  lua_pushcfunction(L, l_lines);
  lua_setfield(L, -2, "lines");
  lua_pushcfunction(L, l_isatty);
  lua_setfield(L, -2, "_isatty");
  lua_pushcfunction(L, l_truncate);
  lua_setfield(L, -2, "_truncate");
}
