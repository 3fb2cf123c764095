/* http_response.c (fuzz harness): the HTTP client's response path without a socket. The
 * bytes a server sends go, read by read, through the client's own reading functions:
 * sl_client_conn_input (conn_on_read's half that needs no socket: sl_client_parse with the
 * callbacks of http_client_parse.c, the body's span kept or taken), sl_client_conn_finish at
 * the server's end of stream and sl_client_req_take_span when the response completes, as
 * req_complete does; then into the response table (sl_client_push_response: headers,
 * trailers, body decoded by sl_client_inflate*: gzip, deflate, br, zstd), or piece by
 * piece through sl_client_sink_pending and sl_client_sink_piece, as the request's task
 * feeds a sink.
 *
 * Input: one flags byte (FLAG_*), then what the server sends before it closes.
 *
 * Invariants, beyond "no sanitizer report":
 * - the bytes read at once, in random reads and a byte at a time give the same outcome:
 *   the same status, reason, headers, trailers and body, or a failure (of the same name,
 *   but for limits: a limit may be found before or after a syntax error, depending on the
 *   reads);
 * - a sink receives, piece by piece, exactly the body a plain request returns, and fails
 *   when it fails (not always with the same name: it sees a bad body sooner);
 * - a response that succeeds kept its limits: header bytes within max_header, the body
 *   (plain or sunk in all) within max_body.
 *
 * Only the read buffers are the harness's own: like sl_client_conn_lend, a body of known size is
 * read straight into its buffer; any other read gets a buffer of exactly its size, freed
 * right after it, so a span kept past its read shows as a use after free. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "fuzz.h"
#include "http_client.h"

enum {
  FLAG_HEAD = 1,               /* the request was a HEAD */
  FLAG_SMALL_HEADER = 2,       /* max_header = 256 */
  FLAG_SMALL_BODY = 4,         /* max_body = 300 */
  FLAG_RAW = 8                 /* decompress = false */
};

#define BYTES_MAX 4096         /* inputs up to this size are also read a byte at a time */

/* Made once; index 1 holds the URL sl_client_push_response wants. */
static lua_State *L;

/* How one run of the response ended. */
typedef struct outcome {
  sl_buf text;                 /* "status, reason, headers, body", or "fail NAME" */
  const char *fail;            /* the failure's name, or NULL */
} outcome;

/* Appends s[0..n) to the outcome's text. */
static void out_add(outcome *o, const char *s, size_t n) {
  if (n > 0)
    FUZZ_CHECK(sl_buf_add(&o->text, s, n) == 0, "out of memory");
}

/* ------------------------------------------------------------ the sink */

/* The sink is called while body bytes wait for it, as the request's task does it
 * (req_step's first branch); each piece is appended to sunk. */
static void sink_drain(hc_req *r, sl_buf *sunk) {
  int guard = 0;
  while (r->err_name == NULL && sl_client_sink_pending(r)) {
    const char *piece;
    long n = sl_client_sink_piece(r, &piece);
    if (n > 0)
      FUZZ_CHECK(sl_buf_add(sunk, piece, (size_t)n) == 0, "out of memory");
    FUZZ_CHECK(++guard < 1000000, "the sink is called forever");
  }
}

/* ------------------------------------------------------------ reading */

/* The response ended (DONE or DONE_EXTRA), as req_complete takes it: the body's span
 * becomes the body string (plain requests with identity encoding) or joins rbody. */
static void complete(hc_req *r, int *pushed) {
  int took;
  r->done = 1;
  took = sl_client_req_take_span(r, L);
  FUZZ_CHECK(took >= 0, "out of memory");
  *pushed = took == 1;
}

/* Reads the whole input as the reads of split mode, then the server's end of stream.
 * Returns the request, ended; *pushed tells whether the body string was pushed. */
