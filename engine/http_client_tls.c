/* http_client_tls.c: TLS for the HTTP client, OpenSSL 3 through memory BIOs: the engine's
 * own connection code moves ciphertext between the socket and the BIOs (http_client_conn.c),
 * and this file turns it into plaintext and back. One SSL_CTX per CA source, made lazily. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "http_client.h"
#include "sluice.h"

struct hc_tls {
  SSL *ssl;                    /* owns both BIOs */
  BIO *rbio;                   /* ciphertext read from the socket, for OpenSSL */
  BIO *wbio;                   /* ciphertext OpenSSL produced, for the socket */
  sl_buf out;                  /* ciphertext being written (one uv_write at a time) */
};

/* The contexts made so far: one for the system's CAs (ca_file NULL), one per ca_file.
 * Loading a CA store costs tens of milliseconds, so each is loaded once per process. */
typedef struct ctx_entry {
  struct ctx_entry *next;
  char *ca_file;               /* NULL for the default verify paths */
  SSL_CTX *ctx;
} ctx_entry;

static ctx_entry *contexts;

/* ------------------------------------------------------------- contexts */

/* OpenSSL hands over a new session (in TLS 1.3 after the handshake, with the tickets): the
 * connection's origin keeps the last one for the next connection. Returns 1 when kept
 * (the origin owns it then), 0 to let OpenSSL free it. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess) {
  hc_conn *k = (hc_conn *)SSL_get_app_data(ssl);
  hc_origin *o = k != NULL ? k->origin : NULL;
  if (o == NULL)
    return 0;
  if (o->sess != NULL)
    SSL_SESSION_free((SSL_SESSION *)o->sess);
  o->sess = sess;
  return 1;
}

/* The reason of the first error in OpenSSL's queue, or fallback. Clears the queue. */
static const char *err_reason(const char *fallback) {
  unsigned long code = ERR_peek_error();
  const char *why = code != 0 ? ERR_reason_error_string(code) : NULL;
  ERR_clear_error();
  return why != NULL ? why : fallback;
}

static SSL_CTX *ctx_new(const char *ca_file, char *err, size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  int ok;
  if (ctx == NULL) {
    snprintf(err, errlen, "cannot make a TLS context: %s", err_reason("out of memory"));
    return NULL;
  }
  /* Buffers are released while a connection is idle: a pool of a thousand kept-alive
   * connections does not hold 34 KB of buffers each. */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                      SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
  ok = SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9) == 0;
  if (ok)
    ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                         : SSL_CTX_set_default_verify_paths(ctx);
  if (!ok) {
    if (ca_file != NULL)
      snprintf(err, errlen, "cannot load ca_file '%s': %s", ca_file,
               err_reason("no certificates"));
    else
      snprintf(err, errlen, "cannot load the system's CA certificates: %s",
               err_reason("unknown error"));
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

/* The context for ca_file (NULL: the system's CAs), made on first use and kept until the
 * module is collected. NULL on failure, with the reason in err. */
void *hc_tls_ctx(const char *ca_file, char *err, size_t errlen) {
  ctx_entry *e;
  for (e = contexts; e != NULL; e = e->next)
    if (ca_file == NULL ? e->ca_file == NULL
                        : e->ca_file != NULL && strcmp(e->ca_file, ca_file) == 0)
      return e->ctx;
  e = (ctx_entry *)calloc(1, sizeof(*e));
  if (e == NULL || (ca_file != NULL && (e->ca_file = strdup(ca_file)) == NULL)) {
    free(e);
    snprintf(err, errlen, "out of memory for a TLS context");
    return NULL;
  }
  e->ctx = ctx_new(ca_file, err, errlen);
  if (e->ctx == NULL) {
    free(e->ca_file);
    free(e);
    return NULL;
  }
  e->next = contexts;
  contexts = e;
  return e->ctx;
}

void hc_tls_cleanup(void) {
  while (contexts != NULL) {
    ctx_entry *e = contexts;
    contexts = e->next;
    SSL_CTX_free(e->ctx);
    free(e->ca_file);
    free(e);
  }
}

void hc_tls_session_free(void *sess) {
  if (sess != NULL)
    SSL_SESSION_free((SSL_SESSION *)sess);
}

/* ---------------------------------------------------------- connections */

static int is_ip(const char *host) {
  unsigned char a[16];
  return uv_inet_pton(AF_INET, host, a) == 0 || uv_inet_pton(AF_INET6, host, a) == 0;
}

/* Makes the TLS state of k, a new connection of an https origin: SNI (names only), the
 * name or address the certificate must match, ALPN, and the origin's last session. */
int hc_tls_start(hc_conn *k, hc_req *r) {
  hc_origin *o = k->origin;
  hc_tls *t = (hc_tls *)calloc(1, sizeof(*t));
  int ip = is_ip(r->host), ok;
  if (t == NULL || (t->ssl = SSL_new((SSL_CTX *)o->tls_ctx)) == NULL ||
      (t->rbio = BIO_new(BIO_s_mem())) == NULL || (t->wbio = BIO_new(BIO_s_mem())) == NULL) {
    if (t != NULL) {
      BIO_free(t->rbio);
      SSL_free(t->ssl);
      free(t);
    }
    snprintf(r->err_msg, sizeof r->err_msg, "handshake failed: %s",
             err_reason("out of memory"));
    return -1;
  }
  BIO_set_mem_eof_return(t->rbio, -1);  /* empty means "wait for more", not EOF */
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_connect_state(t->ssl);
  SSL_set_app_data(t->ssl, k);
  k->tls = t;                  /* freed with the connection from now on */
  ok = ip || SSL_set_tlsext_host_name(t->ssl, r->host);
  if (ok && o->tls_noverify)
    SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
  else if (ok && ip)
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), r->host);
  else if (ok)
    ok = SSL_set1_host(t->ssl, r->host);
  if (ok && o->sess != NULL)
    ok = SSL_set_session(t->ssl, (SSL_SESSION *)o->sess);
  if (!ok) {
    snprintf(r->err_msg, sizeof r->err_msg, "handshake failed: %s (host %s)",
             err_reason("cannot set up the connection"), r->host);
    return -1;
  }
  return 0;
}

