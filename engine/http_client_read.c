/* http_client_read.c: the socket-free half of reading a response, under
 * http_client_conn.c: bytes to the parser (http_client_parse.c), the body's span kept
 * or taken, the verdict on the server's end of stream. The fuzz harness drives these very
 * functions without a socket. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "sluice.h"

/* Every response is read into this buffer (libuv reads one socket at a time) unless its
 * body can be read straight into the request's own buffer; nothing is kept in it past the
 * read callback, so a thousand connections cost no read buffer each. */
static char hc_rbuf[64 * 1024];

int sl_client_conn_lend(sl_stream *st, uv_buf_t *buf) {
  hc_conn *k = (hc_conn *)st->data;
  hc_req *r = k->req;
  if (r != NULL && r->direct && r->rbody.len < r->rbody.cap) {
    buf->base = r->rbody.p + r->rbody.len;
    buf->len = r->rbody.cap - r->rbody.len;
    return 1;
  }
  buf->base = hc_rbuf;
  buf->len = sizeof hc_rbuf;
  return 1;
}

/* Keeps the body's only span, still in the read buffer, before the buffer is reused: as
 * the body string pushed on co (given when the task is waiting for a plain body), when the
 * body needs neither decoding nor a sink, else appended to rbody. Returns 1 when pushed,
 * 0, or -1 out of memory (ENOMEM set). */
int sl_client_req_take_span(hc_req *r, lua_State *co) {
  int rc = 0;
  if (r->span == NULL)
    return 0;
  if (co != NULL && r->encoding == 0 && !r->sink) {
    lua_checkstack(co, 1);
    lua_pushlstring(co, r->span, r->span_len);
    rc = 1;
  } else if (sl_buf_add(&r->rbody, r->span, r->span_len) < 0) {
    r->err_name = "ENOMEM";
    snprintf(r->err_msg, sizeof r->err_msg, "out of memory for a response body");
    rc = -1;
  }
  r->span = NULL;
  r->span_len = 0;
  return rc;
}

/* Notes a failure in r (err_name and err_msg) without ending it: the caller does. */
static void req_error(hc_req *r, const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err_msg, sizeof r->err_msg, fmt, ap);
  va_end(ap);
  r->err_name = name;
}

/* Names what was missing when the server closed the connection too early. */
static void req_error_eof(hc_req *r) {
  if (!r->got_byte)
    req_error(r, "ECONNRESET", "%s:%d closed the connection without responding", r->host,
              r->port);
  else if (!r->headers_done)
    req_error(r, "ECONNRESET", "%s:%d closed the connection in the middle of the "
              "response headers", r->host, r->port);
  else if (r->clen > 0)
    req_error(r, "ECONNRESET", "%s:%d closed the connection after %zu of %llu body "
              "bytes", r->host, r->port, r->body_raw, (unsigned long long)r->clen);
  else
    req_error(r, "ECONNRESET", "%s:%d closed the connection in the middle of the body",
              r->host, r->port);
}

/* The server ended the stream (a close, or TLS close_notify) while r was reading: the end
 * of a body delimited by the close, or a response cut short. Returns HC_IN_DONE_EXTRA
 * (complete; the connection is not reused) or HC_IN_FAIL (r->err_name set). */
int sl_client_conn_finish(hc_conn *k, hc_req *r) {
  llhttp_finish(&k->parser);
  if (r->complete) {
    r->complete = 0;
    return HC_IN_DONE_EXTRA;
  }
  if (r->err_name == NULL)
    req_error_eof(r);
  r->span = NULL;
  r->span_len = 0;
  return HC_IN_FAIL;
}

/* Parses n response bytes (plaintext) at data, read at r->t_last: the socket-free half of
 * reading, which the fuzz harness drives as conn_on_read does. What the read buffer holds
 * of the body is kept unless the response is complete (the caller then takes the span with
 * sl_client_req_take_span before the buffer is reused). Returns HC_IN_MORE (read on),
 * HC_IN_SINK (body bytes wait for the sink: stop reading), HC_IN_DONE, HC_IN_DONE_EXTRA (complete,
 * with bytes after it that were not asked for, or an upgrade: the connection is not
 * reused) or HC_IN_FAIL (r->err_name and err_msg set). */
int sl_client_conn_input(hc_conn *k, hc_req *r, const char *data, size_t n) {
  llhttp_errno_t err;
  if (!r->got_byte) {
    r->got_byte = 1;
    r->t_first = r->t_last;
  }
  err = sl_client_parse(k, r, data, n);
  if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && r->complete) {
    const char *end = llhttp_get_error_pos(&k->parser);
    r->complete = 0;
    return err == HPE_PAUSED_UPGRADE || (end != NULL && end < data + n) ? HC_IN_DONE_EXTRA
                                                                         : HC_IN_DONE;
  }
  if (err != HPE_OK) {
    if (r->err_name == NULL)
      req_error(r, "EPROTO", "invalid HTTP response from %s:%d: %s", r->host, r->port,
                llhttp_get_error_reason(&k->parser));
    r->span = NULL;            /* the read buffer is not kept */
    r->span_len = 0;
    return HC_IN_FAIL;
  }
  /* More to come: keep what the read buffer holds, then wait (or feed the sink). */
  if (r->span != NULL && sl_client_req_take_span(r, NULL) < 0)
    return HC_IN_FAIL;
  return r->sink && sl_client_sink_pending(r) ? HC_IN_SINK : HC_IN_MORE;
}
