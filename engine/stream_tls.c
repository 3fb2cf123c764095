/* stream_tls.c: TLS as an implementation of the stream (stream.h), OpenSSL 3 through
 * memory BIOs: the socket's bytes go into the read BIO and come out of SSL_read as the
 * plaintext the owner reads; what the owner writes goes through SSL_write into the write
 * BIO and on to the socket with sl_stream_write_raw. The owner never sees a record. Client
 * and server differ only in SSL_set_connect_state and SSL_set_accept_state; a server's
 * context (certificate, key, ALPN) is made here too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sluice.h"
#include "stream.h"

typedef struct sl_tls {
  SSL *ssl;                    /* owns both BIOs */
  BIO *rbio;                   /* ciphertext read from the socket, for OpenSSL */
  BIO *wbio;                   /* ciphertext OpenSSL produced, for the socket */
  sl_buf out;                  /* ciphertext taken from wbio for one write */
  sl_buf early;                /* plaintext written before the handshake ended */
  uint8_t handshaking;         /* on_handshake has not been called yet */
  uint8_t resumed;             /* the handshake resumed a session */
  int port;
  char host[256];              /* for messages; "" on a server stream */
  char err[384];               /* the last failure, for sl_stream_tls_error */
} sl_tls;

/* The socket's bytes are read here: OpenSSL copies them into its read BIO at once, so one
 * buffer serves every TLS stream (libuv reads one socket at a time). */
static char tls_in[64 * 1024];

/* Why the last sl_stream_tls_start failed before its stream had TLS state. */
static char setup_err[128];

/* The reason of the first error in OpenSSL's queue, or fallback. Clears the queue. */
static const char *err_reason(const char *fallback) {
  unsigned long code = ERR_peek_error();
  const char *why = code != 0 ? ERR_reason_error_string(code) : NULL;
  ERR_clear_error();
  return why != NULL ? why : fallback;
}

/* Names why a handshake or read failed: a certificate that did not verify, or the reason
 * OpenSSL gives. */
static void tls_error(sl_tls *t, int ret, const char *what) {
  int e = SSL_get_error(t->ssl, ret);
  long v = SSL_get_verify_result(t->ssl);
  unsigned long code = ERR_peek_error();
  if (t->host[0] == '\0') {                  /* a server's stream: there is no host */
    snprintf(t->err, sizeof t->err, "%s failed: %s", what,
             code != 0 ? err_reason("unknown error") :
             e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ?
             "the client closed the connection" : "unexpected TLS error");
    ERR_clear_error();
    return;
  }
  if (v != X509_V_OK && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED)
    snprintf(t->err, sizeof t->err, "certificate verify failed: %s (host %s)",
             X509_verify_cert_error_string(v), t->host);
  else if (code != 0)
    snprintf(t->err, sizeof t->err, "%s failed: %s (host %s:%d)", what,
             err_reason("unknown error"), t->host, t->port);
  else
    snprintf(t->err, sizeof t->err, "%s failed: %s (host %s:%d)", what,
             e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ?
             "the server closed the connection" : "unexpected TLS error", t->host, t->port);
  ERR_clear_error();
}

/* Sends what the write BIO holds: 1 when the kernel took all of it, 0 when some is queued,
 * or a libuv error. */
static int tls_flush(sl_stream *s) {
  sl_tls *t = (sl_tls *)s->impl_data;
  size_t n = BIO_ctrl_pending(t->wbio);
  uv_buf_t b;
  if (n == 0)
    return 1;
  t->out.len = 0;
  if (sl_buf_reserve(&t->out, n) < 0)
    return UV_ENOMEM;
  t->out.len = (size_t)BIO_read(t->wbio, t->out.p, (int)n);
  b = uv_buf_init(t->out.p, (unsigned)t->out.len);
  return sl_stream_write_raw(s, &b, 1);
}

static void tls_drain(sl_stream *s);

/* Runs the handshake on with what the read BIO holds; on_handshake once it is over. */
static void tls_handshake(sl_stream *s) {
  sl_tls *t = (sl_tls *)s->impl_data;
  int rc, e, w;
  ERR_clear_error();
  rc = SSL_do_handshake(t->ssl);
  if (rc != 1) {
    e = SSL_get_error(t->ssl, rc);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      tls_error(t, rc, "handshake");
      t->handshaking = 0;
      s->on_handshake(s, SL_STREAM_ETLS);
      return;
    }
  }
  w = tls_flush(s);
  if (w < 0) {
    t->handshaking = 0;
    s->on_handshake(s, w);
    return;
  }
  if (rc == 1) {
    t->handshaking = 0;
    t->resumed = (uint8_t)SSL_session_reused(t->ssl);
    if (t->early.len > 0) {
      uv_buf_t b = uv_buf_init(t->early.p, (unsigned)t->early.len);
      w = s->impl->write(s, &b, 1);
      sl_buf_free(&t->early);
      if (w < 0) {
        s->on_handshake(s, w);
        return;
      }
    }
    s->on_handshake(s, 0);
    /* The peer's Finished and its first data can come in one read: what is decoded
     * already is handed over now, or it would wait for bytes that may never come. */
    if (!s->closing && s->reading)
      tls_drain(s);
  }
}

