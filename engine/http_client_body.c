/* http_client_body.c: a response body's decoding: gzip and deflate through zlib, whole for
 * a response table or piece by piece for a sink. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "http_client.h"
#include "sluice.h"

/* ------------------------------------------------------------- bodies */

/* Starts a zlib stream for r->encoding: gzip, or deflate with or without its zlib
 * wrapper (servers send both; the first two bytes tell them apart). */
int sl_client_inflate_init(hc_req *r, const unsigned char *in, size_t n) {
  z_stream *z = (z_stream *)calloc(1, sizeof(*z));
  int bits;
  if (z == NULL)
    return -1;
  if (r->encoding == 1)
    bits = 15 + 16;
  else if (n >= 2 && (in[0] & 0x0f) == 8 && ((in[0] << 8) | in[1]) % 31 == 0)
    bits = 15;
  else
    bits = -15;
  if (inflateInit2(z, bits) != Z_OK) {
    free(z);
    return -1;
  }
  r->z = z;
  return 0;
}

void sl_client_inflate_end(hc_req *r) {
  if (r->z != NULL) {
    inflateEnd((z_stream *)r->z);
    free(r->z);
    r->z = NULL;
  }
}

/* What follows the end of a gzip member (hc_req.zstate). */
enum { HC_Z_STREAM, HC_Z_HELD, HC_Z_REST };

/* Starts the next gzip member, whose first byte (0x1f) came at the end of the previous
 * batch of input and was held back: zlib is reset and given that byte on its own (it
 * keeps what it has of a header across calls), then the caller's input goes on. */
static void next_member_held(z_stream *z) {
  Bytef *in = z->next_in, id1 = 0x1f;
  uInt n = z->avail_in;
  inflateReset(z);
  z->next_in = &id1;
  z->avail_in = 1;
  inflate(z, Z_NO_FLUSH);      /* takes the byte into the header: Z_OK, no output */
  z->next_in = in;
  z->avail_in = n;
}

/* Decodes up to outlen bytes into out from r->z's pending input (set by the caller).
 * A gzip body may hold several members one after the other, and sluice decodes every
 * one of them, as gzip -d does (browsers stop after the first; curl fails): after the
 * end of one, input that starts with gzip's magic number (1f 8b) starts the next member.
 * A 0x1f that is the last byte of a batch is held back until the next byte tells; at the
 * end of the body it is ignored. Anything else after the end of the stream (trailing
 * garbage, padding) is ignored with all that follows it, as gzip -d does, and so are
 * bytes after a deflate stream. A member that ends exactly at the end of one batch of
 * input is continued by the next batch the same way, since zlib keeps answering
 * Z_STREAM_END until it is reset. Returns the bytes produced, or -1 with the request's
 * error set. */
long sl_client_inflate(hc_req *r, char *out, size_t outlen) {
  z_stream *z = (z_stream *)r->z;
  int rc;
  z->next_out = (Bytef *)out;
  z->avail_out = (uInt)outlen;
  for (;;) {
    if (r->zstate == HC_Z_REST) {
      z->avail_in = 0;         /* ignore anything after the end of the stream */
      break;
    }
    if (r->zstate == HC_Z_HELD) {
      if (z->avail_in == 0)
        break;
      if (z->next_in[0] != 0x8b) {
        r->zstate = HC_Z_REST;
        continue;
      }
      next_member_held(z);
      r->zstate = HC_Z_STREAM;
    }
    rc = inflate(z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      r->err_name = "EPROTO";
      snprintf(r->err_msg, sizeof r->err_msg, "bad %s body from %s:%d: %s",
               r->encoding == 1 ? "gzip" : "deflate", r->host, r->port,
               z->msg ? z->msg : "corrupt data");
      return -1;
    }
    if (rc != Z_STREAM_END || z->avail_in == 0)
      break;
    if (r->encoding != 1 || z->next_in[0] != 0x1f) {
      r->zstate = HC_Z_REST;
      continue;
    }
    if (z->avail_in == 1) {    /* a lone 0x1f: the next batch tells */
      z->next_in++;
      z->avail_in = 0;
      r->zstate = HC_Z_HELD;
      break;
    }
    if (z->next_in[1] != 0x8b) {
      r->zstate = HC_Z_REST;
      continue;
    }
    inflateReset(z);           /* the next gzip member */
    if (z->avail_out == 0)
      break;
  }
  return (long)(outlen - z->avail_out);
}

