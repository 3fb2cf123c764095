/* tcp.h: what sluice.tcp (tcp.c, tcp_listen.c) shares with the HTTP server. */
#ifndef SLUICE_TCP_H
#define SLUICE_TCP_H

#include "sluice.h"

#define SL_TCP_SOCKET_MT   "sluice.tcp.socket"
#define SL_TCP_LISTENER_MT "sluice.tcp.listener"

/* tcp_listen.c: binds h (initialised, not yet bound) to host:port and listens. host is an IP
 * address, "*" (every IPv4 address) or a name resolved synchronously (listening is rare).
 * Stores the port actually bound in *bound. Returns 0 or a negative libuv code. */
int sl_tcp_bind_listen(uv_loop_t *loop, uv_tcp_t *h, const char *host, int port,
                       int backlog, uv_connection_cb cb, int *bound);
/* tcp.c: pushes the address as a string ("127.0.0.1", "::1") and the port; 2 values. */
int sl_tcp_push_addr(lua_State *L, const struct sockaddr_storage *ss);
/* tcp.c: parses a numeric address ("*" is 0.0.0.0); returns 0 or UV_EINVAL. */
int sl_tcp_parse_ip(const char *host, int port, struct sockaddr_storage *ss);
/* tcp.c: accepts a pending connection of server and pushes it as a socket object (reading
 * already); returns 0, or a negative libuv code with nothing pushed. */
int sl_tcp_accept(lua_State *L, uv_stream_t *server);
/* tcp.c: closes the socket object at idx (idempotent). */
void sl_tcp_close(lua_State *L, int idx);
/* tcp_listen.c: adds tcp.listen and the listener type to the table at the top. */
void sl_tcp_listen_register(lua_State *L);

#endif