/* Decrypts what the read BIO holds into the owner's buffer (lent, or the input) and hands
 * it over, until it is used up or the owner stops reading or closes. */
static void tls_drain(sl_stream *s) {
  sl_tls *t = (sl_tls *)s->impl_data;
  int w;
  while (s->want_read && !s->closing) {
    uv_buf_t b;
    int n, e;
    if (s->lend == NULL || !s->lend(s, &b))
      sl_stream_in_buf(s, &b);
    if (b.base == NULL) {
      s->on_read(s, UV_ENOBUFS, NULL);
      return;
    }
    ERR_clear_error();
    n = SSL_read(t->ssl, b.base, b.len > INT32_MAX ? INT32_MAX : (int)b.len);
    if (n <= 0) {
      e = SSL_get_error(t->ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        break;
      sl_stream_pause(s);
      if (e == SSL_ERROR_ZERO_RETURN) {      /* close_notify: the end, cleanly */
        s->rerr = UV_EOF;
        s->on_read(s, UV_EOF, NULL);
        return;
      }
      tls_error(t, n, "reading");
      s->rerr = SL_STREAM_ETLS;
      s->on_read(s, SL_STREAM_ETLS, NULL);
      return;
    }
    if (s->in != NULL && b.base == s->in + s->in_off + s->in_len)
      sl_stream_input(s, (size_t)n);
    s->on_read(s, n, b.base);
    if (s->in_hwm > 0 && s->in_len >= s->in_hwm) {
      sl_stream_pause(s);
      return;
    }
  }
  if (s->closing)
    return;
  w = tls_flush(s);            /* what reading made OpenSSL say (a key update) */
  if (w < 0)
    s->on_read(s, w, NULL);
}

static void tls_alloc(sl_stream *s, uv_buf_t *buf) {
  (void)s;
  *buf = uv_buf_init(tls_in, sizeof tls_in);
}

/* The socket's bytes: to OpenSSL, then to the handshake or the owner. The socket closed
 * without close_notify ends the stream as a plain close would. */
static void tls_read(sl_stream *s, ssize_t n, const uv_buf_t *buf) {
  sl_tls *t = (sl_tls *)s->impl_data;
  if (n < 0) {
    if (t->handshaking) {
      t->handshaking = 0;
      s->on_handshake(s, (int)n);
    } else {
      s->on_read(s, n, NULL);
    }
    return;
  }
  if (BIO_write(t->rbio, buf->base, (int)n) != (int)n) {
    snprintf(t->err, sizeof t->err, "out of memory for TLS input");
    sl_stream_pause(s);
    s->rerr = UV_ENOMEM;
    if (t->handshaking) {
      t->handshaking = 0;
      s->on_handshake(s, UV_ENOMEM);
    } else {
      s->on_read(s, UV_ENOMEM, NULL);
    }
    return;
  }
  if (t->handshaking)
    tls_handshake(s);
  else
    tls_drain(s);
}

static void tls_resume(sl_stream *s) {
  sl_tls *t = (sl_tls *)s->impl_data;
  if (!t->handshaking)
    tls_drain(s);
}

/* Encrypts bufs into the write BIO (a memory BIO takes everything at once) and sends. */
static int tls_write(sl_stream *s, const uv_buf_t *bufs, unsigned n) {
  sl_tls *t = (sl_tls *)s->impl_data;
  unsigned i;
  if (t->handshaking) {        /* a server's greeting, say: sent once the handshake ends */
    for (i = 0; i < n; i++)
      if (sl_buf_add(&t->early, bufs[i].base, bufs[i].len) < 0)
        return UV_ENOMEM;
    return 1;
  }
  ERR_clear_error();
  for (i = 0; i < n; i++)
    if (bufs[i].len > 0 && SSL_write(t->ssl, bufs[i].base, (int)bufs[i].len) <= 0) {
      ERR_clear_error();
      return UV_ENOMEM;
    }
  return tls_flush(s);
}

static void tls_free(sl_stream *s) {
  sl_tls *t = (sl_tls *)s->impl_data;
  if (t == NULL)
    return;
  /* A connection closed without close_notify would make OpenSSL mark its session not
   * resumable, and a client's saved session is that one (TLS 1.3 tickets replace it).
   * Closing a connection, even in the middle of a response, is no reason to distrust
   * its keys. */
  SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN);
  SSL_free(t->ssl);
  sl_buf_free(&t->out);
  sl_buf_free(&t->early);
  free(t);
  s->impl_data = NULL;
}

/* Sends close_notify, so that the peer can tell the end from a cut (OpenSSL 3 reports a
 * close without it as "unexpected eof"). Not during a handshake: there is nothing to end. */
