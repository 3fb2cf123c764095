/* http_client_body.c: a response body's decoding: gzip and deflate through zlib, br through
 * brotli, zstd through zstd; whole for a response table or piece by piece for a sink, the
 * decoded size checked against max_body as it grows. */
#include <stdlib.h>
#include <string.h>
#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include "http_client.h"
#include "sluice.h"

/* ------------------------------------------------------------- bodies */

/* The decoder of one body (hc_req.z): zlib's stream for gzip and deflate, brotli's or
 * zstd's state for br and zstd, with their input not taken yet. */
typedef struct hc_dec {
  z_stream z;                  /* gzip, deflate: next_in and avail_in are the input */
  BrotliDecoderState *br;
  ZSTD_DStream *zs;
  const unsigned char *in;     /* br, zstd: input not taken yet */
  size_t avail;
  uint8_t kind;                /* the HC_ENC_* it decodes, so it is freed as it was made */
  uint8_t ended;               /* br, zstd: the stream (its last zstd frame) is complete */
  uint8_t held;                /* br, zstd: decoded output may wait inside the decoder */
} hc_dec;

/* zstd frames may ask for a window of up to 2^31 bytes; RFC 8878 lets HTTP decoders
 * refuse more than 8 MB, as browsers do, so a frame cannot make the client allocate more. */
#define HC_ZSTD_WINDOW_LOG 23

/* Starts a decoder for r->encoding: gzip, deflate with or without its zlib wrapper
 * (servers send both; the first two bytes tell them apart), br or zstd. */
int sl_client_inflate_init(hc_req *r, const unsigned char *in, size_t n) {
  hc_dec *d = (hc_dec *)calloc(1, sizeof(*d));
  int bits, ok;
  if (d == NULL)
    return -1;
  d->kind = r->encoding;
  if (r->encoding == HC_ENC_BR) {
    ok = (d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL)) != NULL;
  } else if (r->encoding == HC_ENC_ZSTD) {
    ok = (d->zs = ZSTD_createDStream()) != NULL &&
         !ZSTD_isError(ZSTD_DCtx_setParameter(d->zs, ZSTD_d_windowLogMax,
                                              HC_ZSTD_WINDOW_LOG));
    if (!ok)
      ZSTD_freeDStream(d->zs);
  } else {
    if (r->encoding == HC_ENC_GZIP)
      bits = 15 + 16;
    else if (n >= 2 && (in[0] & 0x0f) == 8 && ((in[0] << 8) | in[1]) % 31 == 0)
      bits = 15;
    else
      bits = -15;
    ok = inflateInit2(&d->z, bits) == Z_OK;
  }
  if (!ok) {
    free(d);
    return -1;
  }
  r->z = d;
  return 0;
}

void sl_client_inflate_end(hc_req *r) {
  hc_dec *d = (hc_dec *)r->z;
  if (d == NULL)
    return;
  if (d->kind == HC_ENC_BR)
    BrotliDecoderDestroyInstance(d->br);
  else if (d->kind == HC_ENC_ZSTD)
    ZSTD_freeDStream(d->zs);
  else
    inflateEnd(&d->z);
  free(d);
  r->z = NULL;
}

/* Gives the decoder n more bytes of input at in (the previous ones were all taken). */
static void dec_feed(hc_req *r, const char *in, size_t n) {
  hc_dec *d = (hc_dec *)r->z;
  if (r->encoding == HC_ENC_BR || r->encoding == HC_ENC_ZSTD) {
    d->in = (const unsigned char *)in;
    d->avail = n;
  } else {
    d->z.next_in = (Bytef *)in;
    d->z.avail_in = (uInt)n;
  }
}

/* Input bytes the decoder has not taken yet. */
static size_t dec_avail(const hc_req *r) {
  const hc_dec *d = (const hc_dec *)r->z;
  return r->encoding == HC_ENC_BR || r->encoding == HC_ENC_ZSTD ? d->avail : d->z.avail_in;
}

/* A br or zstd body whose input is all taken without the end of its stream: cut short.
 * (A gzip or deflate body cut short keeps what decoded, as it always has.) */
static int dec_cut_short(const hc_req *r) {
  const hc_dec *d = (const hc_dec *)r->z;
  return (r->encoding == HC_ENC_BR || r->encoding == HC_ENC_ZSTD) && !d->ended &&
         d->avail == 0 && !d->held;
}

static const char *enc_name(const hc_req *r) {
  static const char *const names[] = {"identity", "gzip", "deflate", "br", "zstd"};
  return names[r->encoding];
}

static long dec_error(hc_req *r, const char *why) {
  r->err_name = "EPROTO";
  snprintf(r->err_msg, sizeof r->err_msg, "bad %s body from %s:%d: %s", enc_name(r),
           r->host, r->port, why);
  return -1;
}

/* Decodes up to outlen bytes of a br or zstd body into out. Like zlib's, returns less
 * than outlen only when all the input was taken and no output is held back; bytes after
 * the end of the stream are an error, as the brotli and zstd tools make them (zstd reads
 * them as the next frame: concatenated frames decode to their concatenation). */
