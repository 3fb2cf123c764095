/* http_server_parse.c: the HTTP server's request parsing: llhttp's callbacks fill the
 * connection's request record (target, header lines in one buffer, trailers, body) and
 * enforce the limits on heads, header lines and bodies, one request at a time. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_server.h"
#include "sluice.h"
#include "stream.h"

static uint64_t now_ms(hs_conn *c) {
  return uv_now(c->srv->E->loop);
}

/* llhttp calls these with spans of the input, possibly split across reads; the target and
 * header names and values are copied into the head buffer. max_header limits the head as it
 * was sent: request line and header lines with their separators and CRLFs (so padding or
 * many short lines count), and the trailers of a chunked body count with it. */

/* The CRLF ending a span's line and the one ending the head: counted ahead at every span,
 * so that a head is refused or not whatever the reads it came in. */
#define HEAD_END 4

/* Checks the head's size on the wire at the end of a span: what earlier inputs held, plus
 * this input from where counting resumed, plus HEAD_END. */
static int head_span(hs_conn *c, const char *at, size_t len, int status) {
  if (c->head_mark == NULL)
    c->head_mark = at;
  c->head_seen = c->head_wire + (size_t)(at + len - c->head_mark);
  if (c->head_seen + HEAD_END > c->srv->max_header) {
    c->err_status = status;
    return -1;
  }
  return 0;
}

static int head_add(hs_conn *c, const char *at, size_t len) {
  if (sl_buf_add(&c->head, at, len) != 0) {
    c->err_status = 503;
    return -1;
  }
  return 0;
}

static int on_message_begin(llhttp_t *p) {
  hs_conn *c = (hs_conn *)p->data;
  c->in_message = 1;
  c->t_start = now_ms(c);
  c->head.len = 0;
  c->body.len = 0;
  c->url_len = 0;
  c->nhdr = c->nhead = 0;
  c->nhost = 0;
  c->in_field = c->in_value = 0;
  c->in_head = 1;
  c->head_done = 0;
  c->head_wire = c->head_seen = 0;
  c->head_mark = NULL;         /* from the method's first byte: blank lines before are not */
  return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len) {
  return head_span((hs_conn *)p->data, at, len, 431);
}

static int on_version(llhttp_t *p, const char *at, size_t len) {
  return head_span((hs_conn *)p->data, at, len, 431);
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  hs_conn *c = (hs_conn *)p->data;
  if (head_span(c, at, len, 414) != 0 || head_add(c, at, len) != 0)
    return -1;
  c->url_len += (uint32_t)len;
  return 0;
}

/* A new header (or trailer) line: counted against max_headers; the array grows as needed
 * and is kept for the connection's next requests. */
static hs_header *header_new(hs_conn *c) {
  hs_header *h;
  if (c->nhdr >= c->srv->max_headers) {
    c->err_status = 431;
    return NULL;
  }
  if (c->nhdr == c->hdr_cap) {
    int ncap = c->hdr_cap ? c->hdr_cap * 2 : 16;
    hs_header *nh = (hs_header *)realloc(c->hdr, (size_t)ncap * sizeof *nh);
    if (nh == NULL) {
      c->err_status = 503;
      return NULL;
    }
    c->hdr = nh;
    c->hdr_cap = ncap;
  }
  h = &c->hdr[c->nhdr++];
  h->name_off = h->val_off = (uint32_t)c->head.len;
  h->name_len = h->val_len = 0;
  return h;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  hs_conn *c = (hs_conn *)p->data;
  hs_header *h;
  if (!c->in_head) {           /* the first trailer line: counting resumes here */
    c->in_head = 1;
    c->head_mark = at;
  }
  if (head_span(c, at, len, 431) != 0)
    return -1;
  if (!c->in_field) {
    if (header_new(c) == NULL)
      return -1;
    c->in_field = 1;
  }
  h = &c->hdr[c->nhdr - 1];
  if (head_add(c, at, len) != 0)
    return -1;
  h->name_len += (uint32_t)len;
  return 0;
}

/* Counts Host lines of the head: HTTP/1.1 needs exactly one (see on_headers_complete). */
static int on_header_field_complete(llhttp_t *p) {
  hs_conn *c = (hs_conn *)p->data;
  hs_header *h = &c->hdr[c->nhdr - 1];
  c->in_field = 0;
  if (!c->head_done && h->name_len == 4 && c->nhost < 2 &&
      strncasecmp(c->head.p + h->name_off, "host", 4) == 0)
    c->nhost++;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  hs_conn *c = (hs_conn *)p->data;
  hs_header *h = &c->hdr[c->nhdr - 1];
  if (head_span(c, at, len, 431) != 0)
    return -1;
  if (!c->in_value) {
    h->val_off = (uint32_t)c->head.len;
    c->in_value = 1;
  }
  if (head_add(c, at, len) != 0)
    return -1;
  h->val_len += (uint32_t)len;
  return 0;
}

static int on_header_value_complete(llhttp_t *p) {
  ((hs_conn *)p->data)->in_value = 0;
  return 0;
}

/* True if header i is `name` (lower case), compared without regard to case. */
static int header_is(hs_conn *c, int i, const char *name, size_t n) {
  return c->hdr[i].name_len == n && strncasecmp(c->head.p + c->hdr[i].name_off, name, n) == 0;
}

/* Refuses a request without its one Host line, or with a declared body that is too large,
 * before reading the body, and answers "Expect: 100-continue" so that clients such as curl
 * send the body at once. */