static hc_req *read_response(const uint8_t *data, size_t size, int flags, int sink,
                             int mode, hc_conn *k, sl_buf *sunk, int *pushed) {
  hc_req *r = sl_client_req_alloc();
  fuzz_split sp;
  size_t off = 0, n;
  int st = HC_IN_MORE;
  FUZZ_CHECK(r != NULL, "out of memory");
  memset(k, 0, sizeof *k);
  sl_client_parser_init(&k->parser);
  k->parser.data = k;
  k->req = r;
  snprintf(r->host, sizeof r->host, "fuzz.example");
  r->port = 80;
  r->lim.max_header = flags & FLAG_SMALL_HEADER ? 256 : 64 * 1024;
  r->lim.max_headers = 1000;
  /* One limit for both: a few bytes of br or zstd decode to gigabytes (gzip's 16 KiB to
   * 16 MiB at most), and a bomb must fail alike, plain or sunk, within libFuzzer's RSS. */
  r->lim.max_body = flags & FLAG_SMALL_BODY ? 300 : 64u << 20;
  r->lim.decompress = !(flags & FLAG_RAW);
  r->is_head = (flags & FLAG_HEAD) != 0;
  r->sink = (uint8_t)sink;
  r->body_sent = 1;
  *pushed = 0;
  fuzz_split_init(&sp, mode, data, size);
  while ((st == HC_IN_MORE || st == HC_IN_SINK) && (n = fuzz_split_next(&sp)) > 0) {
    while ((st == HC_IN_MORE || st == HC_IN_SINK) && n > 0) {
      size_t take = n;
      char *buf;
      int own = 0;
      if (r->direct && r->rbody.len < r->rbody.cap) {
        if (take > r->rbody.cap - r->rbody.len)
          take = r->rbody.cap - r->rbody.len;
        buf = r->rbody.p + r->rbody.len;
      } else {
        FUZZ_CHECK((buf = (char *)malloc(take)) != NULL, "out of memory");
        own = 1;
      }
      memcpy(buf, data + off, take);
      st = sl_client_conn_input(k, r, buf, take);
      if (st == HC_IN_DONE || st == HC_IN_DONE_EXTRA)
        complete(r, pushed);   /* before the read buffer goes */
      if (own)
        free(buf);
      if (st == HC_IN_SINK) {
        sink_drain(r, sunk);
        if (r->err_name != NULL)
          st = HC_IN_FAIL;
      }
      off += take;
      n -= take;
    }
  }
  if (st == HC_IN_MORE || st == HC_IN_SINK) {      /* the server closed the connection */
    st = sl_client_conn_finish(k, r);
    if (st == HC_IN_DONE_EXTRA)
      complete(r, pushed);
  }
  FUZZ_CHECK((st == HC_IN_FAIL) == (r->err_name != NULL), "a failure without a name, or "
             "a name without a failure");
  FUZZ_CHECK(r->span == NULL, "a span kept past its read");
  if (r->sink && r->err_name == NULL)
    sink_drain(r, sunk);       /* what is left goes to the sink, then the end */
  return r;
}

/* ------------------------------------------------------------ outcomes */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Describes the headers (or trailers) table at t into o, sorted by name. */
static void describe_table(outcome *o, int t) {
  const char **names = NULL;
  size_t nnames = 0, cap = 0, i, len;
  const char *s;
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    FUZZ_CHECK(lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING,
               "a header that is not a string");
    if (nnames == cap) {
      cap = cap ? 2 * cap : 16;
      FUZZ_CHECK((names = (const char **)realloc(names, cap * sizeof *names)) != NULL,
                 "out of memory");
    }
    names[nnames++] = lua_tostring(L, -2);   /* anchored in the table */
    lua_pop(L, 1);
  }
  if (nnames > 1)
    qsort(names, nnames, sizeof names[0], cmp_str);
  for (i = 0; i < nnames; i++) {
    lua_getfield(L, t, names[i]);
    s = lua_tolstring(L, -1, &len);
    out_add(o, names[i], strlen(names[i]));
    out_add(o, ": ", 2);
    out_add(o, s, len);
    out_add(o, "\n", 1);
    lua_pop(L, 1);
  }
  free(names);
}

/* Describes the response table at idx into o: status, reason, headers, trailers, body. */
static void describe(outcome *o, int idx, const sl_buf *sunk) {
  size_t len;
  const char *s;
  char line[64];
  lua_getfield(L, idx, "status");
  snprintf(line, sizeof line, "status %lld\n", (long long)lua_tointeger(L, -1));
  out_add(o, line, strlen(line));
  lua_getfield(L, idx, "reason");
  s = lua_tolstring(L, -1, &len);
  out_add(o, s, len);
  out_add(o, "\n", 1);
  lua_pop(L, 2);
  lua_getfield(L, idx, "headers");
  describe_table(o, lua_gettop(L));
  lua_pop(L, 1);
  out_add(o, "\n", 1);
  if (lua_getfield(L, idx, "trailers") != LUA_TNIL) {
    FUZZ_CHECK(lua_istable(L, -1), "trailers that are not a table");
    describe_table(o, lua_gettop(L));
    out_add(o, "\n", 1);
  }
  lua_pop(L, 1);
  if (sunk != NULL) {
    out_add(o, sunk->p ? sunk->p : "", sunk->len);
  } else {
    FUZZ_CHECK(lua_getfield(L, idx, "body") == LUA_TSTRING, "no body");
    s = lua_tolstring(L, -1, &len);
    out_add(o, s, len);
    lua_pop(L, 1);
  }
}

