/* http_client_tls.c: the HTTP client's TLS contexts: one SSL_CTX per CA source, made
 * lazily, with ALPN http/1.1 and the session callback that gives an origin its last
 * session. The connections' TLS itself is their stream's (stream_tls.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "http_client.h"
#include "sluice.h"
#include "stream.h"

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
  sl_stream *st = (sl_stream *)SSL_get_app_data(ssl);   /* stream_tls.c sets it */
  hc_conn *k = st != NULL ? (hc_conn *)st->data : NULL;
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
void *sl_client_tls_ctx(const char *ca_file, char *err, size_t errlen) {
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

void sl_client_tls_cleanup(void) {
  while (contexts != NULL) {
    ctx_entry *e = contexts;
    contexts = e->next;
    SSL_CTX_free(e->ctx);
    free(e->ca_file);
    free(e);
  }
}

void sl_client_tls_session_free(void *sess) {
  if (sess != NULL)
    SSL_SESSION_free((SSL_SESSION *)sess);
}
