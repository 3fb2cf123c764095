/* tcp.h: sluice.tcp's sockets (tcp.c), shared with its listeners (tcp_listen.c). */
#ifndef SLUICE_TCP_H
#define SLUICE_TCP_H

#include "sluice.h"

#define SL_TCP_SOCKET_MT   "sluice.tcp.socket"
#define SL_TCP_LISTENER_MT "sluice.tcp.listener"

/* Accepts a pending connection of server and pushes it as a socket object (reading
 * already; over TLS when tls_ctx, a server SSL_CTX, is not NULL: the handshake runs
 * while the socket is read); returns 0, or a negative libuv code with nothing pushed. */
int sl_tcp_accept(lua_State *L, uv_stream_t *server, void *tls_ctx);
/* Closes the socket object at idx (idempotent). */
void sl_tcp_close(lua_State *L, int idx);
/* Adds tcp.connect and the socket type to the module table at the top. */
void sl_tcp_register(lua_State *L);

#endif
