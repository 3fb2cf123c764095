/* seen.c: url.seen_set, the crawler's "have I queued this URL?" set of 64-bit fingerprints:
 * an exact hash table in 64 segments (at most 16 bytes an element) or a Bloom filter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sluice.h"
#include "url.h"

enum { SEEN_EXACT, SEEN_BLOOM };

/* The exact table is split in 2^SEEN_SEGMENT_BITS segments that grow one at a time, so a
 * growth never needs more than about 1/64 of the table's memory twice over. */
#define SEEN_SEGMENT_BITS 6
#define SEEN_SEGMENTS (1 << SEEN_SEGMENT_BITS)

typedef struct seen_segment {
  uint64_t *slots;             /* 0 = empty; from exact_alloc */
  size_t cap;                  /* slots */
  size_t count;                /* elements */
  size_t max_load;             /* the count past which the segment grows */
} seen_segment;

typedef struct seen_set {
  uint64_t *words;             /* bloom: the bit array */
  size_t cap;                  /* bloom: 64-bit words */
  size_t count;                /* exact: elements; bloom: adds that returned true */
  size_t bytes;                /* exact: the bytes of all segment arrays */
  uint64_t nbits;              /* bloom: m, the bits in use (<= 64 * cap) */
  int k;                       /* bloom: bits set per element */
  int kind;
  seen_segment seg[];          /* exact only: SEEN_SEGMENTS of them */
} seen_set;

/* Segment arrays of at least seen_mmap_min bytes are mapped, in whole pages; both are set
 * from the system's page size when the module is registered. Such an array spans at least
 * 16 pages, so rounding its size down to pages takes less than 1/16 off. */
static size_t seen_page = 4096;
static size_t seen_mmap_min = 65536;

__extension__ typedef unsigned __int128 seen_u128;

/* Maps a uniformly spread 64-bit h onto [0, n) with a multiply instead of a division
 * (Lemire's fast range reduction), so capacities need not be powers of two. */
static uint64_t seen_range(uint64_t h, uint64_t n) {
  return (uint64_t)(((seen_u128)h * n) >> 64);
}

static seen_set *check_seen(lua_State *L) {
  return (seen_set *)luaL_checkudata(L, 1, SL_URL_SEEN_SET_MT);
}

/* The element at idx: an integer is a fingerprint itself, a string is fingerprinted. 0 is
 * the exact table's empty-slot mark, so it is stored as 1. */
static uint64_t seen_key(lua_State *L, int idx) {
  uint64_t key;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    key = sl_url_hash(s, n);
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    key = (uint64_t)luaL_checkinteger(L, idx);
  } else {
    return (uint64_t)luaL_typeerror(L, idx, "integer or string");
  }
  return key != 0 ? key : 1;
}

/* ------------------------------------------------------------ exact table */

/* The slot holding key, or the empty slot where it would go; h is the key mixed again
 * (callers may pass small sequential integers as fingerprints). Its top bits chose the
 * segment, so the range reduction uses the bits below them. */
static size_t exact_find(const uint64_t *slots, size_t cap, uint64_t key, uint64_t h) {
  size_t i = (size_t)seen_range(h << SEEN_SEGMENT_BITS, cap);
  while (slots[i] != 0 && slots[i] != key)
    if (++i == cap)
      i = 0;
  return i;
}

/* The slots an array for about `slots` slots really gets: an mmap'ed one fills whole pages,
 * rounded down when growing (so 16 bytes an element still holds) and up when presizing. */
static size_t exact_fit(size_t slots, int round_up) {
  size_t per_page = seen_page / sizeof(uint64_t);
  if (slots * sizeof(uint64_t) < seen_mmap_min)
    return slots;
  return (round_up ? slots + per_page - 1 : slots) / per_page * per_page;
}

/* A zeroed array of cap slots, or NULL. Big arrays are mapped, so that freeing one hands
 * its pages back to the kernel at once instead of leaving a hole in the heap. */