static long dec_br_zstd(hc_req *r, char *out, size_t outlen) {
  hc_dec *d = (hc_dec *)r->z;
  size_t left = outlen;
  uint8_t *next_out = (uint8_t *)out;
  while (left > 0 && (d->avail > 0 || d->held)) {
    size_t had_in = d->avail, had_out = left;
    if (r->encoding == HC_ENC_BR) {
      BrotliDecoderResult rc;
      if (d->ended && d->avail > 0)
        return dec_error(r, "bytes after the end of the stream");
      rc = BrotliDecoderDecompressStream(d->br, &d->avail, &d->in, &left, &next_out, NULL);
      if (rc == BROTLI_DECODER_RESULT_ERROR)
        return dec_error(r, BrotliDecoderErrorString(BrotliDecoderGetErrorCode(d->br)));
      d->ended = rc == BROTLI_DECODER_RESULT_SUCCESS;
      d->held = BrotliDecoderHasMoreOutput(d->br);
    } else {
      ZSTD_inBuffer zin = {d->in, d->avail, 0};
      ZSTD_outBuffer zout = {next_out, left, 0};
      size_t rc = ZSTD_decompressStream(d->zs, &zout, &zin);
      if (ZSTD_isError(rc))
        return dec_error(r, ZSTD_getErrorName(rc));
      d->in += zin.pos;
      d->avail -= zin.pos;
      next_out += zout.pos;
      left -= zout.pos;
      d->ended = rc == 0;
      d->held = left == 0;     /* a full output may leave some in zstd's buffer */
    }
    if (d->avail == had_in && left == had_out) {
      if (had_in > 0)
        return dec_error(r, "the decoder is stuck");   /* never seen; no endless loop */
      d->held = 0;
    }
  }
  return (long)(outlen - left);
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
 * Z_STREAM_END until it is reset. */
static long dec_zlib(hc_req *r, char *out, size_t outlen) {
  z_stream *z = &((hc_dec *)r->z)->z;
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
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
      return dec_error(r, z->msg ? z->msg : "corrupt data");
    if (rc != Z_STREAM_END || z->avail_in == 0)
      break;
    if (r->encoding != HC_ENC_GZIP || z->next_in[0] != 0x1f) {
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

/* Decodes up to outlen bytes into out from the decoder's pending input (given by the
 * caller); less than outlen only when it took all the input it could. Returns the bytes
 * produced, or -1 with the request's error set (EPROTO). */
long sl_client_inflate(hc_req *r, char *out, size_t outlen) {
  if (r->encoding == HC_ENC_BR || r->encoding == HC_ENC_ZSTD)
    return dec_br_zstd(r, out, outlen);
  return dec_zlib(r, out, outlen);
}

/* Whether body bytes wait for the sink: raw ones, or some still inside the decoder, or
 * at the end of a br or zstd body cut short, its error. The first byte of a deflate body
 * waits for the second (or the end): the two tell a zlib wrapper from raw deflate. */
int sl_client_sink_pending(const hc_req *r) {
  if (r->z != NULL)
    return r->zbatch || r->rbody.len > 0 || (r->done && dec_cut_short(r));
  if (r->encoding == HC_ENC_DEFLATE && !r->done)
    return r->rbody.len >= 2;
  return r->rbody.len > 0;
}

/* The next piece of body for a sink (sl_client_sink_pending said there is one): the raw bytes
 * read (identity), or up to HC_SINK_PIECE bytes of them decoded. Sets *piece, valid until
 * the next read; returns its length, 0 when the pending bytes decoded to nothing more, or
 * -1 with r->err_name set (EPROTO bad data, EFBIG past max_body, ENOMEM). */
long sl_client_sink_piece(hc_req *r, const char **piece) {
  long got;
  if (r->encoding == HC_ENC_IDENTITY) {
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
  if (!r->zbatch) {
    dec_feed(r, r->rbody.p, r->rbody.len);
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
  if (got < HC_SINK_PIECE) {   /* room was left: the decoder took all the input it had */
    r->zbatch = 0;
    r->rbody.len = 0;
    if (r->done && dec_cut_short(r)) {
      dec_error(r, "the stream is cut short");
      return -1;
    }
  }
  *piece = r->zout;
  return got;
}

/* Pushes the whole decoded body of r->rbody, or returns the fail triple (EPROTO for bad
 * data, EFBIG past max_body). Returns 1 or 3. */
int sl_client_push_decoded(lua_State *L, hc_req *r) {
  luaL_Buffer B;
  size_t total = 0;
  if (sl_client_inflate_init(r, (const unsigned char *)r->rbody.p, r->rbody.len) < 0)
    return sl_fail(L, "ENOMEM", "out of memory for a decoder");
  dec_feed(r, r->rbody.p, r->rbody.len);
  luaL_buffinit(L, &B);
  for (;;) {
    size_t had = dec_avail(r);
    char *out = luaL_prepbuffsize(&B, 64 * 1024);
    long got = sl_client_inflate(r, out, 64 * 1024);
    if (got < 0)
      return sl_fail(L, r->err_name, "%s", r->err_msg);
    total += (size_t)got;      /* checked a piece at a time: a bomb stops early */
    if (total > r->lim.max_body)
      return sl_fail(L, "EFBIG", "the decoded response body from %s:%d exceeds max_body "
                     "(%I bytes)", r->host, r->port, (lua_Integer)r->lim.max_body);
    luaL_addsize(&B, (size_t)got);
    /* Room left: all input taken (or none could be: a gzip body cut short keeps what
     * decoded). A full piece may leave output inside the decoder: ask again. */
    if (got < 64 * 1024 && (dec_avail(r) == 0 || dec_avail(r) == had))
      break;
  }
  if (dec_cut_short(r)) {
    dec_error(r, "the stream is cut short");
    return sl_fail(L, r->err_name, "%s", r->err_msg);
  }
  luaL_pushresult(&B);
  return 1;
}
