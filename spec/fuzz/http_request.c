/* http_request.c (fuzz harness): the HTTP server's request path without a peer. The bytes
 * a client sends go, read by read, through the server's own reading functions:
 * sl_stream_in_buf (where the stream's reads go) and sl_server_conn_input (the stream's read
 * callback's body: back-pressure, then sl_server_conn_parse with the callbacks of
 * http_server_parse.c, and the connection acting on its verdict); each
 * complete request is answered at once, as a worker would, by sl_server_conn_next, which
 * parses the next pipelined one or ends the connection.
 *
 * Input: one flags byte (FLAG_*), then what the client sends before it closes.
 *
 * Invariants, beyond "no sanitizer report":
 * - the bytes read at once, in random reads and a byte at a time give the same requests
 *   (method, target, version, headers, trailers, body, keep-alive) in the same order, and
 *   end the same way: the end of the stream, or an error response of the same status (but
 *   for limits: a limit may be reached before or after a syntax error shows);
 * - every request handed to a worker consumed input: none is dispatched twice;
 * - a request keeps the limits: its head within max_header, at most max_headers lines,
 *   its body within max_body, every header inside the head buffer.
 *
 * The connection's stream is initialised on a loop that never runs but is never connected:
 * libuv refuses to write to it (so an error response makes the connection dead and it
 * closes, as when a peer has gone), to shut it down or to read from it, and the close
 * callback (run by one uv_run at the end) frees the connection as the server does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http_server.h"

enum {
  FLAG_SMALL_HEADER = 2,       /* max_header = 200 */
  FLAG_SMALL_BODY = 4          /* max_body = 100 */
};

#define BYTES_MAX 4096         /* inputs up to this size are also read a byte at a time */

static uv_loop_t loop;         /* never run: the parser's callbacks read its clock */
static sl_engine engine;
static hs_server server;

typedef struct outcome {
  sl_buf text;                 /* every request, then how the connection ended */
  int error;                   /* the status of the error response that ended it, or 0 */
} outcome;

static void out_add(outcome *o, const void *s, size_t n) {
  if (n > 0)
    FUZZ_CHECK(sl_buf_add(&o->text, s, n) == 0, "out of memory");
}

static void out_str(outcome *o, const char *s) {
  out_add(o, s, strlen(s));
}

/* The request c holds, checked against the limits and described into o. */
static void take_request(hs_conn *c, outcome *o) {
  char line[160];
  int i;
  FUZZ_CHECK(c->nhdr >= 0 && c->nhdr <= server.max_headers, "%d header lines", c->nhdr);
  FUZZ_CHECK(c->nhead >= 0 && c->nhead <= c->nhdr, "%d headers of %d lines", c->nhead,
             c->nhdr);
  FUZZ_CHECK(c->head.len <= server.max_header, "a head of %zu bytes", c->head.len);
  FUZZ_CHECK(c->body.len <= server.max_body, "a body of %zu bytes", c->body.len);
  FUZZ_CHECK(c->url_len <= c->head.len, "the target passes the head");
  snprintf(line, sizeof line, "%s ", llhttp_method_name((llhttp_method_t)c->parser.method));
  out_str(o, line);
  out_add(o, c->head.p, c->url_len);
  snprintf(line, sizeof line, " HTTP/%d.%d keepalive=%d close=%d\n", c->parser.http_major,
           c->parser.http_minor, c->keepalive, c->close_after);
  out_str(o, line);
  for (i = 0; i < c->nhdr; i++) {
    const hs_header *h = &c->hdr[i];
    FUZZ_CHECK((size_t)h->name_off + h->name_len <= c->head.len &&
               (size_t)h->val_off + h->val_len <= c->head.len, "header %d outside the head",
               i);
    if (i == c->nhead)
      out_str(o, "trailers:\n");
    out_add(o, c->head.p + h->name_off, h->name_len);
    out_str(o, ": ");
    out_add(o, c->head.p + h->val_off, h->val_len);
    out_str(o, "\n");
  }
  snprintf(line, sizeof line, "body %zu: ", c->body.len);
  out_str(o, line);
  out_add(o, c->body.p, c->body.len);
  out_str(o, "\n");
}

/* Bytes of the input consumed so far: those taken in, less those still waiting. */
static uint64_t taken_in;
static uint64_t consumed(hs_conn *c) {
  return taken_in - c->st->in_len;
}

/* Takes the requests that are ready (sl_server_conn_input said so) as a worker would,
 * answering each at once: sl_server_conn_next then parses the next pipelined one or ends the
 * connection.
 * Returns 0 once the connection has ended. */
