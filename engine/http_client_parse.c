/* http_client_parse.c: feeding llhttp a response under the head's limits (max_header,
 * max_headers), and its callbacks: status and headers, how the body will be read, spans. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_client.h"
#include "sluice.h"

/* A Content-Length body of this size gets its buffer at once and is read straight into it;
 * a smaller one most often came in the same read as the headers (see on_body). */
#define PREALLOC_MIN (16u * 1024)
#define PREALLOC_MAX (8u * 1024 * 1024)

static llhttp_settings_t settings;

/* Starts a response parser for a new connection; its data is set by the caller. */
void sl_client_parser_init(llhttp_t *p) {
  llhttp_init(p, HTTP_RESPONSE, &settings);
}

/* Ends parsing with EMSGSIZE: what (the response headers, or the trailers) is larger than
 * max_header bytes or has more than max_headers fields. */
static int too_big(hc_req *r, const char *what) {
  int fields = r->nfields > r->lim.max_headers;
  r->err_name = "EMSGSIZE";
  snprintf(r->err_msg, sizeof r->err_msg, "%s from %s:%d exceed %s (%zu %s)", what, r->host,
           r->port, fields ? "max_headers" : "max_header",
           fields ? r->lim.max_headers : r->lim.max_header, fields ? "fields" : "bytes");
  return -1;
}

/* Feeds n response bytes to the parser; returns llhttp's answer (HPE_USER with r->err_name
 * set when the head is too large). While a head is being read (the status line and
 * headers, and before them those of any interim 1xx responses), at most what is left of
 * max_header goes in at a time: the limit then counts the bytes on the wire, line ends and
 * blanks included, which the callbacks never see, and an endless stream of 1xx responses
 * runs into it too. Once the final head is complete the body goes in at once, up to its
 * last chunk when chunked: on_chunk_header pauses the parser there, and the trailer
 * section after it is held to max_header bytes of its own the same way. */
llhttp_errno_t sl_client_parse(hc_conn *k, hc_req *r, const char *data, size_t n) {
  llhttp_errno_t err = HPE_OK;
  while (n > 0) {
    size_t take = n, *used = NULL;
    if (!r->headers_done)
      used = &r->header_bytes;   /* may count body bytes too once the head ends: harmless */
    else if (r->in_trailers)
      used = &r->trailer_bytes;
    if (used != NULL) {
      size_t room = r->lim.max_header - *used;
      if (room == 0) {
        too_big(r, r->in_trailers ? "the trailers" : "the response headers");
        return HPE_USER;
      }
      if (take > room)
        take = room;
      *used += take;
    }
    err = llhttp_execute(&k->parser, data, take);
    if (err == HPE_PAUSED && r->in_trailers && !r->complete) {
      /* on_chunk_header's pause at the last chunk: count the trailers from here */
      size_t done = (size_t)(llhttp_get_error_pos(&k->parser) - data);
      llhttp_resume(&k->parser);
      if (used != NULL)
        *used -= take - done;
      take = done;
      err = HPE_OK;
    }
    if (err != HPE_OK)
      return err;
    data += take;
    n -= take;
  }
  return err;
}

static int on_status(llhttp_t *p, const char *at, size_t n) {
  hc_req *r = ((hc_conn *)p->data)->req;
  if (sl_buf_add(&r->hbuf, at, n) < 0)
    return -1;
  r->reason_len += (uint32_t)n;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  hc_req *r = ((hc_conn *)p->data)->req;
  hc_header *h;
  if (r->nhdr == 0 || r->hdr[r->nhdr - 1].value != UINT32_MAX) {
    /* a new header: its name starts here */
    if (++r->nfields > r->lim.max_headers)
      return too_big(r, r->headers_done ? "the trailers" : "the response headers");
    if (r->nhdr == r->hdr_cap) {
      uint32_t cap = r->hdr_cap ? r->hdr_cap * 2 : 16;
      hc_header *nh = (hc_header *)realloc(r->hdr, cap * sizeof(*nh));
      if (nh == NULL)
        return -1;
      r->hdr = nh;
      r->hdr_cap = cap;
    }
    h = &r->hdr[r->nhdr++];
    h->name = (uint32_t)r->hbuf.len;
    h->name_len = 0;
    h->value = UINT32_MAX;      /* still reading the name */
    h->value_len = 0;
  }
  h = &r->hdr[r->nhdr - 1];
  if (sl_buf_add(&r->hbuf, at, n) < 0)
    return -1;
  h->name_len += (uint32_t)n;
  return 0;
}