/* Runs the client's response path once and records how it ended in o. */
static void run(const uint8_t *data, size_t size, int flags, int sink, int mode,
                outcome *o) {
  hc_conn k;
  sl_buf sunk = {NULL, 0, 0};
  int pushed, top = lua_gettop(L), n;
  hc_req *r = read_response(data, size, flags, sink, mode, &k, &sunk, &pushed);
  memset(o, 0, sizeof *o);
  if (r->err_name != NULL) {
    o->fail = r->err_name;
  } else {
    FUZZ_CHECK(r->header_bytes <= r->lim.max_header, "%zu header bytes passed max_header",
               r->header_bytes);
    n = sl_client_push_response(L, r, 1, pushed ? top + 1 : 0);
    if (n != 1) {
      o->fail = lua_tostring(L, -1);   /* the fail triple: its code is at the top */
      FUZZ_CHECK(o->fail != NULL, "a failure without a name");
      o->fail = strcmp(o->fail, "EPROTO") == 0 ? "EPROTO" : strcmp(o->fail, "EFBIG") == 0 ?
                "EFBIG" : "other";
    } else {
      describe(o, lua_gettop(L), sink ? &sunk : NULL);
      if (!sink)
        FUZZ_CHECK(lua_getfield(L, -1, "body") == LUA_TSTRING &&
                   lua_rawlen(L, -1) <= r->lim.max_body, "a body past max_body");
      FUZZ_CHECK(sunk.len <= r->lim.max_body, "a sunk body past max_body");
    }
  }
  if (o->fail != NULL) {
    out_add(o, "fail ", 5);
    out_add(o, o->fail, strlen(o->fail));
  }
  lua_settop(L, top);
  sl_buf_free(&sunk);
  sl_client_req_free(r);
}

static int is_limit(const char *fail) {
  return strcmp(fail, "EMSGSIZE") == 0 || strcmp(fail, "EFBIG") == 0;
}

/* The same outcome. Failures may differ by name when any_fail is set, or when a limit
 * was found instead of a syntax error. */
static void expect_same(const outcome *a, const outcome *b, int any_fail, const char *what) {
  if (a->fail != NULL && b->fail != NULL &&
      (any_fail || ((is_limit(a->fail) || is_limit(b->fail)) &&
                    (strcmp(a->fail, "EPROTO") == 0 || strcmp(b->fail, "EPROTO") == 0 ||
                     (is_limit(a->fail) && is_limit(b->fail))))))
    return;
  if (a->text.len == b->text.len && memcmp(a->text.p, b->text.p, a->text.len) == 0)
    return;
  fuzz_show("first", a->text.p ? a->text.p : "", a->text.len);
  fuzz_show("second", b->text.p ? b->text.p : "", b->text.len);
  FUZZ_CHECK(0, "%s", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int modes[] = {FUZZ_WHOLE, FUZZ_RANDOM, FUZZ_BYTES};
  static const char *const names[] = {"at once", "in random reads", "a byte at a time"};
  outcome plain[3], sunk[3];
  int flags, m, nmodes;
  if (size < 1)
    return 0;
  if (L == NULL) {
    L = fuzz_lua_state();
    sl_client_parse_module_init();
    sl_client_req_register(L);
    lua_settop(L, 0);
    lua_pushliteral(L, "http://fuzz.example/");
  }
  lua_settop(L, 1);
  flags = data[0];
  data++;
  size--;
  nmodes = size <= BYTES_MAX ? 3 : 2;
  for (m = 0; m < nmodes; m++) {
    run(data, size, flags, 0, modes[m], &plain[m]);
    run(data, size, flags, 1, modes[m], &sunk[m]);
  }
  for (m = 1; m < nmodes; m++) {
    char what[96];
    snprintf(what, sizeof what, "read at once and %s differ", names[m]);
    expect_same(&plain[0], &plain[m], 0, what);
    snprintf(what, sizeof what, "a sink's response read at once and %s differ", names[m]);
    expect_same(&sunk[0], &sunk[m], 0, what);
  }
  /* A sink sees a bad body as it arrives, a plain request once it is all there: both fail,
   * not always with the same name (EPROTO before the end, ECONNRESET at it). */
  if (!(flags & FLAG_SMALL_BODY))
    expect_same(&plain[0], &sunk[0], 1, "the body a sink receives differs from res.body");
  for (m = 0; m < nmodes; m++) {
    sl_buf_free(&plain[m].text);
    sl_buf_free(&sunk[m].text);
  }
  return 0;
}
