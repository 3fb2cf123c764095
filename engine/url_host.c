/* url_host.c: the host and port of an http(s) URL, parsed as the WHATWG URL standard parses
 * them, so that one host has one spelling: IPv4 in any number form, IPv6 in canonical form. */
#include <string.h>

#include "sluice.h"
#include "url.h"

static int host_is_digit(unsigned c) {
  return c - '0' < 10;
}

/* The characters a host name keeps: ALPHA DIGIT - . _ ~ (RFC 3986's unreserved set). */
static int host_is_name_char(unsigned c) {
  return (c | 32) - 'a' < 26 || host_is_digit(c) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

/* ------------------------------------------------------------------ IPv4 */

/* The standard's "IPv4 number parser": s[0..n) is decimal, hexadecimal after "0x" (just
 * "0x" is 0) or octal after a leading "0". Returns 0 with the value in *v, or -1 when s is
 * not a number in its radix. Values past 2^32 stop growing: the caller refuses them all. */
static int host_v4_number(const char *s, size_t n, uint64_t *v) {
  unsigned radix = 10;
  uint64_t x = 0;
  size_t i;
  if (n == 0)
    return -1;
  if (n >= 2 && s[0] == '0' && (s[1] | 32) == 'x') {
    s += 2, n -= 2;
    radix = 16;
  } else if (n >= 2 && s[0] == '0') {
    s++, n--;
    radix = 8;
  }
  for (i = 0; i < n; i++) {
    int d = sl_url_hexval((unsigned char)s[i]);
    if (d < 0 || (unsigned)d >= radix)
      return -1;
    if (x <= UINT32_MAX)
      x = x * radix + (unsigned)d;
  }
  *v = x;
  return 0;
}

/* The standard's "ends in a number" test, which decides whether a host is an IPv4 address
 * at all: its last label (a trailing dot aside) is all digits or an IPv4 number. So
 * "1.2.3.foo" is a domain name, while "foo.1" and "foo.0x1" are (failed) addresses. */
static int host_ends_in_number(const char *s, size_t n) {
  size_t start, i;
  uint64_t v;
  if (n > 1 && s[n - 1] == '.')
    n--;
  for (start = n; start > 0 && s[start - 1] != '.'; start--)
    ;
  for (i = start; i < n && host_is_digit((unsigned char)s[i]); i++)
    ;
  if (i == n && n > start)
    return 1;
  return host_v4_number(s + start, n - start, &v) == 0;
}

/* The standard's "IPv4 parser": up to four dot-separated numbers, of which all but the last
 * are bytes and the last fills the bytes left (so 127.1 is 127.0.0.1). Returns 0 with the
 * address in *addr, or -1. */
static int host_ipv4(const char *s, size_t n, uint32_t *addr) {
  uint64_t part[4], last;
  size_t np = 0, i = 0, j;
  if (n > 0 && s[n - 1] == '.')
    n--;                       /* a trailing dot ends the last part */
  for (;;) {
    for (j = i; j < n && s[j] != '.'; j++)
      ;
    if (np == 4 || host_v4_number(s + i, j - i, &part[np]) < 0)
      return -1;
    np++;
    if (j == n)
      break;
    i = j + 1;
  }
  last = part[np - 1];
  if (last >= (UINT64_C(1) << (8 * (5 - np))))
    return -1;
  for (i = 0; i + 1 < np; i++) {
    if (part[i] > 255)
      return -1;
    last += part[i] << (8 * (3 - i));
  }
  *addr = (uint32_t)last;
  return 0;
}

/* ------------------------------------------------------------------ IPv6 */

/* The standard's "IPv6 parser" on the inside of the brackets: eight 16-bit pieces, one "::"
 * at most, a dotted IPv4 in the last two. Returns 0 with the pieces in a, or -1. */
static int host_ipv6(const char *s, size_t n, uint16_t a[8]) {
  size_t p = 0;
  int piece = 0, compress = -1;
  memset(a, 0, 8 * sizeof *a);
  if (n > 0 && s[0] == ':') {
    if (n < 2 || s[1] != ':')
      return -1;
    p = 2;
    compress = ++piece;
  }
  while (p < n) {
    unsigned value = 0, len = 0;
    if (piece == 8)
      return -1;
    if (s[p] == ':') {
      if (compress >= 0)
        return -1;
      p++;
      compress = ++piece;
      continue;
    }
    while (len < 4 && p < n && sl_url_hexval((unsigned char)s[p]) >= 0) {
      value = value * 16 + (unsigned)sl_url_hexval((unsigned char)s[p]);
      p++, len++;
    }
    if (p < n && s[p] == '.') {
      /* An embedded IPv4 address: four decimal bytes without leading zeros. */
      int seen = 0;
      if (len == 0 || piece > 6)
        return -1;
      p -= len;
      while (p < n) {
        int byte = -1;
        if (seen > 0) {
          if (s[p] != '.' || seen == 4)
            return -1;
          p++;
        }
        if (p == n || !host_is_digit((unsigned char)s[p]))
          return -1;
        while (p < n && host_is_digit((unsigned char)s[p])) {
          if (byte == 0)
            return -1;
          byte = (byte < 0 ? 0 : byte * 10) + (s[p++] - '0');
          if (byte > 255)
            return -1;
        }
        a[piece] = (uint16_t)(a[piece] * 0x100 + byte);
        if (++seen == 2 || seen == 4)
          piece++;
      }
      if (seen != 4)
        return -1;
      break;
    }
    if (p < n && s[p] == ':') {
      if (++p == n)
        return -1;
    } else if (p < n) {
      return -1;
    }
    a[piece++] = (uint16_t)value;
  }
  if (compress >= 0) {
    /* Move the pieces after "::" to the end; zeros fill the gap. */
    int swaps = piece - compress;
    for (piece = 7; piece != 0 && swaps > 0; piece--, swaps--) {
      uint16_t t = a[piece];
      a[piece] = a[compress + swaps - 1];
      a[compress + swaps - 1] = t;
    }
  } else if (piece != 8) {
    return -1;
  }
  return 0;
}

/* The standard's IPv6 serializer, brackets included: lower-case hex without leading zeros,
 * the first longest run of two or more zero pieces written "::", an embedded IPv4 address
 * as hex pieces like any other. Writes at most 41 bytes; returns how many. */
static size_t host_ipv6_write(const uint16_t a[8], char *out) {
  static const char hex[] = "0123456789abcdef";
  int best = -1, best_len = 1, i, j;
  size_t o = 0;
  for (i = 0; i < 8; i = j + 1) {
    for (j = i; j < 8 && a[j] == 0; j++)
      ;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
  }
  out[o++] = '[';
  for (i = 0; i < 8; i++) {
    int shift = 12;
    if (i == best) {
      out[o++] = ':';
      if (i == 0)
        out[o++] = ':';
      i += best_len - 1;
      continue;
    }
    while (shift > 0 && (a[i] >> shift) == 0)
      shift -= 4;
    for (; shift >= 0; shift -= 4)
      out[o++] = hex[(a[i] >> shift) & 15];
    if (i != 7)
      out[o++] = ':';
  }
  out[o++] = ']';
  return o;
}

/* Writes addr as a dotted quad ("127.0.0.1", at most 15 bytes) and returns its length:
 * by hand, since every link to a numeric host comes here and snprintf costs more than the
 * rest of its parse. */
static size_t host_ipv4_write(uint32_t addr, char *out) {
  size_t o = 0;
  int k;
  for (k = 24; k >= 0; k -= 8) {
    unsigned b = addr >> k & 255;
    if (b >= 100)
      out[o++] = (char)('0' + b / 100);
    if (b >= 10)
      out[o++] = (char)('0' + b / 10 % 10);
    out[o++] = (char)('0' + b % 10);
    if (k > 0)
      out[o++] = '.';
  }
  return o;
}

/* Whether s[0..n) is an IPv4 address as host_ipv4_write writes it: four decimal bytes
 * without leading zeros. The common numeric host, taken as it is. */
static int host_is_dotted_quad(const char *s, size_t n) {
  size_t i = 0;
  int part;
  for (part = 0; part < 4; part++) {
    size_t start = i;
    unsigned v = 0;
    while (i < n && i - start < 3 && host_is_digit((unsigned char)s[i]))
      v = v * 10 + (unsigned)(s[i++] - '0');
    if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
      return 0;
    if (part < 3 && (i == n || s[i++] != '.'))
      return 0;
  }
  return i == n;
}

/* ------------------------------------------------------------- the host */

/* A host that is not an IPv6 literal: percent-decoded, lower-cased, of name characters
 * only, and written as a dotted quad when it ends in a number. Returns the length or -1. */
static ptrdiff_t host_name(const char *s, size_t n, char *out, sl_url_err *e) {
  size_t i = 0, o = 0;
  uint32_t v4;
  if (host_is_dotted_quad(s, n)) {
    memcpy(out, s, n);         /* already as it is written back */
    return (ptrdiff_t)n;
  }
  while (i < n) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if ((c = sl_url_escape_at(s + i, n - i)) < 0)
        return sl_url_einval(e, "bad percent-escape in host");
      i += 3;
    } else {
      i++;
    }
    if (!host_is_name_char((unsigned)c))
      return sl_url_einval(e, "invalid character in host");
    if (o == SL_URL_MAX_HOST)
      return sl_url_einval(e, "host name too long");
    out[o++] = (char)((c | 32) - 'a' < 26 ? c | 32 : c);
  }
  if (!host_ends_in_number(out, o))
    return (ptrdiff_t)o;
  if (host_ipv4(out, o, &v4) < 0)
    return sl_url_einval(e, "bad IPv4 address");
  return (ptrdiff_t)host_ipv4_write(v4, out);
}

