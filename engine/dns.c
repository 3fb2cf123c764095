/* dns.c: the engine's name cache in front of uv_getaddrinfo: answers kept for a fixed TTL,
 * a bounded number of hosts (least recently used evicted), one lookup in flight per host. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns.h"
#include "sluice.h"

#define DNS_TTL_NS      (60ull * 1000000000ull)   /* getaddrinfo gives no TTL: keep 60 s */
#define DNS_NEG_TTL_NS  (5ull * 1000000000ull)    /* a failed lookup is remembered 5 s */
#define DNS_MAX_ENTRIES 1024
#define DNS_BUCKETS     1024                      /* a power of two */

typedef struct dns_entry dns_entry;

struct dns_entry {
  dns_entry *hnext;            /* hash chain */
  sl_queue lru;                /* in dns.lru */
  uv_getaddrinfo_t req;        /* the lookup, while pending */
  uint64_t expires;            /* loop clock (ns) after which the answer is stale */
  int pending;                 /* a lookup is in flight; its waiters are listed below */
  int status;                  /* 0, or the libuv error of the last lookup */
  sl_queue waiters;            /* sl_dns_waiter.node */
  int naddrs;
  sl_addr addrs[SL_DNS_MAX_ADDRS];
  uint32_t hash;
  size_t hostlen;
  char host[];                 /* NUL-terminated */
};

/* One cache per process, like the engine itself. */
static struct {
  dns_entry *buckets[DNS_BUCKETS];
  sl_queue lru;                /* dns_entry.lru: most recently used first */
  int count;
  int shutdown;                /* the Lua state is closing: lookups finishing later only
                                  free themselves */
  uint64_t lookups, hits;      /* for tests and stats */
} dns = {.lru = {&dns.lru, &dns.lru}};

/* ------------------------------------------------------------ the table */

static dns_entry *dns_find(const char *host, size_t n, uint32_t h) {
  dns_entry *e;
  for (e = dns.buckets[h & (DNS_BUCKETS - 1)]; e != NULL; e = e->hnext)
    if (e->hash == h && e->hostlen == n && memcmp(e->host, host, n) == 0)
      return e;
  return NULL;
}

/* Takes an entry out of the table; the caller frees it (or its lookup's callback does). */
static void dns_remove(dns_entry *e) {
  dns_entry **p = &dns.buckets[e->hash & (DNS_BUCKETS - 1)];
  while (*p != NULL && *p != e)
    p = &(*p)->hnext;
  if (*p == e)
    *p = e->hnext;
  e->hnext = NULL;
  sl_queue_remove(&e->lru);
  dns.count--;
}

/* Makes room for one more host by dropping the least recently used settled answers. */
static void dns_evict(void) {
  sl_queue *q = sl_queue_tail(&dns.lru);
  while (dns.count >= DNS_MAX_ENTRIES && q != &dns.lru) {
    dns_entry *e = SL_QUEUE_DATA(q, dns_entry, lru);
    q = q->prev;
    if (!e->pending) {
      dns_remove(e);
      free(e);
    }
  }
}

/* ------------------------------------------------------------- lookups */

/* Copies up to SL_DNS_MAX_ADDRS IPv4/IPv6 stream addresses of a getaddrinfo answer. */
static void dns_store(dns_entry *e, const struct addrinfo *ai) {
  e->naddrs = 0;
  for (; ai != NULL && e->naddrs < SL_DNS_MAX_ADDRS; ai = ai->ai_next) {
    sl_addr *a = &e->addrs[e->naddrs];
    if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(a->in4))
      memcpy(&a->in4, ai->ai_addr, sizeof(a->in4));
    else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(a->in6))
      memcpy(&a->in6, ai->ai_addr, sizeof(a->in6));
    else
      continue;
    e->naddrs++;
  }
}

static void dns_fill(sl_dns_waiter *w, const dns_entry *e) {
  w->naddrs = e->naddrs;
  memcpy(w->addrs, e->addrs, sizeof(sl_addr) * (size_t)e->naddrs);
}

/* UV_EMFILE or UV_ENFILE when the process (or system) has no file descriptor left, else 0.
 * glibc's getaddrinfo reports a name as unknown (EAI_NONAME) when it cannot open
 * /etc/hosts or a socket to the resolver, so a lookup started or failed while descriptors
 * ran out must say so itself: that failure is transient, and neither cached nor final. */
static int dns_out_of_fds(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return errno == EMFILE ? UV_EMFILE : errno == ENFILE ? UV_ENFILE : 0;
}

/* Whether a failed lookup's answer may be cached: a name that does not exist or has no
 * address does not change in seconds; a resolver that was busy, short of memory or of
 * descriptors may answer the next time. */
static int dns_lasting(int status) {
  return status == UV_EAI_NONAME || status == UV_EAI_NODATA || status == UV_EAI_ADDRFAMILY ||
         status == UV_EAI_FAMILY || status == UV_EAI_SERVICE;
}

/* A lookup finished on libuv's thread pool: settle the entry and tell every waiter. Each
 * waiter is unlinked before its callback, which may start other lookups or cancel others. */