static void tls_end(sl_stream *s, int now) {
  sl_tls *t = (sl_tls *)s->impl_data;
  size_t n;
  uv_buf_t b;
  if (t == NULL || t->handshaking || !SSL_is_init_finished(t->ssl) ||
      (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
    return;
  ERR_clear_error();
  SSL_shutdown(t->ssl);
  ERR_clear_error();
  if (!now) {
    tls_flush(s);
    return;
  }
  n = BIO_ctrl_pending(t->wbio);       /* one short record */
  if (n == 0 || s->writes_pending > 0) /* behind queued bytes it would be cut anyway */
    return;
  t->out.len = 0;
  if (sl_buf_reserve(&t->out, n) < 0)
    return;
  t->out.len = (size_t)BIO_read(t->wbio, t->out.p, (int)n);
  b = uv_buf_init(t->out.p, (unsigned)t->out.len);
  (void)uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
}

static const sl_stream_impl tls_impl = {tls_alloc, tls_read, tls_write, tls_resume,
                                        tls_free, tls_end};

static int is_ip(const char *host) {
  unsigned char a[16];
  return uv_inet_pton(AF_INET, host, a) == 0 || uv_inet_pton(AF_INET6, host, a) == 0;
}

int sl_stream_tls_start(sl_stream *s, void *ssl_ctx, const char *host, int port, int verify,
                        void *session) {
  sl_tls *t = (sl_tls *)calloc(1, sizeof(*t));
  int ip, ok = 1;
  if (t == NULL || (t->ssl = SSL_new((SSL_CTX *)ssl_ctx)) == NULL ||
      (t->rbio = BIO_new(BIO_s_mem())) == NULL || (t->wbio = BIO_new(BIO_s_mem())) == NULL) {
    if (t != NULL) {
      BIO_free(t->rbio);
      SSL_free(t->ssl);
      free(t);
    }
    snprintf(setup_err, sizeof setup_err, "handshake failed: %s",
             err_reason("out of memory"));
    return SL_STREAM_ETLS;
  }
  BIO_set_mem_eof_return(t->rbio, -1);  /* empty means "wait for more", not EOF */
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_app_data(t->ssl, s);
  t->port = port;
  t->handshaking = 1;
  s->impl = &tls_impl;         /* t is freed with the stream from now on */
  s->impl_data = t;
  if (host == NULL) {
    SSL_set_accept_state(t->ssl);
  } else {
    snprintf(t->host, sizeof t->host, "%s", host);
    SSL_set_connect_state(t->ssl);
    ip = is_ip(host);
    ok = ip || SSL_set_tlsext_host_name(t->ssl, host);
    if (ok && !verify)
      SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
    else if (ok && ip)
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
    else if (ok)
      ok = SSL_set1_host(t->ssl, host);
    if (ok && session != NULL)
      ok = SSL_set_session(t->ssl, (SSL_SESSION *)session);
  }
  if (!ok) {
    snprintf(t->err, sizeof t->err, "handshake failed: %s (host %s)",
             err_reason("cannot set up the connection"), t->host);
    return SL_STREAM_ETLS;
  }
  tls_handshake(s);
  return 0;
}

const char *sl_stream_tls_error(sl_stream *s) {
  sl_tls *t = (sl_tls *)s->impl_data;
  return t != NULL ? t->err : setup_err;
}

int sl_stream_tls_resumed(sl_stream *s) {
  sl_tls *t = (sl_tls *)s->impl_data;
  return t != NULL && t->resumed;
}

/* ------------------------------------------------------ server contexts */

/* ALPN: http/1.1 when the client offers it; a client offering only other protocols goes
 * on without ALPN (and finds out from the server's answers). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg) {
  static const unsigned char ours[] = "\x08http/1.1";
  unsigned char *o;
  (void)ssl;
  (void)arg;
  if (SSL_select_next_proto(&o, outlen, ours, sizeof ours - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

/* 0 when path can be opened for reading, else the reason in err. */
static int check_readable(const char *what, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err, errlen, "cannot read %s '%s': %s", what, path, strerror(errno));
    return -1;
  }
  fclose(f);
  return 0;
}

void *sl_stream_tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen) {
  SSL_CTX *ctx;
  if (check_readable("cert", cert, err, errlen) < 0 ||
      check_readable("key", key, err, errlen) < 0)
    return NULL;
  ERR_clear_error();
  ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) {
    snprintf(err, errlen, "cannot make a TLS context: %s", err_reason("out of memory"));
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);   /* idle keep-alive connections */
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  /* Session tickets are on by default (OpenSSL makes and rotates their keys); the id
   * context lets the session cache resume TLS 1.2 sessions by id too. */
  SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"sluice", 6);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
    snprintf(err, errlen, "cannot load cert '%s': %s", cert, err_reason("not a certificate"));
  else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 &&
           ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
    snprintf(err, errlen, "cannot load key '%s': %s", key, err_reason("not a private key"));
  else if (SSL_CTX_check_private_key(ctx) != 1)
    snprintf(err, errlen, "key '%s' does not match cert '%s': %s", key, cert,
             err_reason("key values mismatch"));
  else
    return ctx;
  SSL_CTX_free(ctx);
  return NULL;
}

void sl_stream_tls_ctx_free(void *ctx) {
  SSL_CTX_free((SSL_CTX *)ctx);      /* connections still open hold their own reference */
}
