/* http_response.c (fuzz harness): the HTTP client's response path without a socket. The
 * bytes a server sends go through the client's own llhttp settings (hc_parser_init and
 * the callbacks of http_client_parse.c), read by read as http_client_conn.c does, then
 * into the response (hc_push_response: headers joined, body decoded by hc_inflate*), or
 * piece by piece through a sink's decoder as http_client.c does.
 *
 * Input: one flags byte (FLAG_*), then what the server sends before it closes.
 *
 * Invariants, beyond "no sanitizer report":
 * - the bytes read at once, in random reads and a byte at a time give the same outcome:
 *   the same status, reason, headers and body, or a failure (of the same name, but for
 *   limits: a limit may be found before or after a syntax error, depending on the reads);
 * - a sink receives, piece by piece, exactly the body a plain request returns, and fails
 *   when it fails (not always with the same name: it sees a bad body sooner);
 * - a response that succeeds kept its limits: header bytes within max_header, the body
 *   within max_body.
 *
 * The read loop below mirrors conn_input, conn_end, req_complete and alloc_cb of
 * http_client_conn.c and next_piece of http_client.c, which are static there: keep it in
 * step with them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "fuzz.h"

enum {
  FLAG_HEAD = 1,               /* the request was a HEAD */
  FLAG_SMALL_HEADER = 2,       /* max_header = 256 */
  FLAG_SMALL_BODY = 4,         /* max_body = 300 */
  FLAG_RAW = 8                 /* decompress = false */
};

#define SINK_PIECE (64 * 1024) /* as in http_client.c */
#define BYTES_MAX 4096         /* inputs up to this size are also read a byte at a time */

static lua_State *L;           /* made once; index 1 holds the URL hc_push_response wants */

/* How one run of the response ended. */
typedef struct outcome {
  hc_buf text;                 /* "status, reason, headers, body", or "fail NAME" */
  const char *fail;            /* the failure's name, or NULL */
} outcome;

/* Appends s[0..n) to the outcome's text. */
static void out_add(outcome *o, const char *s, size_t n) {
  if (n > 0)
    FUZZ_CHECK(hc_buf_add(&o->text, s, n) == 0, "out of memory");
}

/* ------------------------------------------------------------ the sink */

/* One piece for the sink, as next_piece does it: the raw bytes read (identity), or up to
 * SINK_PIECE bytes of them decoded. Appends the piece to sunk; returns its length, or 0
 * when there was nothing more to give (r->err_name set when decoding failed). */
static size_t sink_piece(hc_req *r, hc_buf *sunk) {
  z_stream *z;
  long got;
  if (r->encoding == 0) {
    size_t n = r->rbody.len;
    FUZZ_CHECK(hc_buf_add(sunk, r->rbody.p, n) == 0, "out of memory");
    r->rbody.len = 0;
    return n;
  }
  if (r->z == NULL)
    FUZZ_CHECK(hc_inflate_init(r, (const unsigned char *)r->rbody.p, r->rbody.len) == 0,
               "out of memory");
  if (r->zout == NULL)
    FUZZ_CHECK((r->zout = (char *)malloc(SINK_PIECE)) != NULL, "out of memory");
  z = (z_stream *)r->z;
  if (!r->zbatch) {
    z->next_in = (Bytef *)r->rbody.p;
    z->avail_in = (uInt)r->rbody.len;
    r->zbatch = 1;
  }
  got = hc_inflate(r, r->zout, SINK_PIECE);
  if (got < 0)
    return 0;
  r->zdecoded += (size_t)got;
  if (r->zdecoded > r->lim.max_body) {
    r->err_name = "EFBIG";
    return 0;
  }
  if (got < SINK_PIECE) {
    r->zbatch = 0;
    r->rbody.len = 0;
  }
  if (got > 0)
    FUZZ_CHECK(hc_buf_add(sunk, r->zout, (size_t)got) == 0, "out of memory");
  return (size_t)got;
}

/* The sink is called while body bytes wait for it (req_step's first branch). */
static void sink_drain(hc_req *r, hc_buf *sunk) {
  int guard = 0;
  while ((r->rbody.len > 0 || (r->z != NULL && r->zbatch)) && r->err_name == NULL) {
    sink_piece(r, sunk);
    FUZZ_CHECK(++guard < 1000000, "the sink is called forever");
  }
}

/* ------------------------------------------------------------ reading */

enum { READING, ENDED };

/* The response is complete (req_complete): the body's only span, if any, becomes the body
 * string (plain requests with identity encoding) or joins rbody. Pushes the body string or
 * nothing; returns 1 or 0. */
static int complete(hc_req *r) {
  int pushed = 0;
  r->done = 1;
  if (r->span != NULL) {
    if (r->encoding == 0 && !r->sink) {
      lua_pushlstring(L, r->span, r->span_len);
      pushed = 1;
    } else {
      FUZZ_CHECK(hc_buf_add(&r->rbody, r->span, r->span_len) == 0, "out of memory");
    }
    r->span = NULL;
    r->span_len = 0;
  }
  return pushed;
}