static int answer(hs_conn *c, int ready, outcome *o) {
  while (ready) {
    uint64_t before = consumed(c);
    int ends;
    FUZZ_CHECK(c->busy, "a request was dispatched to a connection that is not busy");
    take_request(c, o);
    ends = c->close_after || !c->keepalive;
    c->err_status = 0;
    ready = sl_server_conn_next(c);   /* the response is out (as if the peer took it) */
    if (ends) {
      FUZZ_CHECK(!ready && (c->ending || c->closing), "a connection went on after a "
                 "request that closes it");
      out_str(o, "closed after the response\n");
      return 0;
    }
    FUZZ_CHECK(!ready || consumed(c) > before,
               "a request was dispatched without reading a byte (the previous one again)");
  }
  if (c->ending || c->closing) {
    o->error = c->err_status;
    return 0;
  }
  return 1;
}

/* Sends data to a new connection in the reads of split mode, then ends the stream. */
static void run(const uint8_t *data, size_t size, int mode, outcome *o) {
  sl_stream *st = sl_stream_new(&loop);
  hs_conn *c;
  fuzz_split sp;
  size_t off = 0, n;
  int open = 1;
  FUZZ_CHECK(st != NULL, "out of memory");
  c = sl_server_conn_new(&server, st);
  FUZZ_CHECK(c != NULL, "out of memory");
  memset(o, 0, sizeof *o);
  taken_in = 0;
  fuzz_split_init(&sp, mode, data, size);
  while (open && (n = fuzz_split_next(&sp)) > 0) {
    while (open && n > 0) {    /* a read takes at most the room sl_stream_in_buf offers */
      uv_buf_t b;
      size_t take;
      sl_stream_in_buf(c->st, &b);
      FUZZ_CHECK(b.base != NULL && b.len > 0, "out of memory");
      take = n < b.len ? n : b.len;
      memcpy(b.base, data + off, take);
      off += take;
      n -= take;
      sl_stream_input(c->st, take);
      taken_in += take;
      open = answer(c, sl_server_conn_input(c), o);
    }
  }
  if (open) {
    char line[48];
    snprintf(line, sizeof line, "end of stream%s\n", c->in_message ? " in a request" : "");
    out_str(o, line);
  }
  sl_server_conn_close(c);
  uv_run(&loop, UV_RUN_NOWAIT);  /* the close callback frees c */
  FUZZ_CHECK(sl_queue_empty(&server.conns) && server.nconns == 0,
             "the connection was not freed");
}

static void server_no_op(hs_server *s) {
  (void)s;
}

static void server_unref(hs_server *s) {
  s->refs--;
}

/* The statuses of refusals for a limit: the body, the target, the headers. */
static int is_limit(int status) {
  return status == 413 || status == 414 || status == 431;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int modes[] = {FUZZ_WHOLE, FUZZ_RANDOM, FUZZ_BYTES};
  static const char *const names[] = {"at once", "in random reads", "a byte at a time"};
  outcome out[3];
  int flags, m, nmodes;
  if (size < 1)
    return 0;
  if (engine.loop == NULL) {
    FUZZ_CHECK(uv_loop_init(&loop) == 0, "no loop");
    engine.loop = &loop;
    server.E = &engine;
    server.refs = 1;           /* static: never freed */
    server.conn_closed = server_no_op;
    server.unref = server_unref;
    sl_queue_init(&server.conns);
    server.max_headers = 100;
  }
  flags = data[0];
  data++;
  size--;
  server.max_header = flags & FLAG_SMALL_HEADER ? 200 : 8192;
  server.max_body = flags & FLAG_SMALL_BODY ? 100 : 1024 * 1024;
  nmodes = size <= BYTES_MAX ? 3 : 2;
  for (m = 0; m < nmodes; m++)
    run(data, size, modes[m], &out[m]);
  for (m = 1; m < nmodes; m++) {
    if (out[0].text.len != out[m].text.len ||
        (out[0].text.len > 0 && memcmp(out[0].text.p, out[m].text.p, out[0].text.len) != 0)) {
      fuzz_show("at once", out[0].text.p, out[0].text.len);
      fuzz_show(names[m], out[m].text.p, out[m].text.len);
      FUZZ_CHECK(0, "the requests read at once and %s differ", names[m]);
    }
    /* A limit may be reached before or after a syntax error shows, depending on the reads
     * (a long target cut by a read is 414 before its bad byte is seen): 400 or a limit. */
    FUZZ_CHECK(out[0].error == out[m].error ||
               (out[0].error != 0 && out[m].error != 0 &&
                (is_limit(out[0].error) || is_limit(out[m].error))),
               "read at once, the connection ended with %d; %s, with %d", out[0].error,
               names[m], out[m].error);
  }
  for (m = 0; m < nmodes; m++)
    sl_buf_free(&out[m].text);
  return 0;
}