/* Names why a handshake or read failed: a certificate that did not verify, or the
 * reason OpenSSL gives. */
static void tls_error(hc_req *r, SSL *ssl, int ret, const char *what) {
  int e = SSL_get_error(ssl, ret);
  long v = SSL_get_verify_result(ssl);
  unsigned long code = ERR_peek_error();
  if (v != X509_V_OK && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED)
    snprintf(r->err_msg, sizeof r->err_msg, "certificate verify failed: %s (host %s)",
             X509_verify_cert_error_string(v), r->host);
  else if (code != 0)
    snprintf(r->err_msg, sizeof r->err_msg, "%s failed: %s (host %s:%d)", what,
             err_reason("unknown error"), r->host, r->port);
  else
    snprintf(r->err_msg, sizeof r->err_msg, "%s failed: %s (host %s:%d)", what,
             e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ?
             "the server closed the connection" : "unexpected TLS error", r->host, r->port);
  ERR_clear_error();
}

/* Runs the handshake on with what the read BIO holds; its output waits in the write BIO. */
int hc_tls_handshake(hc_conn *k, hc_req *r) {
  SSL *ssl = k->tls->ssl;
  int rc, e;
  ERR_clear_error();
  rc = SSL_do_handshake(ssl);
  if (rc == 1) {
    r->tls_resumed = (uint8_t)SSL_session_reused(ssl);
    return 1;
  }
  e = SSL_get_error(ssl, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  tls_error(r, ssl, rc, "handshake");
  return -1;
}

int hc_tls_feed(hc_tls *t, const char *data, size_t n) {
  return BIO_write(t->rbio, data, (int)n) == (int)n ? 0 : -1;
}

/* Decrypts into buf: the byte count, 0 when more ciphertext is needed, HC_TLS_CLOSED at
 * the server's close_notify, HC_TLS_ERROR otherwise. */
long hc_tls_read(hc_tls *t, hc_req *r, char *buf, size_t len) {
  int n, e;
  ERR_clear_error();
  n = SSL_read(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
  if (n > 0)
    return n;
  e = SSL_get_error(t->ssl, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  if (e == SSL_ERROR_ZERO_RETURN)
    return HC_TLS_CLOSED;
  tls_error(r, t->ssl, n, "reading");
  return HC_TLS_ERROR;
}

/* Encrypts bufs into the write BIO (a memory BIO takes everything at once). */
int hc_tls_encrypt(hc_tls *t, const uv_buf_t *bufs, unsigned n) {
  unsigned i;
  ERR_clear_error();
  for (i = 0; i < n; i++)
    if (bufs[i].len > 0 && SSL_write(t->ssl, bufs[i].base, (int)bufs[i].len) <= 0) {
      ERR_clear_error();
      return -1;
    }
  return 0;
}

/* Moves what the write BIO holds into t->out for the socket; the caller writes it before
 * asking again. Returns 1 with the bytes in *out, 0 when there are none, -1 when out of
 * memory. */
int hc_tls_output(hc_tls *t, uv_buf_t *out) {
  size_t n = BIO_ctrl_pending(t->wbio);
  if (n == 0)
    return 0;
  t->out.len = 0;
  if (sl_buf_reserve(&t->out, n) < 0)
    return -1;
  t->out.len = (size_t)BIO_read(t->wbio, t->out.p, (int)n);
  *out = uv_buf_init(t->out.p, (unsigned)t->out.len);
  return t->out.len > 0;
}

void hc_tls_free(hc_tls *t) {
  if (t == NULL)
    return;
  /* A connection closed without close_notify would make OpenSSL mark its session not
   * resumable, and the origin's session is that one (TLS 1.3 tickets replace it). Closing
   * a connection, even in the middle of a response, is no reason to distrust its keys. */
  SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN);
  SSL_free(t->ssl);
  sl_buf_free(&t->out);
  free(t);
}
