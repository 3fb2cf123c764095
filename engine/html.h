/* html.h: what the files of "sluice.html" share (html.c, with html_charset.c, html_tokens.c
 * and html_tags.c before libxml2; html_mem.c, html_async.c and the documents of html_doc.h).
 * Only the html files include it. */
#ifndef SLUICE_HTML_H
#define SLUICE_HTML_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "sluice.h"

#define SL_HTML_PARSER_MT  "sluice.html.parser"
#define SL_HTML_DOCUMENT_MT  "sluice.html.document"    /* html.parse (html_doc.c) */
#define SL_HTML_SELECTION_MT "sluice.html.selection"   /* doc:xpath, doc:css */
#define SL_HTML_XPATH_MT     "sluice.html.xpath"       /* a compiled XPath, cached */

/* html_mem.c: libxml2 allocates through malloc keeping freed small blocks for the next
 * tree; called before libxml2's first allocation. */
void sl_html_mem_init(void);
/* The same on html_async.c's thread, as it starts (end 0) and as it ends (end 1). */
void sl_html_mem_thread(int end);
/* Adds html.parse to the table at the top and makes the document and selection types. */
void sl_html_doc_register(lua_State *L);

/* html_charset.c: a page's byte order mark, decoded here when it is UTF-16. */
typedef struct sl_html_dec {
  uint8_t bom;                 /* undecided, none, UTF-8, UTF-16LE or UTF-16BE */
  uint8_t npending;            /* bytes held in pending */
  unsigned char pending[3];    /* the first bytes while sniffing; an odd UTF-16 byte */
  uint16_t high;               /* a high surrogate waiting for its pair, or 0 */
  uint8_t u8_ntail;            /* bytes in u8_tail */
  unsigned char u8_tail[3];    /* a UTF-8 sequence cut by the end of a chunk (html.c) */
  uint8_t cp1252;              /* the page turned out not UTF-8: windows-1252 from here */
  sl_buf out;                  /* UTF-16 decoded to UTF-8, or the sniffed bytes */
  sl_buf conv;                 /* windows-1252 decoded to UTF-8 */
  sl_buf join;                 /* u8_tail and the next chunk */
} sl_html_dec;

/* Passes s[0..n) through the decoder (final: the last bytes of the page). *out is UTF-8 for
 * a UTF-16 page, else the bytes as they were: s itself when it can be, or a buffer of d's,
 * valid until the next call. Returns 0, or -1 when out of memory. */
int sl_html_dec_run(sl_html_dec *d, const char *s, size_t n, int final, const char **out,
                    size_t *outlen);
int sl_html_dec_has_bom(const sl_html_dec *d);   /* a BOM decided the encoding */
/* Where the first sequence of s[0..n) that libxml2 would not take for UTF-8 starts, or n;
 * then *tail is the length of a sequence cut short by the end of s (0 if none). */
size_t sl_html_utf8_check(const char *s, size_t n, size_t *tail);
/* Decodes s[0..n) and every later byte as windows-1252 (into *out, valid until the next
 * call). Returns 0, or -1 when out of memory. */
int sl_html_dec_fallback(sl_html_dec *d, const char *s, size_t n, const char **out,
                         size_t *outlen);
void sl_html_dec_free(sl_html_dec *d);

/* What a <meta> charset label means (the Encoding standard's labels only: UTF-7 and others
 * browsers refuse are unknown). For SL_CHARSET_1252 and SL_CHARSET_OTHER, *handler is the
 * libxml2 decoder to switch to (NULL if iconv lacks it). */
enum { SL_CHARSET_UNKNOWN, SL_CHARSET_UTF8, SL_CHARSET_1252, SL_CHARSET_REPLACEMENT,
       SL_CHARSET_OTHER };
struct _xmlCharEncodingHandler;
int sl_html_charset(const char *label, size_t n, struct _xmlCharEncodingHandler **handler);
/* The value of attribute name in a SAX attribute list (names compared ignoring case), or
 * NULL. */
const char *sl_html_attr(const unsigned char **atts, const char *name);
/* What the <meta> with SAX attributes atts says of the page's encoding: sl_html_charset of
 * its charset attribute, or of the charset in its content when it is http-equiv
 * content-type; SL_CHARSET_UNKNOWN (and *handler NULL) when neither gives a label. */
int sl_html_meta(const unsigned char **atts, struct _xmlCharEncodingHandler **handler);

/* html_tokens.c (and html_tags.c): the pass that rewrites a page where libxml2's tokenizer
 * would read it otherwise than a browser's. */
#define SL_HTML_NS_MAX 32
typedef struct sl_html_tok {
  uint8_t state;               /* where the tokenizer is (T_* in html_tokens.c) */
  uint8_t raw;                 /* the raw-text element being read, or 0 */
  uint8_t match;               /* "]]" bytes matched in a CDATA section */
  uint8_t end_tag, self_closing; /* the tag being read is an end tag; ended by "/>" */
  uint8_t tag_id;              /* its name, as known to html_tags.c (N_* in html_tags.h) */
  uint8_t tag_foreign;         /* it is an SVG or MathML element */
  uint8_t tag_renamed;         /* its name was given a namespace prefix */
  uint8_t name_odd;            /* its name has bytes libxml2 does not take in a name */
  uint8_t tag_dropped;         /* it is left out */
  uint8_t drop_attrs;          /* its attributes are left out: no result reads them */
  uint8_t started;             /* a start tag was seen */
  uint8_t name_here, lt_here;  /* name_at, lt_at are in the chunk being read */
  uint8_t name_len;            /* bytes of the name (saturates at 255) */
  char name[16];               /* its first bytes, lower-cased */
  size_t name_at, lt_at;       /* where the name and its '<' are in the chunk */
  uint8_t nframes;             /* open SVG, MathML and HTML-inside-them elements */
  struct {
    uint8_t kind, name, renamed;
  } frames[SL_HTML_NS_MAX];
  sl_buf out;                  /* a chunk rewritten */
} sl_html_tok;

/* Rewrites s[0..n), the next bytes of a page in an ASCII-compatible encoding. *out is s
 * itself when nothing changed, else a buffer of t's valid until the next call. A '<' must
 * not end a chunk unless the page ends there (html.c holds such tails back). Returns 0, or
 * -1 when out of memory. */
int sl_html_tok_run(sl_html_tok *t, const char *s, size_t n, const char **out,
                    size_t *outlen);
void sl_html_tok_free(sl_html_tok *t);

#endif