static int on_header_field_complete(llhttp_t *p) {
  hc_req *r = ((hc_conn *)p->data)->req;
  hc_header *h = &r->hdr[r->nhdr - 1];
  uint32_t i;
  /* An empty name (llhttp lets the name's span be empty when the line starts with its
   * separator) has added nothing, and hbuf may still be unallocated. */
  for (i = 0; i < h->name_len; i++) {
    char *s = r->hbuf.p + h->name + i;
    if (*s >= 'A' && *s <= 'Z')
      *s = (char)(*s + 32);
  }
  h->value = (uint32_t)r->hbuf.len;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  hc_req *r = ((hc_conn *)p->data)->req;
  if (sl_buf_add(&r->hbuf, at, n) < 0)
    return -1;
  r->hdr[r->nhdr - 1].value_len += (uint32_t)n;
  return 0;
}

/* Trims the value's trailing blanks and notes a Content-Encoding to decode. */
static int on_header_value_complete(llhttp_t *p) {
  hc_req *r = ((hc_conn *)p->data)->req;
  hc_header *h = &r->hdr[r->nhdr - 1];
  const char *v = r->hbuf.p + h->value;
  while (h->value_len > 0 && (v[h->value_len - 1] == ' ' || v[h->value_len - 1] == '\t'))
    h->value_len--;
  /* A trailer's Content-Encoding says nothing about a body already being decoded. */
  if (!r->headers_done && h->name_len == 16 &&
      memcmp(r->hbuf.p + h->name, "content-encoding", 16) == 0 && r->lim.decompress) {
    if ((h->value_len == 4 && strncasecmp(v, "gzip", 4) == 0) ||
        (h->value_len == 6 && strncasecmp(v, "x-gzip", 6) == 0))
      r->encoding = HC_ENC_GZIP;
    else if (h->value_len == 7 && strncasecmp(v, "deflate", 7) == 0)
      r->encoding = HC_ENC_DEFLATE;
    else if (h->value_len == 2 && strncasecmp(v, "br", 2) == 0)
      r->encoding = HC_ENC_BR;
    else if (h->value_len == 4 && strncasecmp(v, "zstd", 4) == 0)
      r->encoding = HC_ENC_ZSTD;
  }
  return 0;
}

/* The one redirect decision: the Location of a response its request follows (a 301, 302,
 * 303, 307 or 308 with a Location, max_redirects not 0, and for 307 and 308 a body that
 * can be sent again: not a function), or NULL. Past max_redirects it is still followed,
 * to fail with ELOOP. */
const char *sl_client_redirect_location(const hc_req *r, size_t *len) {
  uint32_t i;
  if (r->status != 301 && r->status != 302 && r->status != 303 && r->status != 307 &&
      r->status != 308)
    return NULL;
  if (r->max_redirects == 0 || ((r->status == 307 || r->status == 308) && r->fn_body))
    return NULL;
  for (i = 0; i < r->nhead; i++)
    if (r->hdr[i].name_len == 8 && r->hdr[i].value != UINT32_MAX &&
        memcmp(r->hbuf.p + r->hdr[i].name, "location", 8) == 0) {
      *len = r->hdr[i].value_len;
      return r->hbuf.p + r->hdr[i].value;
    }
  return NULL;
}