static int on_headers_complete(llhttp_t *p) {
  hs_conn *c = (hs_conn *)p->data;
  int i;
  /* The head ends here: the lines that may follow the body are trailers, counted from
   * what the head used. The CRLFs after the last span were counted ahead (head_span). */
  c->nhead = c->nhdr;
  c->head_done = 1;
  c->in_head = 0;
  c->head_wire = c->head_seen + HEAD_END;
  c->head_mark = NULL;
  /* RFC 9112 3.2: one Host line, required from HTTP/1.1 on; several are ambiguous (which
   * one would a proxy in front have used?). */
  if (c->nhost > 1 || (c->nhost == 0 && p->http_major == 1 && p->http_minor >= 1)) {
    c->err_status = 400;
    return -1;
  }
  /* RFC 9112 6.1: a chunked HTTP/1.0 request may have passed through a proxy that did
   * not understand chunking, so where it ends is uncertain: answer it, then close. */
  if ((p->flags & F_CHUNKED) && p->http_major == 1 && p->http_minor == 0)
    c->close_after = 1;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->max_body) {
    c->err_status = 413;
    return -1;
  }
  if (p->content_length > 0 || (p->flags & F_CHUNKED)) {
    for (i = 0; i < c->nhdr; i++) {
      if (header_is(c, i, "expect", 6) && c->hdr[i].val_len == 12 &&
          strncasecmp(c->head.p + c->hdr[i].val_off, "100-continue", 12) == 0) {
        c->send_continue = 1;          /* answered by the connection, right after */
        break;
      }
    }
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  hs_conn *c = (hs_conn *)p->data;
  if (c->body.len + len > c->srv->max_body) {
    c->err_status = 413;
    return -1;
  }
  if (sl_buf_add(&c->body, at, len) != 0) {
    c->err_status = 503;
    return -1;
  }
  return 0;
}

/* Pauses the parser after each request: the next one is parsed only once this one has
 * its response, which keeps pipelined responses in order. After an Upgrade or CONNECT
 * request the bytes that follow belong to another protocol, which the handler API cannot
 * speak: the connection closes after the answer and those bytes are never parsed. */
static int on_message_complete(llhttp_t *p) {
  hs_conn *c = (hs_conn *)p->data;
  c->in_message = 0;
  c->in_head = 0;
  c->keepalive = (uint8_t)llhttp_should_keep_alive(p);
  if (p->upgrade)
    c->close_after = 1;
  return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
  .on_message_begin = on_message_begin,
  .on_method = on_method,
  .on_url = on_url,
  .on_version = on_version,
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
  .on_header_field_complete = on_header_field_complete,
  .on_header_value_complete = on_header_value_complete,
};

void sl_server_conn_parser_init(hs_conn *c) {
  llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
  c->parser.data = c;
}

/* Refuses the request being received: no more of the input is parsed, and the status to
 * answer is in err_status (the connection answers it; so does the fuzz harness look). */
static int parse_refuse(hs_conn *c, int status) {
  sl_stream_consume(c->st, c->st->in_len);
  c->err_status = status;
  return HS_PARSE_REFUSE;
}

/* Parses buffered input up to the end of the next request. Returns HS_PARSE_REQUEST when
 * one is complete (c is busy: the caller hands it to a worker), HS_PARSE_REFUSE when the
 * request is refused (err_status to answer, the connection then ends), HS_PARSE_END when
 * what follows an Upgrade or CONNECT request was dropped (the connection ends once free),
 * and HS_PARSE_MORE when more input is needed or the connection is not taking requests
 * (busy, a response still queued, closing). */
int sl_server_conn_parse(hs_conn *c) {
  sl_stream *st = c->st;
  while (!c->closing && !c->ending && !c->busy && !c->draining && st->in_len > 0) {
    const char *start = st->in + st->in_off;
    llhttp_errno_t err;
    size_t used = st->in_len;
    if (c->in_head)                      /* a head (or trailers) continues in this input */
      c->head_mark = start;
    err = llhttp_execute(&c->parser, start, st->in_len);
    if (err == HPE_PAUSED) {
      used = (size_t)(llhttp_get_error_pos(&c->parser) - start);
      llhttp_resume(&c->parser);
    } else if (err == HPE_PAUSED_UPGRADE) {
      /* Only reached if the connection went on after an Upgrade or CONNECT request,
       * which close_after prevents: the rest is not HTTP, so it is dropped, never parsed
       * (llhttp would otherwise report the previous request again). */
      sl_stream_consume(st, st->in_len);
      c->close_after = 1;
      return HS_PARSE_END;
    } else if (err != HPE_OK) {
      return parse_refuse(c, c->err_status ? c->err_status : 400);
    }
    if (c->in_head && c->head_mark != NULL) {
      /* Bytes between spans (padding) count too, even before the next span. This input
       * may have ended inside the CRLFs that end a line or the head, which head_span
       * counted ahead: all that is sure is that at least one byte of the head is still to
       * come, so the same head gets the same verdict however TCP splits it. */
      c->head_wire += (size_t)(start + used - c->head_mark);
      c->head_mark = NULL;
      if (c->head_wire >= c->srv->max_header)
        return parse_refuse(c, 431);
    }
    sl_stream_consume(st, used);
    if (err == HPE_PAUSED) {
      if (c->parser.method == HTTP_CONNECT)
        return parse_refuse(c, 501);     /* no tunnels: answered here, not by the handler */
      c->busy = 1;
      return HS_PARSE_REQUEST;
    }
  }
  return HS_PARSE_MORE;
}
