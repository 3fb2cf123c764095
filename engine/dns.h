/* dns.h: the name cache (dns.c) that the HTTP client and sluice.tcp resolve through. */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include "sluice.h"

/* DNS cache (dns.c): uv_getaddrinfo behind a cache (answers kept 60 s, failures 5 s, at
 * most 1024 hosts, one lookup in flight per host). Numeric addresses resolve at once. */
#define SL_DNS_MAX_ADDRS 4

typedef union sl_addr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} sl_addr;

/* A resolver's wait for a lookup, embedded in whoever waits (an HTTP request, a socket). */
typedef struct sl_dns_waiter sl_dns_waiter;
struct sl_dns_waiter {
  sl_queue node;               /* in the lookup's list of waiters */
  void *entry;                 /* the lookup waited on; NULL when not waiting */
  void (*cb)(sl_dns_waiter *w, int status); /* the answer (status 0) or a libuv error */
  int naddrs;                  /* the answer: addresses with port 0 */
  sl_addr addrs[SL_DNS_MAX_ADDRS];
};

void sl_dns_init(lua_State *L);
int sl_dns_resolve(sl_engine *E, const char *host, sl_dns_waiter *w);
void sl_dns_cancel(sl_dns_waiter *w);
void sl_dns_stats(uint64_t *lookups, uint64_t *hits, int *cached);

#endif