/* Status and headers are in: decide how the body will be read. */
static int on_headers_complete(llhttp_t *p) {
  hc_conn *k = (hc_conn *)p->data;
  hc_req *r = k->req;
  r->status = p->status_code;
  r->headers_done = 1;
  r->nhead = r->nhdr;          /* lines read from now on are trailers */
  /* No body, whatever the headers say (RFC 9112, 6.3): the answer to a HEAD, an interim
   * 1xx, 204 No Content and 304 Not Modified (whose Content-Length, if any, is that of
   * the representation it stands for). */
  if (r->is_head || (r->status >= 100 && r->status < 200 && r->status != 101) ||
      r->status == 204 || r->status == 304)
    return 1;
  if (r->sink && sl_client_redirect_location(r, &(size_t){0}) != NULL)
    r->discard = 1;            /* the sink is for the body at the end of the redirects */
  if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED)) {
    r->clen = p->content_length;
    if (r->clen > r->lim.max_body && !r->sink) {
      r->err_name = "EFBIG";
      snprintf(r->err_msg, sizeof r->err_msg, "the response body from %s:%d (%llu bytes) "
               "exceeds max_body (%zu bytes)", r->host, r->port,
               (unsigned long long)r->clen, r->lim.max_body);
      return -1;
    }
    if (!r->sink && r->clen >= PREALLOC_MIN && r->clen <= PREALLOC_MAX &&
        r->rbody.cap == 0) {
      r->rbody.p = (char *)malloc((size_t)r->clen);
      if (r->rbody.p == NULL)
        return -1;
      r->rbody.cap = (size_t)r->clen;
      r->direct = 1;
    }
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  hc_req *r = ((hc_conn *)p->data)->req;
  size_t have = r->rbody.len + r->span_len;
  if (r->discard)
    return 0;
  /* All the body bytes received count, not only those held: a sink empties rbody. */
  if (n > r->lim.max_body - r->body_raw) {
    r->err_name = "EFBIG";
    snprintf(r->err_msg, sizeof r->err_msg, "the response body from %s:%d exceeds max_body "
             "(%zu bytes)", r->host, r->port, r->lim.max_body);
    return -1;
  }
  r->body_raw += n;
  if (r->direct && at == r->rbody.p + r->rbody.len) {
    r->rbody.len += n;         /* read in place */
    return 0;
  }
  if (r->span == NULL && have == 0) {
    r->span = at;              /* maybe the whole body: copied once, when it ends */
    r->span_len = n;
    return 0;
  }
  if (r->span != NULL) {
    if (sl_buf_add(&r->rbody, r->span, r->span_len) < 0)
      return -1;
    r->span = NULL;
    r->span_len = 0;
  }
  return sl_buf_add(&r->rbody, at, n) < 0 ? -1 : 0;
}

/* A chunk's size line is read: at the last chunk (size 0), pauses the parser so that
 * sl_client_parse counts the trailer section after it against max_header. */
static int on_chunk_header(llhttp_t *p) {
  hc_req *r = ((hc_conn *)p->data)->req;
  if (p->content_length != 0)
    return 0;
  r->in_trailers = 1;
  return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *p) {
  hc_req *r = ((hc_conn *)p->data)->req;
  if (r->status >= 100 && r->status < 200 && r->status != 101) {
    /* An interim response (100 Continue, 103 Early Hints): the real one follows. Its
     * bytes and fields stay counted (header_bytes, nfields) against the limits. */
    r->hbuf.len = 0;
    r->nhdr = r->nhead = 0;
    r->reason_len = 0;
    r->headers_done = 0;
    r->encoding = 0;
    return 0;
  }
  r->complete = 1;
  return HPE_PAUSED;
}

/* Fills llhttp's callback table once. */
void sl_client_parse_module_init(void) {
  llhttp_settings_init(&settings);
  settings.on_status = on_status;
  settings.on_header_field = on_header_field;
  settings.on_header_field_complete = on_header_field_complete;
  settings.on_header_value = on_header_value;
  settings.on_header_value_complete = on_header_value_complete;
  settings.on_headers_complete = on_headers_complete;
  settings.on_body = on_body;
  settings.on_chunk_header = on_chunk_header;
  settings.on_message_complete = on_message_complete;
}

