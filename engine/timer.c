/* timer.c: the engine's clock and timer heap, the bottom of the core with util.c: it knows
 * nothing of tasks (an entry's owner is told through its callback; sl.sleep and sl.now are in
 * task_api.c). One uv_timer_t is armed for the earliest deadline of a binary min-heap of
 * sl_timer entries embedded in their owners, so a million sleeping tasks cost no allocation
 * each. */
#include <stdlib.h>

#include "sluice.h"

/* The loop clock: libuv's cached time would lag inside a long drain, so read hrtime. */
uint64_t sl_clock_ns(sl_engine *E) {
  (void)E;
  return uv_hrtime();
}

/* Earlier deadline first; among equal deadlines, the one armed first. */
static int heap_less(const sl_timer *a, const sl_timer *b) {
  return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_set(sl_engine *E, uint32_t i, sl_timer *tm) {
  E->heap[i] = tm;
  tm->slot = i + 1;
}

static void heap_up(sl_engine *E, uint32_t i) {
  sl_timer *tm = E->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!heap_less(tm, E->heap[parent]))
      break;
    heap_set(E, i, E->heap[parent]);
    i = parent;
  }
  heap_set(E, i, tm);
}

static void heap_down(sl_engine *E, uint32_t i) {
  sl_timer *tm = E->heap[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= E->heap_len)
      break;
    if (c + 1 < E->heap_len && heap_less(E->heap[c + 1], E->heap[c]))
      c++;
    if (!heap_less(E->heap[c], tm))
      break;
    heap_set(E, i, E->heap[c]);
    i = c;
  }
  heap_set(E, i, tm);
}

static void heap_timer_cb(uv_timer_t *h);

/* Arms (or re-arms) the single libuv timer for the heap's earliest deadline. */
static void heap_rearm(sl_engine *E) {
  uint64_t now, when, ms;
  if (E->heap_len == 0) {
    if (E->armed_for) {
      uv_timer_stop(&E->heap_timer);
      E->armed_for = 0;
    }
    return;
  }
  when = E->heap[0]->when;
  if (E->armed_for == when)
    return;
  now = sl_clock_ns(E);
  /* Round up so the timer never fires before the deadline and spins. */
  ms = when > now ? (when - now + 999999) / 1000000 : 0;
  uv_update_time(E->loop);
  uv_timer_start(&E->heap_timer, heap_timer_cb, ms, 0);
  E->armed_for = when;
}

void sl_timer_start(sl_engine *E, sl_timer *tm, double seconds) {
  if (tm->slot)
    sl_timer_stop(E, tm);
  if (!(seconds > 0))
    seconds = 0;
  if (seconds > 1e9)
    seconds = 1e9;
  tm->when = sl_clock_ns(E) + (uint64_t)(seconds * 1e9);
  tm->seq = ++E->heap_seq;
  if (E->heap_len == E->heap_cap) {
    uint32_t cap = E->heap_cap ? E->heap_cap * 2 : 64;
    sl_timer **h = (sl_timer **)realloc(E->heap, cap * sizeof(*h));
    if (h == NULL) {
      luaL_error(E->L, "out of memory growing the timer heap");
      return;
    }
    E->heap = h;
    E->heap_cap = cap;
  }
  heap_set(E, E->heap_len++, tm);
  heap_up(E, E->heap_len - 1);
  if (E->heap[0] == tm)
    heap_rearm(E);
}

void sl_timer_stop(sl_engine *E, sl_timer *tm) {
  uint32_t i;
  sl_timer *last;
  if (tm->slot == 0)
    return;
  i = tm->slot - 1;
  tm->slot = 0;
  last = E->heap[--E->heap_len];
  if (i < E->heap_len) {
    heap_set(E, i, last);
    heap_up(E, i);
    heap_down(E, last->slot - 1);
  }
  /* A removed head leaves the uv timer armed early; it fires, finds nothing, re-arms. */
  if (E->heap_len == 0)
    heap_rearm(E);
}

/* Fires every entry whose deadline has passed; callbacks only wake tasks. */
static void heap_timer_cb(uv_timer_t *h) {
  sl_engine *E = (sl_engine *)h->data;
  uint64_t now = sl_clock_ns(E);
  E->armed_for = 0;
  while (E->heap_len > 0 && E->heap[0]->when <= now) {
    sl_timer *tm = E->heap[0];
    sl_timer_stop(E, tm);
    tm->cb(tm);
  }
  heap_rearm(E);
}

int sl_timer_init(sl_engine *E) {
  int rc = uv_timer_init(E->loop, &E->heap_timer);
  E->heap_timer.data = E;
  return rc;
}

void sl_timer_shutdown(sl_engine *E) {
  free(E->heap);
  E->heap = NULL;
  E->heap_len = E->heap_cap = 0;
}