static uint64_t *exact_alloc(size_t cap) {
  void *p;
  if (cap * sizeof(uint64_t) < seen_mmap_min)
    return (uint64_t *)calloc(cap, sizeof(uint64_t));
  p = mmap(NULL, cap * sizeof(uint64_t), PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : (uint64_t *)p;
}

/* Frees an array made by exact_alloc; cap tells which way it was made. */
static void exact_free(uint64_t *slots, size_t cap) {
  if (slots == NULL)
    return;
  if (cap * sizeof(uint64_t) < seen_mmap_min)
    free(slots);
  else
    munmap(slots, cap * sizeof(uint64_t));
}

/* Moves every key of one segment into a new array of cap slots (cap from exact_fit).
 * Raises, leaving the set as it was, when the memory cannot be had. */
static void exact_resize(lua_State *L, seen_set *s, seen_segment *g, size_t cap) {
  uint64_t *slots;
  size_t i;
  if (cap > ((size_t)-1) / sizeof(uint64_t) || (slots = exact_alloc(cap)) == NULL) {
    luaL_error(L, "not enough memory");
    return;
  }
  for (i = 0; i < g->cap; i++) {
    uint64_t key = g->slots[i];
    if (key != 0)
      slots[exact_find(slots, cap, key, sl_url_mix(key))] = key;
  }
  exact_free(g->slots, g->cap);
  s->bytes = s->bytes - g->cap * sizeof(uint64_t) + cap * sizeof(uint64_t);
  g->slots = slots;
  g->cap = cap;
  g->max_load = cap / 4 * 3 + cap % 4 * 3 / 4;   /* floor(0.75 cap) without overflow */
}

/* Adds key; returns 1 if it was new. The table is SEEN_SEGMENTS independent segments, the
 * top bits of the mixed key choosing one. A segment full to 0.75 is rebuilt alone with
 * twice as many slots as it will then hold elements (about 1.5 times as many as before;
 * a mapped array rounded down to whole pages): its load is 0.5 (at most 0.54) right after
 * a growth and at most 0.75, so 8-byte slots cost 10.7 to 16 bytes an element, and a
 * growth needs one segment's old and new arrays at once, about 1/64 of the whole. */
static int exact_add(lua_State *L, seen_set *s, uint64_t key) {
  uint64_t h = sl_url_mix(key);
  seen_segment *g = &s->seg[h >> (64 - SEEN_SEGMENT_BITS)];
  size_t i = 0;
  if (g->cap > 0) {
    i = exact_find(g->slots, g->cap, key, h);
    if (g->slots[i] == key)
      return 0;
  }
  if (g->count >= g->max_load) {
    exact_resize(L, s, g, exact_fit(2 * (g->count + 1), 0));
    i = exact_find(g->slots, g->cap, key, h);
  }
  g->slots[i] = key;
  g->count++;
  s->count++;
  return 1;
}

static int exact_has(const seen_set *s, uint64_t key) {
  uint64_t h = sl_url_mix(key);
  const seen_segment *g = &s->seg[h >> (64 - SEEN_SEGMENT_BITS)];
  return g->cap > 0 && g->slots[exact_find(g->slots, g->cap, key, h)] == key;
}

/* Gives every segment room for its share of n elements without growing: the share is
 * binomial, so it gets n/64 plus 4.5 standard deviations and a few, then 4/3 of that in
 * slots. Raises like exact_resize (the segments made so far are freed by __gc). */
static void exact_reserve(lua_State *L, seen_set *s, double n) {
  double share = n / SEEN_SEGMENTS, want = share + 4.5 * sqrt(share) + 4;
  double slots = ceil(want / 0.75) + 1;
  int j;
  if (slots > 0x1p58)        /* far past any memory; and keeps the size_t maths exact */
    luaL_error(L, "not enough memory");
  for (j = 0; j < SEEN_SEGMENTS; j++)
    exact_resize(L, s, &s->seg[j], exact_fit((size_t)slots, 1));
}

static void exact_clear(seen_set *s) {
  int j;
  for (j = 0; j < SEEN_SEGMENTS; j++) {
    exact_free(s->seg[j].slots, s->seg[j].cap);
    memset(&s->seg[j], 0, sizeof s->seg[j]);
  }
  s->bytes = 0;
}

/* ------------------------------------------------------------ Bloom filter */

/* Double hashing (Kirsch and Mitzenmacher): bit i of an element is h1 + i*h2, with h2 odd
 * so the k positions differ; both come from independent mixes of the fingerprint. Returns 1
 * if some bit was clear (the element is new), setting the bits when set_bits is true. */
static int bloom_probe(seen_set *s, uint64_t key, int set_bits) {
  uint64_t h1 = sl_url_mix(key), h2 = sl_url_mix(key ^ UINT64_C(0x5851f42d4c957f2d)) | 1;
  int i, fresh = 0;
  for (i = 0; i < s->k; i++) {
    uint64_t bit = seen_range(h1, s->nbits);
    uint64_t mask = UINT64_C(1) << (bit & 63);
    if ((s->words[bit >> 6] & mask) == 0) {
      fresh = 1;
      if (!set_bits)
        return 1;
      s->words[bit >> 6] |= mask;
    }
    h1 += h2;
  }
  return fresh;
}

/* Sizes the filter for n elements at false-positive rate p: m = -n ln p / (ln 2)^2 bits and
 * k = round(m/n ln 2) bits per element. */
static void bloom_init(lua_State *L, seen_set *s, double n, double p) {
  double m = ceil(-n * log(p) / (M_LN2 * M_LN2));
  size_t words;
  if (m > 0x1p46)              /* 8 TiB: a typo, not a plan */
    luaL_error(L, "not enough memory");
  words = (size_t)((m + 63) / 64);
  s->k = (int)lround(m / n * M_LN2);
  if (s->k < 1)
    s->k = 1;
  if ((s->words = (uint64_t *)calloc(words, sizeof(uint64_t))) == NULL)
    luaL_error(L, "not enough memory");
  s->cap = words;
  s->nbits = (uint64_t)m;
}

/* ------------------------------------------------------------ Lua API */

static double seen_opt_number(lua_State *L, const char *field, double dflt) {
  double v;
  lua_getfield(L, 1, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dflt;
  }
  if (!lua_isnumber(L, -1))
    luaL_error(L, "bad option '%s' (number expected, got %s)", field, luaL_typename(L, -1));
  v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* url.seen_set([opts]) -> set. The userdata is made empty and valid first, so a failed
 * allocation leaves only garbage for __gc. */
static int seen_new(lua_State *L) {
  static const char *const kinds[] = {"exact", "bloom", NULL};
  seen_set *s;
  int kind = SEEN_EXACT;
  double capacity = -1, fp_rate;
  size_t size;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "kind");
    kind = lua_isnil(L, -1) ? SEEN_EXACT : luaL_checkoption(L, -1, NULL, kinds);
    lua_pop(L, 1);
    capacity = seen_opt_number(L, "capacity", -1);
    if (capacity != -1 && !(capacity >= 1 && capacity <= 0x1p53))
      luaL_error(L, "bad option 'capacity' (a count of at least 1 expected)");
  }
  fp_rate = lua_istable(L, 1) ? seen_opt_number(L, "fp_rate", 1e-6) : 1e-6;
  if (!(fp_rate > 0 && fp_rate < 1))
    luaL_error(L, "bad option 'fp_rate' (a number between 0 and 1 expected)");
  size = sizeof *s + (kind == SEEN_EXACT ? SEEN_SEGMENTS * sizeof s->seg[0] : 0);
  s = (seen_set *)lua_newuserdatauv(L, size, 0);
  memset(s, 0, size);
  s->kind = kind;
  luaL_setmetatable(L, SL_URL_SEEN_SET_MT);
  if (kind == SEEN_BLOOM)
    bloom_init(L, s, capacity > 0 ? floor(capacity) : 1e6, fp_rate);
  else if (capacity > 0)
    exact_reserve(L, s, floor(capacity));
  return 1;
}

