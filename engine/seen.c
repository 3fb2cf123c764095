/* seen.c: url.seen_set, the crawler's "have I queued this URL?" set of 64-bit fingerprints:
 * an exact open-addressing table (at most 16 bytes an element) or a Bloom filter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { SEEN_EXACT, SEEN_BLOOM };

typedef struct seen_set {
  uint64_t *words;             /* exact: slots (0 = empty); bloom: the bit array */
  size_t cap;                  /* exact: slots; bloom: 64-bit words */
  size_t count;                /* exact: elements; bloom: adds that returned true */
  size_t max_load;             /* exact: the count past which the table grows */
  uint64_t nbits;              /* bloom: m, the bits in use (<= 64 * cap) */
  int k;                       /* bloom: bits set per element */
  int kind;
} seen_set;

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

/* The slot holding key, or the empty slot where it would go. Keys are mixed again before
 * the range reduction: callers may pass small sequential integers as fingerprints. */
static size_t exact_find(const uint64_t *slots, size_t cap, uint64_t key) {
  size_t i = (size_t)seen_range(sl_url_mix(key), cap);
  while (slots[i] != 0 && slots[i] != key)
    if (++i == cap)
      i = 0;
  return i;
}

/* Moves every key into a table of cap slots. Raises, leaving the set as it was, when the
 * memory cannot be had. */
static void exact_resize(lua_State *L, seen_set *s, size_t cap) {
  uint64_t *slots;
  size_t i;
  if (cap > ((size_t)-1) / sizeof(uint64_t) ||
      (slots = (uint64_t *)calloc(cap, sizeof(uint64_t))) == NULL) {
    luaL_error(L, "not enough memory");
    return;
  }
  for (i = 0; i < s->cap; i++)
    if (s->words[i] != 0)
      slots[exact_find(slots, cap, s->words[i])] = s->words[i];
  free(s->words);
  s->words = slots;
  s->cap = cap;
  s->max_load = cap / 4 * 3 + cap % 4 * 3 / 4;   /* floor(0.75 cap) without overflow */
}

/* Adds key; returns 1 if it was new. A table full to 0.75 is rebuilt with twice as many
 * slots as it will then hold elements (about 1.5 times as many as before): the load is
 * 0.5 right after a growth and at most 0.75, so 8-byte slots cost 10.7 to 16 bytes an
 * element. */
static int exact_add(lua_State *L, seen_set *s, uint64_t key) {
  size_t i;
  if (s->cap > 0) {
    i = exact_find(s->words, s->cap, key);
    if (s->words[i] == key)
      return 0;
  }
  if (s->count + 1 > s->max_load) {
    exact_resize(L, s, 2 * (s->count + 1));
  }
  i = exact_find(s->words, s->cap, key);
  s->words[i] = key;
  s->count++;
  return 1;
}

static int exact_has(const seen_set *s, uint64_t key) {
  return s->cap > 0 && s->words[exact_find(s->words, s->cap, key)] == key;
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
  s = (seen_set *)lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->kind = kind;
  luaL_setmetatable(L, SL_URL_SEEN_SET_MT);
  if (kind == SEEN_BLOOM)
    bloom_init(L, s, capacity > 0 ? floor(capacity) : 1e6, fp_rate);
  else if (capacity > 0)
    exact_resize(L, s, (size_t)capacity + (size_t)capacity / 3 + 2);
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

/* set:bytes() -> the bytes of the table or bit array now */
static int seen_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)(check_seen(L)->cap * sizeof(uint64_t)));
  return 1;
}

static int seen_kind(lua_State *L) {
  lua_pushstring(L, check_seen(L)->kind == SEEN_BLOOM ? "bloom" : "exact");
  return 1;
}

static int seen_gc(lua_State *L) {
  seen_set *s = check_seen(L);
  free(s->words);
  s->words = NULL;
  s->cap = s->count = s->max_load = 0;
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
  sl_newmeta(L, SL_URL_SEEN_SET_MT, methods, meta);
  lua_pushcfunction(L, seen_new);
  lua_setfield(L, -2, "seen_set");
}
