/* html_charset.c: what encoding a page is read in, as browsers decide it: a byte order mark
 * first (UTF-16 is decoded here), then a <meta> charset among the Encoding standard's labels. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/encoding.h>
#include <libxml/xmlstring.h>

#include "sluice.h"
#include "html.h"

enum { BOM_UNDECIDED, BOM_NONE, BOM_UTF8, BOM_UTF16LE, BOM_UTF16BE };

/* ------------------------------------------------------- byte order marks */

/* Writes code point cp as UTF-8 into u (4 bytes at most; surrogates and values past
 * U+10FFFF as U+FFFD). Returns how many bytes. */
static size_t utf8_put(unsigned char *u, uint32_t cp) {
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    cp = 0xfffd;
  if (cp < 0x80) {
    u[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    u[0] = (unsigned char)(0xc0 | cp >> 6);
    u[1] = (unsigned char)(0x80 | (cp & 63));
    return 2;
  }
  if (cp < 0x10000) {
    u[0] = (unsigned char)(0xe0 | cp >> 12);
    u[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
    u[2] = (unsigned char)(0x80 | (cp & 63));
    return 3;
  }
  u[0] = (unsigned char)(0xf0 | cp >> 18);
  u[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
  u[2] = (unsigned char)(0x80 | (cp >> 6 & 63));
  u[3] = (unsigned char)(0x80 | (cp & 63));
  return 4;
}

static int dec_put(sl_buf *b, uint32_t cp) {
  unsigned char u[4];
  return sl_buf_add(b, u, utf8_put(u, cp));
}

/* Appends one UTF-16 code unit: a high surrogate waits in d for the low one that should
 * follow; a surrogate without its pair becomes U+FFFD, as browsers decode it. */
static int dec_unit(sl_html_dec *d, unsigned unit) {
  if (d->high != 0) {
    uint32_t high = d->high;
    d->high = 0;
    if (unit >= 0xdc00 && unit <= 0xdfff)
      return dec_put(&d->out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
    if (dec_put(&d->out, 0xfffd) < 0)
      return -1;
  }
  if (unit >= 0xd800 && unit <= 0xdbff) {
    d->high = (uint16_t)unit;
    return 0;
  }
  return dec_put(&d->out, unit);
}

/* Decodes UTF-16 into d->out; an odd byte at the end waits in d->pending. */
static int dec_utf16(sl_html_dec *d, const unsigned char *s, size_t n, int final) {
  int be = d->bom == BOM_UTF16BE;
  size_t i = 0;
  if (d->npending == 1 && n > 0) {
    unsigned a = d->pending[0], b = s[0];
    d->npending = 0;
    i = 1;
    if (dec_unit(d, be ? a << 8 | b : b << 8 | a) < 0)
      return -1;
  }
  for (; i + 1 < n; i += 2)
    if (dec_unit(d, be ? (unsigned)s[i] << 8 | s[i + 1] : (unsigned)s[i + 1] << 8 | s[i]) < 0)
      return -1;
  if (i < n) {
    d->pending[0] = s[i];
    d->npending = 1;
  }
  if (final && (d->high != 0 || d->npending != 0)) {
    d->high = 0;
    d->npending = 0;
    return dec_put(&d->out, 0xfffd);
  }
  return 0;
}

/* Looks at the first bytes, held in d->pending until there are enough: EF BB BF is UTF-8,
 * FF FE UTF-16LE, FE FF UTF-16BE (the mark itself is dropped). Returns how many bytes of s
 * went into pending. */
static size_t dec_sniff(sl_html_dec *d, const unsigned char *s, size_t n, int final) {
  const unsigned char *p = d->pending;
  size_t take = 0;
  while (d->npending < 3 && take < n)
    d->pending[d->npending++] = s[take++];
  if (d->npending >= 2 && ((p[0] == 0xff && p[1] == 0xfe) || (p[0] == 0xfe && p[1] == 0xff))) {
    d->bom = p[0] == 0xff ? BOM_UTF16LE : BOM_UTF16BE;
    d->pending[0] = p[2];      /* the byte after the mark, if there is one */
    d->npending = d->npending == 3 ? 1 : 0;
  } else if (d->npending == 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
    d->bom = BOM_UTF8;
    d->npending = 0;
  } else if (final || d->npending == 3 ||
             (d->npending == 1 && p[0] != 0xef && p[0] != 0xfe && p[0] != 0xff) ||
             (d->npending == 2 && (p[0] != 0xef || p[1] != 0xbb))) {
    d->bom = BOM_NONE;
  }
  return take;
}

int sl_html_dec_run(sl_html_dec *d, const char *s, size_t n, int final, const char **out,
                    size_t *outlen) {
  const unsigned char *u = (const unsigned char *)s;
  size_t used = 0;
  d->out.len = 0;
  *out = s;
  *outlen = n;
  if (d->bom == BOM_UNDECIDED) {
    used = dec_sniff(d, u, n, final);
    if (d->bom == BOM_UNDECIDED) {
      *outlen = 0;             /* all held */
      return 0;
    }
    if (d->bom == BOM_NONE) {
      /* No mark: the bytes held go first, and are those of s when s holds them all. */
      size_t held = d->npending;
      d->npending = 0;
      if (held == used)
        return 0;
      if (sl_buf_add(&d->out, d->pending, held) < 0 ||
          (n > used && sl_buf_add(&d->out, s + used, n - used) < 0))
        return -1;
      *out = d->out.p;
      *outlen = d->out.len;
      return 0;
    }
  }
  if (d->bom == BOM_UTF16LE || d->bom == BOM_UTF16BE) {
    if (dec_utf16(d, u + used, n - used, final) < 0)
      return -1;
    *out = d->out.len > 0 ? d->out.p : s;
    *outlen = d->out.len;
    return 0;
  }
  if (d->cp1252)
    return sl_html_dec_fallback(d, s + used, n - used, out, outlen);
  *out = s + used;
  *outlen = n - used;
  return 0;
}

size_t sl_html_utf8_check(const char *s, size_t n, size_t *tail) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  *tail = 0;
  while (i < n) {
    unsigned c = u[i], need, lo, k;
    if (c < 0x80) {
      uint64_t w;              /* eight ASCII bytes at a time */
      while (i + 8 <= n && (memcpy(&w, u + i, 8), (w & UINT64_C(0x8080808080808080)) == 0))
        i += 8;
      while (i < n && u[i] < 0x80)
        i++;
      continue;
    }
    /* The sequences libxml2 accepts: no stray continuation byte, no overlong form. */
    if (c >= 0xc2 && c <= 0xdf)
      need = 1;
    else if (c >= 0xe0 && c <= 0xef)
      need = 2;
    else if (c >= 0xf0 && c <= 0xf7)
      need = 3;
    else
      return i;
    lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    for (k = 1; k <= need; k++, lo = 0x80) {
      if (i + k == n) {
        *tail = k;             /* complete so far: the rest may come */
        return n;
      }
      if (u[i + k] < lo || u[i + k] > 0xbf)
        return i;
    }
    i += need + 1;
  }
  return n;
}

int sl_html_dec_has_bom(const sl_html_dec *d) {
  return d->bom == BOM_UTF8 || d->bom == BOM_UTF16LE || d->bom == BOM_UTF16BE;
}

void sl_html_dec_free(sl_html_dec *d) {
  sl_buf_free(&d->out);
  sl_buf_free(&d->conv);
  sl_buf_free(&d->join);
}

/* ------------------------------------------------------------- windows-1252 */

/* windows-1252's bytes 0x80-0x9F (the rest is Latin-1), as the Encoding standard maps them:
 * bytes that glibc's CP1252 refuses map to the C1 control of the same value. */
static const uint16_t CP1252_HIGH[32] = {
  0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
  0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
  0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
  0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

/* libxml2's input conversion callback: never fails, as no byte is invalid in windows-1252
 * (iconv's CP1252 refuses five, and libxml2 stops parsing on a conversion error). */
static int cp1252_to_utf8(unsigned char *out, int *outlen, const unsigned char *in,
                          int *inlen) {
  int i = 0, o = 0;
  while (i < *inlen) {
    unsigned c = in[i];
    if (c >= 0x80 && c < 0xa0)
      c = CP1252_HIGH[c - 0x80];
    if (o + (c < 0x80 ? 1 : c < 0x800 ? 2 : 3) > *outlen)
      break;
    o += (int)utf8_put(out + o, c);
    i++;
  }
  *inlen = i;
  *outlen = o;
  return o;
}

int sl_html_dec_fallback(sl_html_dec *d, const char *s, size_t n, const char **out,
                         size_t *outlen) {
  d->cp1252 = 1;
  d->conv.len = 0;
  while (n > 0) {
    int in = n > 65536 ? 65536 : (int)n, o;
    if (sl_buf_reserve(&d->conv, 3 * (size_t)in) < 0)
      return -1;
    o = 3 * in;
    cp1252_to_utf8((unsigned char *)d->conv.p + d->conv.len, &o, (const unsigned char *)s,
                   &in);
    d->conv.len += (size_t)o;
    s += in;
    n -= (size_t)in;
  }
  *out = d->conv.len > 0 ? d->conv.p : "";
  *outlen = d->conv.len;
  return 0;
}

/* Not registered with libxml2: a handler without iconv state is never freed by it. */
static char cp1252_name[] = "windows-1252";
static xmlCharEncodingHandler cp1252_handler = {.name = cp1252_name, .input = cp1252_to_utf8};

/* ----------------------------------------------------------------- labels */

/* The Encoding standard's labels, each encoding's between spaces, with the name glibc's
 * iconv (behind libxml2) knows it by. Any other label, UTF-7 and UTF-32 among them, is
 * unknown to browsers and so ignored. */
static const struct {
  int kind;
  const char *iconv;
  const char *labels;
} ENCODINGS[] = {
  {SL_CHARSET_UTF8, NULL,
   " unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8 "},
  {SL_CHARSET_OTHER, "IBM866", " 866 cp866 csibm866 ibm866 "},
  {SL_CHARSET_OTHER, "ISO-8859-2", " csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592"
   " iso_8859-2 iso_8859-2:1987 l2 latin2 "},
  {SL_CHARSET_OTHER, "ISO-8859-3", " csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593"
   " iso_8859-3 iso_8859-3:1988 l3 latin3 "},
  {SL_CHARSET_OTHER, "ISO-8859-4", " csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594"
   " iso_8859-4 iso_8859-4:1988 l4 latin4 "},
  {SL_CHARSET_OTHER, "ISO-8859-5", " csisolatincyrillic cyrillic iso-8859-5 iso-ir-144"
   " iso8859-5 iso88595 iso_8859-5 iso_8859-5:1988 "},
  {SL_CHARSET_OTHER, "ISO-8859-6", " arabic asmo-708 csiso88596e csiso88596i csisolatinarabic"
   " ecma-114 iso-8859-6 iso-8859-6-e iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6"
   " iso_8859-6:1987 "},
  {SL_CHARSET_OTHER, "ISO-8859-7", " csisolatingreek ecma-118 elot_928 greek greek8"
   " iso-8859-7 iso-ir-126 iso8859-7 iso88597 iso_8859-7 iso_8859-7:1987 sun_eu_greek "},
  {SL_CHARSET_OTHER, "ISO-8859-8", " csiso88598e csisolatinhebrew hebrew iso-8859-8"
   " iso-8859-8-e iso-ir-138 iso8859-8 iso88598 iso_8859-8 iso_8859-8:1988 visual"
   " csiso88598i iso-8859-8-i logical "},
  {SL_CHARSET_OTHER, "ISO-8859-10", " csisolatin6 iso-8859-10 iso-ir-157 iso8859-10"
   " iso885910 l6 latin6 "},
  {SL_CHARSET_OTHER, "ISO-8859-13", " iso-8859-13 iso8859-13 iso885913 "},
  {SL_CHARSET_OTHER, "ISO-8859-14", " iso-8859-14 iso8859-14 iso885914 "},
  {SL_CHARSET_OTHER, "ISO-8859-15", " csisolatin9 iso-8859-15 iso8859-15 iso885915"
   " iso_8859-15 l9 "},
  {SL_CHARSET_OTHER, "ISO-8859-16", " iso-8859-16 "},
  {SL_CHARSET_OTHER, "KOI8-R", " cskoi8r koi koi8 koi8-r koi8_r "},
  {SL_CHARSET_OTHER, "KOI8-U", " koi8-ru koi8-u "},
  {SL_CHARSET_OTHER, "MACINTOSH", " csmacintosh mac macintosh x-mac-roman "},
  {SL_CHARSET_OTHER, "CP874", " dos-874 iso-8859-11 iso8859-11 iso885911 tis-620"
   " windows-874 "},
  {SL_CHARSET_OTHER, "CP1250", " cp1250 windows-1250 x-cp1250 "},
  {SL_CHARSET_OTHER, "CP1251", " cp1251 windows-1251 x-cp1251 "},
  {SL_CHARSET_1252, NULL, " ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1"
   " iso-ir-100 iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii"
   " windows-1252 x-cp1252 x-user-defined "},
  {SL_CHARSET_OTHER, "CP1253", " cp1253 windows-1253 x-cp1253 "},
  {SL_CHARSET_OTHER, "CP1254", " cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599"
   " iso_8859-9 iso_8859-9:1989 l5 latin5 windows-1254 x-cp1254 "},
  {SL_CHARSET_OTHER, "CP1255", " cp1255 windows-1255 x-cp1255 "},
  {SL_CHARSET_OTHER, "CP1256", " cp1256 windows-1256 x-cp1256 "},
  {SL_CHARSET_OTHER, "CP1257", " cp1257 windows-1257 x-cp1257 "},
  {SL_CHARSET_OTHER, "CP1258", " cp1258 windows-1258 x-cp1258 "},
  {SL_CHARSET_OTHER, "MAC-CYRILLIC", " x-mac-cyrillic x-mac-ukrainian "},
  {SL_CHARSET_OTHER, "GBK", " chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk"
   " iso-ir-58 x-gbk "},
  {SL_CHARSET_OTHER, "GB18030", " gb18030 "},
  {SL_CHARSET_OTHER, "BIG5-HKSCS", " big5 big5-hkscs cn-big5 csbig5 x-x-big5 "},
  {SL_CHARSET_OTHER, "EUC-JP", " cseucpkdfmtjapanese euc-jp x-euc-jp "},
  {SL_CHARSET_OTHER, "ISO-2022-JP", " csiso2022jp iso-2022-jp "},
  {SL_CHARSET_OTHER, "CP932", " csshiftjis ms932 ms_kanji shift-jis shift_jis sjis"
   " windows-31j x-sjis "},
  {SL_CHARSET_OTHER, "CP949", " cseuckr csksc56011987 euc-kr iso-ir-149 korean"
   " ks_c_5601-1987 ks_c_5601-1989 ksc5601 ksc_5601 windows-949 "},
  {SL_CHARSET_REPLACEMENT, NULL, " csiso2022kr hz-gb-2312 iso-2022-cn iso-2022-cn-ext"
   " iso-2022-kr replacement "},
  /* UTF-16 labels in a <meta> mean UTF-8: the page was read as ASCII to find the meta. */
  {SL_CHARSET_UTF8, NULL, " unicodefffe utf-16be csunicode iso-10646-ucs-2 ucs-2 unicode"
   " unicodefeff utf-16 utf-16le "},
};

static int is_ascii_space(unsigned c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

int sl_html_charset(const char *label, size_t n, xmlCharEncodingHandler **handler) {
  char key[48];
  size_t i, k = 0;
  *handler = NULL;
  while (n > 0 && is_ascii_space((unsigned char)label[0]))
    label++, n--;
  while (n > 0 && is_ascii_space((unsigned char)label[n - 1]))
    n--;
  if (n == 0 || n > sizeof key - 3)
    return SL_CHARSET_UNKNOWN;
  key[k++] = ' ';
  for (i = 0; i < n; i++) {
    unsigned c = (unsigned char)label[i];
    if (is_ascii_space(c) || c == 0)
      return SL_CHARSET_UNKNOWN;
    key[k++] = (char)(c - 'A' < 26 ? c | 32 : c);
  }
  key[k++] = ' ';
  key[k] = '\0';
  for (i = 0; i < sizeof ENCODINGS / sizeof ENCODINGS[0]; i++) {
    if (strstr(ENCODINGS[i].labels, key) == NULL)
      continue;
    if (ENCODINGS[i].kind == SL_CHARSET_1252)
      *handler = &cp1252_handler;
    else if (ENCODINGS[i].iconv != NULL)
      *handler = xmlFindCharEncodingHandler(ENCODINGS[i].iconv);
    return ENCODINGS[i].kind;
  }
  return SL_CHARSET_UNKNOWN;
}

/* ------------------------------------------------------------------ <meta> */

/* The charset in a <meta http-equiv=content-type> content value (the HTML standard's
 * extraction algorithm): points into content, *len bytes; NULL when there is none. */
static const char *meta_content_charset(const char *content, size_t *len) {
  const char *s = content, *v, *end;
  for (;;) {
    const char *at = s;
    while (*at != '\0' && !((at[0] | 32) == 'c' && strncasecmp(at, "charset", 7) == 0))
      at++;
    if (*at == '\0')
      return NULL;
    s = at + 7;
    while (is_ascii_space((unsigned char)*s))
      s++;
    if (*s == '=')
      break;
  }
  s++;
  while (is_ascii_space((unsigned char)*s))
    s++;
  if (*s == '"' || *s == '\'') {
    end = strchr(s + 1, *s);
    if (end == NULL)
      return NULL;
    v = s + 1;
  } else {
    if (*s == '\0')
      return NULL;
    v = s;
    for (end = s; *end != '\0' && *end != ';' && !is_ascii_space((unsigned char)*end); end++)
      ;
  }
  *len = (size_t)(end - v);
  return v;
}

const char *sl_html_attr(const unsigned char **atts, const char *name) {
  if (atts == NULL)
    return NULL;
  for (; atts[0] != NULL; atts += 2)
    if (xmlStrcasecmp(atts[0], (const xmlChar *)name) == 0)
      return (const char *)atts[1];
  return NULL;
}

int sl_html_meta(const unsigned char **atts, xmlCharEncodingHandler **handler) {
  const char *label = sl_html_attr(atts, "charset"), *equiv;
  size_t n = label != NULL ? strlen(label) : 0;
  *handler = NULL;
  if (label == NULL && (equiv = sl_html_attr(atts, "http-equiv")) != NULL &&
      xmlStrcasecmp((const xmlChar *)equiv, BAD_CAST "content-type") == 0 &&
      (label = sl_html_attr(atts, "content")) != NULL)
    label = meta_content_charset(label, &n);
  return label != NULL ? sl_html_charset(label, n, handler) : SL_CHARSET_UNKNOWN;
}
