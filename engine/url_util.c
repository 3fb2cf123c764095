/* url_util.c: what url.c, url_host.c and seen.c share: hex escapes, the EINVAL setter and
 * the fingerprint hash. It sits below the three, so that url.c, which registers the module,
 * is the only one that calls the others. */
#include "sluice.h"
#include "url.h"

/* ------------------------------------------------------------ escapes */

int sl_url_hexval(unsigned c) {
  if (c - '0' < 10)
    return (int)(c - '0');
  c |= 32;
  return c - 'a' < 6 ? (int)(c - 'a' + 10) : -1;
}

int sl_url_escape_at(const char *s, size_t n) {
  int hi, lo;
  if (n < 3 || s[0] != '%')
    return -1;
  hi = sl_url_hexval((unsigned char)s[1]);
  lo = sl_url_hexval((unsigned char)s[2]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Sets e to an EINVAL with a static reason; returns -1 for `return sl_url_einval(...)`. */
int sl_url_einval(sl_url_err *e, const char *why) {
  e->code = "EINVAL";
  e->why = why;
  e->what = NULL;
  e->what_len = 0;
  return -1;
}

/* ---------------------------------------------------------- fingerprint */

/* MurmurHash3's 64-bit finalizer: every input bit affects every output bit. */
uint64_t sl_url_mix(uint64_t h) {
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return h;
}

/* Little-endian whatever the machine, so fingerprints stored in journals stay valid. */
static uint64_t url_load64(const unsigned char *p, size_t n) {
  uint64_t w = 0;
  size_t i;
  for (i = 0; i < n; i++)
    w |= (uint64_t)p[i] << (8 * i);
  return w;
}

/* A multiply-xorshift over 8-byte words, length folded in first, finished with sl_url_mix.
 * Part of the file formats of resume journals: never change the constants. */
uint64_t sl_url_hash(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  const uint64_t k1 = UINT64_C(0x9e3779b97f4a7c15), k2 = UINT64_C(0xc2b2ae3d27d4eb4f);
  uint64_t h = UINT64_C(0x243f6a8885a308d3) ^ ((uint64_t)n * k2);
  while (n > 0) {
    size_t take = n < 8 ? n : 8;
    uint64_t w = url_load64(p, take) * k2;
    w ^= w >> 31;
    h = (h ^ w) * k1;
    h ^= h >> 29;
    p += take;
    n -= take;
  }
  return sl_url_mix(h);
}