int sl_url_authority(const char *s, size_t n, sl_url_auth *a, sl_url_err *e) {
  size_t hend, i;
  ptrdiff_t len;
  a->host[0] = '\0';
  a->host_len = 0;
  a->port = -1;
  if (memchr(s, '@', n) != NULL)
    return sl_url_einval(e, "credentials in URL");
  if (n > 0 && s[0] == '[') {
    const char *close = (const char *)memchr(s, ']', n);
    uint16_t pieces[8];
    hend = close != NULL ? (size_t)(close - s) + 1 : 0;
    if (hend == 0 || (hend < n && s[hend] != ':') || host_ipv6(s + 1, hend - 2, pieces) < 0)
      return sl_url_einval(e, "bad IPv6 address");
    len = (ptrdiff_t)host_ipv6_write(pieces, a->host);
  } else {
    const char *colon = (const char *)memchr(s, ':', n);
    hend = colon != NULL ? (size_t)(colon - s) : n;
    if (hend == 0)
      return sl_url_einval(e, "empty host");
    if ((len = host_name(s, hend, a->host, e)) < 0)
      return -1;
  }
  a->host_len = (size_t)len;
  a->host[len] = '\0';
  if (hend + 1 < n) {          /* ":" and digits; an empty port counts as absent */
    long port = 0;
    for (i = hend + 1; i < n; i++) {
      if (!host_is_digit((unsigned char)s[i]))
        return sl_url_einval(e, "bad port");
      port = port * 10 + (s[i] - '0');
      if (port > 65535)
        return sl_url_einval(e, "port out of range");
    }
    if (port == 0)             /* nothing listens there: refused, not taken for the default */
      return sl_url_einval(e, "port out of range");
    a->port = (int)port;
  }
  return 0;
}