/* One read of n bytes at data (conn_input). Sets *pushed when the body was pushed. */
static int feed(hc_conn *k, hc_req *r, const char *data, size_t n, hc_buf *sunk,
                int *pushed) {
  llhttp_errno_t err;
  r->got_byte = 1;
  err = llhttp_execute(&k->parser, data, n);
  if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && r->complete) {
    *pushed = complete(r);
    return ENDED;
  }
  if (err != HPE_OK) {
    if (r->err_name == NULL)
      r->err_name = "EPROTO";
    r->span = NULL;            /* the read buffer is gone; hc_req_fail drops it too */
    return ENDED;
  }
  if (r->span != NULL) {
    FUZZ_CHECK(hc_buf_add(&r->rbody, r->span, r->span_len) == 0, "out of memory");
    r->span = NULL;
    r->span_len = 0;
  }
  if (r->sink && r->rbody.len > 0) {
    sink_drain(r, sunk);
    if (r->err_name != NULL)
      return ENDED;
  }
  return READING;
}

/* Reads the whole input as the reads of split mode, then the server's end of stream.
 * Returns the request, ended; *pushed tells whether the body string was pushed. */
static hc_req *read_response(const uint8_t *data, size_t size, int flags, int sink,
                             int mode, hc_conn *k, hc_buf *sunk, int *pushed) {
  hc_req *r = hc_req_alloc();
  fuzz_split sp;
  size_t off = 0, n;
  int state = READING;
  FUZZ_CHECK(r != NULL, "out of memory");
  memset(k, 0, sizeof *k);
  hc_parser_init(&k->parser);
  k->parser.data = k;
  k->req = r;
  snprintf(r->host, sizeof r->host, "fuzz.example");
  r->port = 80;
  r->lim.max_header = flags & FLAG_SMALL_HEADER ? 256 : 64 * 1024;
  r->lim.max_body = flags & FLAG_SMALL_BODY ? 300 : sink ? SIZE_MAX : 1u << 30;
  r->lim.decompress = !(flags & FLAG_RAW);
  r->is_head = (flags & FLAG_HEAD) != 0;
  r->sink = (uint8_t)sink;
  r->body_sent = 1;
  *pushed = 0;
  fuzz_split_init(&sp, mode, data, size);
  while (state == READING && (n = fuzz_split_next(&sp)) > 0) {
    while (state == READING && n > 0) {
      size_t take = n;
      char *buf;
      if (r->direct && r->rbody.len < r->rbody.cap) {
        /* alloc_cb: a body of known size is read straight into its buffer */
        if (take > r->rbody.cap - r->rbody.len)
          take = r->rbody.cap - r->rbody.len;
        buf = r->rbody.p + r->rbody.len;
        memcpy(buf, data + off, take);
        state = feed(k, r, buf, take, sunk, pushed);
      } else {
        /* a buffer of exactly this read, freed after it: a span kept past its read is a
         * use after free */
        FUZZ_CHECK((buf = (char *)malloc(take)) != NULL, "out of memory");
        memcpy(buf, data + off, take);
        state = feed(k, r, buf, take, sunk, pushed);
        free(buf);
      }
      off += take;
      n -= take;
    }
  }
  if (state == READING) {      /* conn_end: the server closed the connection */
    llhttp_finish(&k->parser);
    if (r->complete)
      *pushed = complete(r);
    else if (r->err_name == NULL)
      r->err_name = "ECONNRESET";
  }
  if (r->sink && r->err_name == NULL)
    sink_drain(r, sunk);       /* req_step: what is left goes to the sink, then the end */
  return r;
}

/* ------------------------------------------------------------ outcomes */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Describes the response table at idx into o: status, reason, headers sorted by name. */
static void describe(outcome *o, int idx, const hc_buf *sunk) {
  const char **names = NULL;
  size_t nnames = 0, cap = 0, i, len;
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
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    FUZZ_CHECK(lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING,
               "a header that is not a string");
    if (nnames == cap) {
      cap = cap ? 2 * cap : 16;
      FUZZ_CHECK((names = (const char **)realloc(names, cap * sizeof *names)) != NULL,
                 "out of memory");
    }
    names[nnames++] = lua_tostring(L, -2);   /* anchored in the headers table */
    lua_pop(L, 1);
  }
  if (nnames > 1)
    qsort(names, nnames, sizeof names[0], cmp_str);
  for (i = 0; i < nnames; i++) {
    lua_getfield(L, -1, names[i]);
    s = lua_tolstring(L, -1, &len);
    out_add(o, names[i], strlen(names[i]));
    out_add(o, ": ", 2);
    out_add(o, s, len);
    out_add(o, "\n", 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  free(names);
  out_add(o, "\n", 1);
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
  hc_buf sunk = {NULL, 0, 0};
  int pushed, top = lua_gettop(L), n;
  hc_req *r = read_response(data, size, flags, sink, mode, &k, &sunk, &pushed);
  memset(o, 0, sizeof *o);
  if (r->err_name != NULL) {
    o->fail = r->err_name;
  } else {
    FUZZ_CHECK(r->header_bytes <= r->lim.max_header, "%zu header bytes passed max_header",
               r->header_bytes);
    n = hc_push_response(L, r, 1, pushed ? top + 1 : 0);
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
  hc_buf_free(&sunk);
  hc_req_free(r);
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
    hc_parse_module_init();
    hc_req_register(L);
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
    hc_buf_free(&plain[m].text);
    hc_buf_free(&sunk[m].text);
  }
  return 0;
}