static void dns_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  dns_entry *e = (dns_entry *)req->data;
  sl_dns_waiter *w;
  e->pending = 0;
  if (dns.shutdown) {
    uv_freeaddrinfo(res);
    free(e);
    return;
  }
  if (status == 0) {
    dns_store(e, res);
    if (e->naddrs == 0)
      status = UV_EAI_ADDRFAMILY;
  }
  uv_freeaddrinfo(res);
  if (status != 0 && status != UV_ECANCELED) {
    int fds = dns_out_of_fds();
    if (fds != 0)
      status = fds;
  }
  e->status = status;
  e->expires = uv_hrtime();
  if (status == 0)
    e->expires += DNS_TTL_NS;
  else if (dns_lasting(status))
    e->expires += DNS_NEG_TTL_NS;
  while (!sl_queue_empty(&e->waiters)) {
    w = SL_QUEUE_DATA(sl_queue_head(&e->waiters), sl_dns_waiter, node);
    sl_queue_remove(&w->node);
    w->entry = NULL;
    if (status == 0)
      dns_fill(w, e);
    w->cb(w, status);
  }
}

static void waiter_link(dns_entry *e, sl_dns_waiter *w) {
  w->entry = e;
  sl_queue_insert_head(&e->waiters, &w->node);
}

/* Resolves host (NUL-terminated, lower case). Returns 0 with w->addrs filled when the answer
 * is known now (a numeric address or a fresh cache entry), 1 when w->cb will be called
 * from the loop later, or a negative libuv error known now. */
int sl_dns_resolve(sl_engine *E, const char *host, sl_dns_waiter *w) {
  size_t n = strlen(host);
  uint32_t h;
  dns_entry *e;
  struct addrinfo hints;
  int rc;
  w->entry = NULL;
  sl_queue_init(&w->node);
  w->naddrs = 0;
  if (uv_inet_pton(AF_INET, host, &w->addrs[0].in4.sin_addr) == 0) {
    w->addrs[0].in4.sin_family = AF_INET;
    w->naddrs = 1;
    return 0;
  }
  if (uv_inet_pton(AF_INET6, host, &w->addrs[0].in6.sin6_addr) == 0) {
    w->addrs[0].in6.sin6_family = AF_INET6;
    w->naddrs = 1;
    return 0;
  }
  h = sl_fnv1a(SL_FNV_BASIS, host, n);
  e = dns_find(host, n, h);
  if (e != NULL) {
    sl_queue_remove(&e->lru);
    sl_queue_insert_head(&dns.lru, &e->lru);
    if (e->pending) {
      waiter_link(e, w);
      return 1;
    }
    if (uv_hrtime() < e->expires) {
      dns.hits++;
      if (e->status != 0)
        return e->status;
      dns_fill(w, e);
      return 0;
    }
  } else {
    dns_evict();
    e = (dns_entry *)calloc(1, sizeof(*e) + n + 1);
    if (e == NULL)
      return UV_ENOMEM;
    memcpy(e->host, host, n + 1);
    e->hostlen = n;
    e->hash = h;
    sl_queue_init(&e->waiters);
    e->hnext = dns.buckets[h & (DNS_BUCKETS - 1)];
    dns.buckets[h & (DNS_BUCKETS - 1)] = e;
    sl_queue_insert_head(&dns.lru, &e->lru);
    dns.count++;
  }
  rc = dns_out_of_fds();   /* the lookup could only fail, and say EAI_NONAME */
  if (rc == 0) {
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    e->req.data = e;
    rc = uv_getaddrinfo(E->loop, &e->req, dns_cb, e->host, NULL, &hints);
  }
  if (rc < 0) {
    dns_remove(e);
    free(e);
    return rc;
  }
  dns.lookups++;
  e->pending = 1;
  waiter_link(e, w);
  return 1;
}

/* Stops waiting for a lookup (the lookup itself goes on and fills the cache). */
void sl_dns_cancel(sl_dns_waiter *w) {
  dns_entry *e = (dns_entry *)w->entry;
  if (e == NULL)
    return;
  sl_queue_remove(&w->node);
  w->entry = NULL;
}

/* ------------------------------------------------------------- shutdown */

/* __gc of the sentinel anchored in the registry: the Lua state is closing. Settled entries
 * are freed now; lookups still in flight free themselves when libuv finishes them. */
static int dns_gc(lua_State *L) {
  int i;
  (void)L;
  dns.shutdown = 1;
  for (i = 0; i < DNS_BUCKETS; i++) {
    dns_entry *e = dns.buckets[i], *next;
    for (; e != NULL; e = next) {
      next = e->hnext;
      if (!e->pending) {
        free(e);
        continue;
      }
      while (!sl_queue_empty(&e->waiters)) {   /* told nothing: the state is going */
        sl_dns_waiter *w = SL_QUEUE_DATA(sl_queue_head(&e->waiters), sl_dns_waiter, node);
        sl_queue_remove(&w->node);
        w->entry = NULL;
      }
    }
    dns.buckets[i] = NULL;
  }
  sl_queue_init(&dns.lru);
  dns.count = 0;
  return 0;
}

static char dns_sentinel_key;

/* Makes sure the cache is freed when the Lua state closes; idempotent. */
void sl_dns_init(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &dns_sentinel_key) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, dns_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &dns_sentinel_key);
  dns.shutdown = 0;
}

/* Counters: lookups started, answers served from the cache, hosts cached. */
void sl_dns_stats(uint64_t *lookups, uint64_t *hits, int *cached) {
  *lookups = dns.lookups;
  *hits = dns.hits;
  *cached = dns.count;
}
