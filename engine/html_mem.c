/* html_mem.c: libxml2's allocator. A tree is hundreds of small blocks (nodes, attributes,
 * texts, names) made and freed together, a page at a time; malloc keeps only 7 freed
 * blocks of a size at hand (its tcache) and sends the rest through its slower bins, which
 * cost a parse a fifth of its time. These functions are malloc's own, with freed blocks up
 * to MEM_SMALL bytes kept on lists by size (MEM_KEEP bytes at most a thread) for the next
 * tree: the loop's thread and html_async.c's parsing thread have lists of their own (other
 * threads use malloc's own). Every block is a malloc block, so memory libxml2 allocated may be freed with free()
 * and memory from malloc() with xmlFree(), as before. In sanitizer builds the blocks on the
 * lists are poisoned, so that a use after free in a tree is still caught. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/globals.h>
#include <libxml/threads.h>
#include <libxml/xmlmemory.h>

#include "sluice.h"
#include "html.h"

#if defined(__SANITIZE_ADDRESS__)
#define MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_ASAN 1
#endif
#endif
#ifdef MEM_ASAN
#include <sanitizer/asan_interface.h>
#define MEM_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define MEM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define MEM_POISON(p, n) ((void)(p), (void)(n))
#define MEM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MEM_MIN    24                    /* the smallest usable size of a malloc block */
#define MEM_STEP   16
#define MEM_LISTS  63
#define MEM_SMALL  (MEM_MIN + (MEM_LISTS - 1) * MEM_STEP)   /* 1016: larger blocks are
                                                               malloc's alone */
#define MEM_KEEP   (2u << 20)            /* bytes kept on a thread's lists */

typedef struct mem_block {
  struct mem_block *next;
} mem_block;

typedef struct mem_cache {
  mem_block *list[MEM_LISTS];  /* list[i]: blocks of at least MEM_MIN + i * MEM_STEP bytes */
  size_t kept;                 /* bytes on the lists */
} mem_cache;

/* In a global, not in thread-local storage: a leak checker finds the blocks of a global
 * (LeakSanitizer does not look into the thread-local storage of libFuzzer's runs). */
static mem_cache caches[2];
static _Thread_local mem_cache *mine;   /* this thread's, or NULL */

/* The list serving a request of n bytes (n <= MEM_SMALL): its blocks are all large enough. */
static size_t mem_list_for(size_t n) {
  return n <= MEM_MIN ? 0 : (n - MEM_MIN + MEM_STEP - 1) / MEM_STEP;
}

static void *mem_malloc(size_t n) {
  mem_cache *c = mine;
  if (n <= MEM_SMALL && c != NULL) {
    size_t i = mem_list_for(n);
    mem_block *b = c->list[i];
    if (b != NULL) {
      c->list[i] = b->next;
#ifdef MEM_ASAN
      MEM_UNPOISON(b, malloc_usable_size(b));
#endif
      c->kept -= MEM_MIN + i * MEM_STEP;
      return b;
    }
  }
  return malloc(n);
}

/* A block goes on the list of the largest size it holds (its usable size rounded down to
 * a step), so that any block on a list serves any request of that list. */
static void mem_free(void *p) {
  mem_cache *c = mine;
  size_t u, i;
  if (p == NULL)
    return;
  u = malloc_usable_size(p);
  if (u < MEM_MIN || u > MEM_SMALL || c == NULL || c->kept >= MEM_KEEP) {
    free(p);
    return;
  }
  i = (u - MEM_MIN) / MEM_STEP;
  ((mem_block *)p)->next = c->list[i];
  c->list[i] = (mem_block *)p;
  /* (not the link: LeakSanitizer follows no pointer in poisoned memory) */
  MEM_POISON((char *)p + sizeof(mem_block), u - sizeof(mem_block));
  c->kept += MEM_MIN + i * MEM_STEP;
}

/* Within malloc_usable_size the block stays; a small block that must grow moves through
 * the lists (libc's realloc would free it to malloc's bins, and the lists would fill with
 * blocks of the sizes buffers end at, never asked for by mem_malloc). */
static void *mem_realloc(void *p, size_t n) {
  size_t u;
  void *q;
  if (p == NULL)
    return mem_malloc(n);
  u = malloc_usable_size(p);
  if (u > MEM_SMALL || n > MEM_SMALL)
    return realloc(p, n);
  if (n <= u)
    return p;
  if ((q = mem_malloc(n)) == NULL)
    return NULL;
  memcpy(q, p, u);
  mem_free(p);
  return q;
}

static char *mem_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = (char *)mem_malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

/* Gives the blocks on c's lists back to malloc. */
static void mem_drain(mem_cache *c) {
  size_t i;
  for (i = 0; i < MEM_LISTS; i++) {
    while (c->list[i] != NULL) {
      mem_block *b = c->list[i];
      c->list[i] = b->next;
      free(b);
    }
  }
  c->kept = 0;
}

/* At exit, the loop thread's lists go back to malloc (leak checkers would count them as
 * lost); the parsing thread drains its own as it ends. */
static void mem_drain_main(void) {
  mem_drain(&caches[0]);
}

/* Before libxml2's first allocation, on the loop's thread (and harmless after: every block
 * is malloc's). */
void sl_html_mem_init(void) {
  static int done;
  if (!done) {
    done = 1;
    mine = &caches[0];
    xmlMemSetup(mem_free, mem_malloc, mem_realloc, mem_strdup);
    atexit(mem_drain_main);
  }
}

/* On html_async.c's parsing thread, before its first parse: libxml2 (built with
 * LIBXML_THREAD_ALLOC_ENABLED, as Debian's is) keeps an allocator per thread. end: the
 * thread ends; its lists go back to malloc. */
void sl_html_mem_thread(int end) {
  if (end) {
    mine = NULL;
    mem_drain(&caches[1]);
    return;
  }
  mine = &caches[1];
#ifdef LIBXML_THREAD_ALLOC_ENABLED
  xmlFree = mem_free;
  xmlMalloc = mem_malloc;
  xmlMallocAtomic = mem_malloc;
  xmlRealloc = mem_realloc;
  xmlMemStrdup = mem_strdup;
#endif
}
