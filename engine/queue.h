/* queue.h: the engine's one intrusive doubly linked list (libuv's queue.h idea).
 *
 * A list is a circular ring through a head node that belongs to the owner; an element
 * embeds a node and is found from it with SL_QUEUE_DATA. Because the ring has no ends,
 * unlinking needs only the node, never the list it is in. A removed node points to itself,
 * so removing it again, or removing a node that was initialised and never inserted, does
 * nothing. Every head and every node is initialised (sl_queue_init) before use: a zeroed
 * node is not an empty one. */
#ifndef SL_QUEUE_H
#define SL_QUEUE_H

#include <stddef.h>

typedef struct sl_queue sl_queue;
struct sl_queue {
  sl_queue *next, *prev;
};

/* The struct of type `type` whose member `field` is at `ptr` (a node, a timer...). */
#define SL_CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr) - offsetof(type, field)))

/* The element of type `type` whose node member `field` is the node `ptr`. */
#define SL_QUEUE_DATA(ptr, type, field) SL_CONTAINER_OF(ptr, type, field)

/* Visits every node of the list at h, first to last; the loop body must not remove q
 * (take the next node first, or pop from the head, to remove while walking). */
#define SL_QUEUE_FOREACH(q, h) for ((q) = (h)->next; (q) != (h); (q) = (q)->next)
#define SL_QUEUE_FOREACH_REVERSE(q, h) for ((q) = (h)->prev; (q) != (h); (q) = (q)->prev)
/* The same, where the body may remove q (n holds the node after it). */
#define SL_QUEUE_FOREACH_SAFE(q, n, h) \
  for ((q) = (h)->next, (n) = (q)->next; (q) != (h); (q) = (n), (n) = (q)->next)

static inline void sl_queue_init(sl_queue *q) {
  q->next = q->prev = q;
}

static inline int sl_queue_empty(const sl_queue *h) {
  return h->next == h;
}

/* A node is linked when it sits in some list (it is not its own ring). */
static inline int sl_queue_linked(const sl_queue *q) {
  return q->next != q;
}

static inline sl_queue *sl_queue_head(const sl_queue *h) {
  return h->next;              /* h itself when the list is empty */
}

static inline sl_queue *sl_queue_tail(const sl_queue *h) {
  return h->prev;
}

static inline void sl_queue_insert_head(sl_queue *h, sl_queue *q) {
  q->next = h->next;
  q->prev = h;
  h->next->prev = q;
  h->next = q;
}

static inline void sl_queue_insert_tail(sl_queue *h, sl_queue *q) {
  q->next = h;
  q->prev = h->prev;
  h->prev->next = q;
  h->prev = q;
}

static inline void sl_queue_remove(sl_queue *q) {
  q->prev->next = q->next;
  q->next->prev = q->prev;
  q->next = q->prev = q;
}

#endif