/* Whether body bytes wait for the sink: raw ones, or some still inside the decoder. The
 * first byte of a deflate body waits for the second (or the end): the two tell a zlib
 * wrapper from raw deflate. */
int sl_client_sink_pending(const hc_req *r) {
  if (r->z != NULL)
    return r->zbatch || r->rbody.len > 0;
  if (r->encoding == 2 && !r->done)
    return r->rbody.len >= 2;
  return r->rbody.len > 0;
}

/* The next piece of body for a sink (sl_client_sink_pending said there is one): the raw bytes
 * read (identity), or up to HC_SINK_PIECE bytes of them decoded. Sets *piece, valid until
 * the next read; returns its length, 0 when the pending bytes decoded to nothing more, or
 * -1 with r->err_name set (EPROTO bad data, EFBIG past max_body, ENOMEM). */
long sl_client_sink_piece(hc_req *r, const char **piece) {
  z_stream *z;
  long got;
  if (r->encoding == 0) {
    *piece = r->rbody.p;
    got = (long)r->rbody.len;
    r->rbody.len = 0;
    return got;
  }
  if ((r->z == NULL && sl_client_inflate_init(r, (const unsigned char *)r->rbody.p,
                                              r->rbody.len) < 0) ||
      (r->zout == NULL && (r->zout = (char *)malloc(HC_SINK_PIECE)) == NULL)) {
    r->err_name = "ENOMEM";
    snprintf(r->err_msg, sizeof r->err_msg, "out of memory for a decoder");
    return -1;
  }
  z = (z_stream *)r->z;
  if (!r->zbatch) {
    z->next_in = (Bytef *)r->rbody.p;
    z->avail_in = (uInt)r->rbody.len;
    r->zbatch = 1;
  }
  got = sl_client_inflate(r, r->zout, HC_SINK_PIECE);
  if (got < 0)
    return -1;
  r->zdecoded += (size_t)got;
  if (r->zdecoded > r->lim.max_body) {
    r->err_name = "EFBIG";
    snprintf(r->err_msg, sizeof r->err_msg, "the decoded response body from %s:%d "
             "exceeds max_body (%zu bytes)", r->host, r->port, r->lim.max_body);
    return -1;
  }
  if (got < HC_SINK_PIECE) {   /* room was left: zlib took all the input it had */
    r->zbatch = 0;
    r->rbody.len = 0;
  }
  *piece = r->zout;
  return got;
}

/* Pushes the whole decoded body of r->rbody, or returns the fail triple (EPROTO for bad
 * data, EFBIG past max_body). Returns 1 or 3. */
int sl_client_push_decoded(lua_State *L, hc_req *r) {
  luaL_Buffer B;
  z_stream *z;
  size_t total = 0;
  if (sl_client_inflate_init(r, (const unsigned char *)r->rbody.p, r->rbody.len) < 0)
    return sl_fail(L, "ENOMEM", "out of memory for a decoder");
  z = (z_stream *)r->z;
  z->next_in = (Bytef *)r->rbody.p;
  z->avail_in = (uInt)r->rbody.len;
  luaL_buffinit(L, &B);
  while (z->avail_in > 0) {
    char *out = luaL_prepbuffsize(&B, 64 * 1024);
    long got = sl_client_inflate(r, out, 64 * 1024);
    if (got < 0)
      return sl_fail(L, r->err_name, "%s", r->err_msg);
    if (got == 0 && z->avail_in > 0 && z->avail_out > 0)
      break;                   /* truncated stream: keep what decoded */
    total += (size_t)got;
    if (total > r->lim.max_body)
      return sl_fail(L, "EFBIG", "the decoded response body from %s:%d exceeds max_body "
                     "(%I bytes)", r->host, r->port, (lua_Integer)r->lim.max_body);
    luaL_addsize(&B, (size_t)got);
  }
  luaL_pushresult(&B);
  return 1;
}