/* set:add(x) -> true if x was not in the set (it is now), false if it was. */
static int seen_add(lua_State *L) {
  seen_set *s = check_seen(L);
  uint64_t key = seen_key(L, 2);
  int fresh;
  if (s->kind == SEEN_BLOOM) {
    fresh = bloom_probe(s, key, 1);
    s->count += (size_t)fresh;
  } else {
    fresh = exact_add(L, s, key);
  }
  lua_pushboolean(L, fresh);
  return 1;
}

/* set:has(x) -> boolean */
static int seen_has(lua_State *L) {
  seen_set *s = check_seen(L);
  uint64_t key = seen_key(L, 2);
  lua_pushboolean(L, s->kind == SEEN_BLOOM ? !bloom_probe(s, key, 0) : exact_has(s, key));
  return 1;
}

static int seen_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_seen(L)->count);
  return 1;
}

/* set:bytes() -> the bytes of the segment arrays or the bit array now */
static int seen_bytes(lua_State *L) {
  seen_set *s = check_seen(L);
  size_t bytes = s->kind == SEEN_BLOOM ? s->cap * sizeof(uint64_t) : s->bytes;
  lua_pushinteger(L, (lua_Integer)bytes);
  return 1;
}

static int seen_kind(lua_State *L) {
  lua_pushstring(L, check_seen(L)->kind == SEEN_BLOOM ? "bloom" : "exact");
  return 1;
}

static int seen_gc(lua_State *L) {
  seen_set *s = check_seen(L);
  if (s->kind == SEEN_EXACT)
    exact_clear(s);
  free(s->words);
  s->words = NULL;
  s->cap = s->count = 0;
  return 0;
}

static int seen_tostring(lua_State *L) {
  seen_set *s = check_seen(L);
  lua_pushfstring(L, "sluice.url.seen_set (%s, %I elements)",
                  s->kind == SEEN_BLOOM ? "bloom" : "exact", (lua_Integer)s->count);
  return 1;
}

void sl_seen_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"add", seen_add},
    {"has", seen_has},
    {"count", seen_count},
    {"bytes", seen_bytes},
    {"kind", seen_kind},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__len", seen_count},
    {"__gc", seen_gc},
    {"__tostring", seen_tostring},
    {NULL, NULL}
  };
  long page = sysconf(_SC_PAGESIZE);
  if (page > 0 && (page & (page - 1)) == 0) {
    seen_page = (size_t)page;
    seen_mmap_min = 16 * seen_page > 65536 ? 16 * seen_page : 65536;
  }
  sl_newmeta(L, SL_URL_SEEN_SET_MT, methods, meta);
  lua_pushcfunction(L, seen_new);
  lua_setfield(L, -2, "seen_set");
}
