/* html.c: "sluice.html", link extraction for the crawler: libxml2's HTML push parser in SAX
 * mode (no tree is built) collects hrefs, <base>, <title> and <meta name=robots>. What it
 * reads has been through html_charset.c (UTF-16) and html_tokens.c (HTML5 tokenizing). */
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include "sluice.h"
#include "url.h"
#include "html.h"

#define HTML_MAX_TITLE (64 * 1024)   /* title bytes kept; the rest is dropped */
#define HTML_MAX_FEED  (1 << 30)     /* htmlParseChunk takes an int: longer chunks are split */
#define HTML_MAX_HELD  (64 * 1024)   /* an unclosed '<' held back longer than this goes on */

enum { TITLE_NONE, TITLE_IN, TITLE_DONE };

typedef struct html_parser {
  htmlParserCtxtPtr ctxt;      /* the push parser; NULL once finished or closed */
  int oom;                     /* a callback could not allocate: the next call raises */
  int title_state;             /* TITLE_*: the first <title> only */
  int has_base_href;           /* the first <base href> was seen */
  int has_robots;
  int charset_fixed;           /* a BOM or a <meta> charset decided the encoding */
  int replaced;                /* a <meta> charset of the "replacement" encoding */
  sl_html_dec dec;             /* byte order mark and UTF-16 */
  sl_html_tok tok;             /* the rewriting pass in front of libxml2 */
  char *base;                  /* the page's URL, normalized, NUL-ended; NULL for none */
  size_t base_len;
  sl_buf held;                 /* the tail of the chunks fed, from a '<' not yet closed */
  sl_buf hrefs;                /* raw hrefs of <a>, <area> and <link>, end to end */
  size_t *ends;                /* ends[i]: where href i ends in hrefs */
  size_t nhrefs, ends_cap;
  sl_buf base_href;            /* the first <base href>, raw */
  sl_buf title;                /* text of the first <title> */
  sl_buf robots;               /* content of each <meta name=robots>, ", "-joined */
  char *scratch;               /* sl_url_normalize's output while finishing */
  size_t scratch_cap;
} html_parser;

/* libxml2 would print every complaint about a malformed page on stderr. */
static void html_silent(void *ctx, const char *msg, ...) {
  (void)ctx;
  (void)msg;
}

static void html_silent_structured(void *ctx, xmlErrorPtr err) {
  (void)ctx;
  (void)err;
}

static html_parser *check_parser(lua_State *L) {
  return (html_parser *)luaL_checkudata(L, 1, SL_HTML_PARSER_MT);
}

/* Frees libxml2's parser context (and a document, should it ever have made one). */
static void html_free_ctxt(html_parser *p) {
  if (p->ctxt != NULL) {
    if (p->ctxt->myDoc != NULL)
      xmlFreeDoc(p->ctxt->myDoc);
    htmlFreeParserCtxt(p->ctxt);
    p->ctxt = NULL;
  }
}

/* Frees the parser context and every buffer; the object stays valid and closed. */
static void html_release(html_parser *p) {
  html_free_ctxt(p);
  free(p->base);
  free(p->ends);
  free(p->scratch);
  p->base = p->scratch = NULL;
  p->ends = NULL;
  p->nhrefs = p->ends_cap = p->scratch_cap = 0;
  sl_buf_free(&p->held);
  sl_buf_free(&p->hrefs);
  sl_buf_free(&p->base_href);
  sl_buf_free(&p->title);
  sl_buf_free(&p->robots);
  sl_html_dec_free(&p->dec);
  sl_html_tok_free(&p->tok);
}

/* ------------------------------------------------------------ SAX callbacks */
/* They run inside htmlParseChunk and must not raise: a failed allocation sets oom, stops
 * the parser, and the Lua function that fed the chunk raises once libxml2 has returned. */

static void html_oom(html_parser *p) {
  p->oom = 1;
  xmlStopParser(p->ctxt);
}

/* Records a link's href, trimmed. Empty hrefs and fragment-only ones (the page itself)
 * are not links to follow. */
static void html_add_href(html_parser *p, const char *href) {
  size_t n = strlen(href);
  while (n > 0 && (unsigned char)href[0] <= 0x20)
    href++, n--;
  while (n > 0 && (unsigned char)href[n - 1] <= 0x20)
    n--;
  if (n == 0 || href[0] == '#')
    return;
  if (p->nhrefs == p->ends_cap) {
    size_t cap = p->ends_cap ? 2 * p->ends_cap : 64;
    size_t *ends = (size_t *)realloc(p->ends, cap * sizeof *ends);
    if (ends == NULL) {
      html_oom(p);
      return;
    }
    p->ends = ends;
    p->ends_cap = cap;
  }
  if (sl_buf_add(&p->hrefs, href, n) < 0) {
    html_oom(p);
    return;
  }
  p->ends[p->nhrefs++] = p->hrefs.len;
}

/* <meta name="robots" content="...">: kept lower-cased, several joined with ", ", empty
 * ones skipped. */
static void html_add_robots(html_parser *p, const char *content) {
  size_t i, start = p->robots.len, n = strlen(content);
  if (n == 0)
    return;
  if ((p->has_robots && sl_buf_add(&p->robots, ", ", 2) < 0) ||
      sl_buf_add(&p->robots, content, n) < 0) {
    html_oom(p);
    return;
  }
  for (i = start; i < p->robots.len; i++)
    if (p->robots.p[i] >= 'A' && p->robots.p[i] <= 'Z')
      p->robots.p[i] |= 32;
  p->has_robots = 1;
}

/* <meta charset> or <meta http-equiv=content-type content="...; charset=...">, as browsers
 * read it: a label of the Encoding standard, or nothing (libxml2 itself would follow any
 * name iconv knows, UTF-7 included, so the parser runs with HTML_PARSE_IGNORE_ENC and this
 * switches it). The first known label decides; after a BOM, or once libxml2 has fallen back
 * to Latin-1 on bytes that are not UTF-8, none is followed. */
static void html_meta_charset(html_parser *p, const xmlChar **atts) {
  xmlCharEncodingHandler *handler;
  int kind = sl_html_meta(atts, &handler);
  if (kind == SL_CHARSET_UNKNOWN)
    return;
  p->charset_fixed = 1;
  if (kind == SL_CHARSET_REPLACEMENT) {
    p->replaced = 1;           /* browsers show one U+FFFD for the whole page */
    xmlStopParser(p->ctxt);
  } else if (handler != NULL && p->ctxt->input != NULL && p->ctxt->input->buf != NULL &&
             p->ctxt->input->buf->encoder == NULL) {
    xmlSwitchToEncoding(p->ctxt, handler);
  } else if (handler != NULL) {
    xmlCharEncCloseFunc(handler);
  }
}

/* Element and attribute names come lower-cased from libxml2's HTML parser. */
static void html_start_cb(void *ctx, const xmlChar *xname, const xmlChar **atts) {
  html_parser *p = (html_parser *)ctx;
  const char *name = (const char *)xname, *v;
  if (strcmp(name, "a") == 0 || strcmp(name, "area") == 0 || strcmp(name, "link") == 0) {
    if ((v = sl_html_attr(atts, "href")) != NULL)
      html_add_href(p, v);
  } else if (strcmp(name, "base") == 0) {
    if (!p->has_base_href && (v = sl_html_attr(atts, "href")) != NULL) {
      p->has_base_href = 1;
      if (v[0] != '\0' && sl_buf_add(&p->base_href, v, strlen(v)) < 0)
        html_oom(p);
    }
  } else if (strcmp(name, "title") == 0) {
    if (p->title_state == TITLE_NONE)
      p->title_state = TITLE_IN;
  } else if (strcmp(name, "meta") == 0) {
    const char *what = sl_html_attr(atts, "name");
    if (what != NULL && xmlStrcasecmp((const xmlChar *)what, BAD_CAST "robots") == 0 &&
        (v = sl_html_attr(atts, "content")) != NULL)
      html_add_robots(p, v);
    if (!p->charset_fixed && !sl_html_dec_has_bom(&p->dec))
      html_meta_charset(p, atts);
  }
}

static void html_end_cb(void *ctx, const xmlChar *name) {
  html_parser *p = (html_parser *)ctx;
  if (p->title_state == TITLE_IN && strcmp((const char *)name, "title") == 0)
    p->title_state = TITLE_DONE;
}

static void html_text_cb(void *ctx, const xmlChar *text, int len) {
  html_parser *p = (html_parser *)ctx;
  size_t room;
  if (p->title_state != TITLE_IN || len <= 0 || p->title.len >= HTML_MAX_TITLE)
    return;
  room = HTML_MAX_TITLE - p->title.len;
  if (sl_buf_add(&p->title, text, (size_t)len < room ? (size_t)len : room) < 0)
    html_oom(p);
}

/* ------------------------------------------------------------ parsing */

/* Pushes a new parser for base (a string at base_idx, or none when 0) and returns it. A
 * base that does not normalize is an argument error. */
static html_parser *html_new(lua_State *L, int base_idx) {
  htmlSAXHandler sax;          /* only these callbacks: no document, no tree */
  html_parser *p = (html_parser *)lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, SL_HTML_PARSER_MT);
  if (base_idx != 0) {
    size_t n;
    const char *s = luaL_checklstring(L, base_idx, &n);
    sl_url_err e;
    ptrdiff_t len;
    if ((p->base = (char *)malloc(sl_url_bound(n, 0))) == NULL)
      luaL_error(L, "not enough memory");
    if ((len = sl_url_normalize(s, n, NULL, 0, p->base, &e)) < 0) {
      sl_url_fail(L, &e);
      luaL_argerror(L, base_idx, lua_tostring(L, -2));
    }
    p->base[len] = '\0';
    p->base_len = (size_t)len;
  }
  memset(&sax, 0, sizeof sax);
  sax.startElement = html_start_cb;
  sax.endElement = html_end_cb;
  sax.characters = html_text_cb;
  sax.ignorableWhitespace = html_text_cb;
  p->ctxt = htmlCreatePushParserCtxt(&sax, p, NULL, 0, NULL, XML_CHAR_ENCODING_NONE);
  if (p->ctxt == NULL)
    luaL_error(L, "not enough memory");
  htmlCtxtUseOptions(p->ctxt, HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                  HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC);
  /* UTF-8, and Latin-1 from the first byte that is not UTF-8 on, so any body parses;
   * html_meta_charset follows a <meta charset>. Without this, libxml2 would take the first
   * byte above 127 for Latin-1 even in good UTF-8, after looking for a "charset=" anywhere
   * in what it holds (UTF-7 included). */
  p->ctxt->charset = XML_CHAR_ENCODING_UTF8;
  /* The push parser stops at the first tag after the root element closes, where pages
   * often have more (scripts, links after </html>). End tags of html, body and head are
   * ignored while depth (its count of discarded misplaced start tags) is above 0, so a
   * large depth keeps the root open to the end, as the pull parser and browsers do. */
  p->ctxt->depth = 1 << 24;
  return p;
}

static html_parser *check_open(lua_State *L) {
  html_parser *p = check_parser(L);
  if (p->ctxt == NULL)
    luaL_error(L, "attempt to use a finished or closed HTML parser");
  return p;
}

/* Hands decoded bytes s[0..n) to libxml2 through the token pass (terminate: it is the end of
 * the page). */
static void html_push(lua_State *L, html_parser *p, const char *s, size_t n, int terminate) {
  if (sl_html_tok_run(&p->tok, s, n, &s, &n) < 0)
    luaL_error(L, "not enough memory");
  do {
    int take = n > HTML_MAX_FEED ? HTML_MAX_FEED : (int)n;
    htmlParseChunk(p->ctxt, s, take, terminate && (size_t)take == n);
    s += take;
    n -= (size_t)take;
  } while (n > 0);
  if (p->oom)
    luaL_error(L, "not enough memory");
}

/* Where to cut s[0..n) so that neither html_tokens.c nor libxml2 sees a chunk end inside a
 * tag: at the first '<' after the last '>', or n. html_tokens.c decides what a '<' starts
 * by looking ahead to its name; libxml2 2.9's push parser reads a chunk that ends in
 * "</scr" inside a script as text and then loses the end of the script, and every link
 * after it. */
static size_t html_cut(const char *s, size_t n) {
  size_t i = n;
  const char *lt;
  while (i > 0 && s[i - 1] != '>')
    i--;
  lt = (const char *)memchr(s + i, '<', n - i);
  return lt != NULL ? (size_t)(lt - s) : n;
}

/* Feeds decoded bytes s[0..n) on towards libxml2, holding back a tag not closed yet. */
static void html_feed_held(lua_State *L, html_parser *p, const char *s, size_t n) {
  size_t cut = html_cut(s, n);
  if (p->held.len > 0 && memchr(s, '>', n) == NULL)
    cut = 0;                   /* no '>' in s: the held tag is still open */
  if (p->held.len > 0 && cut > 0) {
    if (sl_buf_add(&p->held, s, cut) < 0)
      luaL_error(L, "not enough memory");
    html_push(L, p, p->held.p, p->held.len, 0);
    p->held.len = 0;
  } else if (cut > 0) {
    html_push(L, p, s, cut, 0);
  }
  if (cut < n && sl_buf_add(&p->held, s + cut, n - cut) < 0)
    luaL_error(L, "not enough memory");
  if (p->held.len > HTML_MAX_HELD) {
    html_push(L, p, p->held.p, p->held.len, 0);
    p->held.len = 0;
  }
}

/* Feeds the page's next bytes (after the BOM stage). Until a BOM or a <meta> has decided
 * the encoding, the page is read as UTF-8, and from the first byte that is not UTF-8 on as
 * windows-1252 (what such pages mostly are), decoded in html_charset.c. The bytes before
 * it go first, so that a <meta> among them still decides. (libxml2 would switch to Latin-1
 * by itself there, but in the middle of reading a character, which it garbles.) */
static void html_feed(lua_State *L, html_parser *p, const char *s, size_t n, int final) {
  sl_html_dec *d = &p->dec;
  if (d->u8_ntail > 0) {       /* a sequence the last chunk cut goes first */
    d->join.len = 0;
    if (sl_buf_add(&d->join, d->u8_tail, d->u8_ntail) < 0 ||
        (n > 0 && sl_buf_add(&d->join, s, n) < 0))
      luaL_error(L, "not enough memory");
    s = d->join.p;
    n = d->join.len;
    d->u8_ntail = 0;
  }
  if (!p->charset_fixed && !sl_html_dec_has_bom(d)) {
    size_t k, tail;
    k = sl_html_utf8_check(s, n, &tail);
    if (tail > 0 && !final) {
      memcpy(d->u8_tail, s + n - tail, tail);
      d->u8_ntail = (uint8_t)tail;
      n -= tail;
    } else if (tail > 0) {
      k = n - tail;            /* cut short by the end of the page */
    }
    if (k < n) {
      html_feed_held(L, p, s, k);
      s += k;
      n -= k;
      if (!p->charset_fixed) {
        p->charset_fixed = 1;
        if (sl_html_dec_fallback(d, s, n, &s, &n) < 0)
          luaL_error(L, "not enough memory");
      }
    }
  }
  html_feed_held(L, p, s, n);
}

/* Normalizes s[0..n) against base into the parser's scratch buffer; returns the length,
 * or -1 if it does not normalize. Raises when the buffer cannot grow. */
static ptrdiff_t html_resolve(lua_State *L, html_parser *p, const char *s, size_t n,
                              const char *base, size_t blen) {
  size_t need = sl_url_bound(n, blen);
  sl_url_err e;
  if (need > p->scratch_cap) {
    char *q = (char *)realloc(p->scratch, need);
    if (q == NULL)
      luaL_error(L, "not enough memory");
    p->scratch = q;
    p->scratch_cap = need;
  }
  return sl_url_normalize(s, n, base, blen, p->scratch, &e);
}

/* Pushes the trimmed title, or nil when the page had no <title>. */
static void html_push_title(lua_State *L, const html_parser *p) {
  const char *s = p->title.p;
  size_t n = p->title.len;
  if (p->title_state == TITLE_NONE) {
    lua_pushnil(L);
    return;
  }
  while (n > 0 && (unsigned char)s[0] <= 0x20)
    s++, n--;
  while (n > 0 && (unsigned char)s[n - 1] <= 0x20)
    n--;
  lua_pushlstring(L, n > 0 ? s : "", n);
}

/* Ends the parse of p (fed in full), frees it, and pushes the effective base, links and
 * info; returns 2 for the last two. The first <base href> applies to every link of the
 * page, wherever it stands, as in browsers. */
static int html_results(lua_State *L, html_parser *p) {
  const char *base;
  size_t blen, i, start = 0;
  ptrdiff_t len = -1;
  lua_Integer nlinks = 0;
  int top;
  const char *tail;
  size_t tail_len;
  if (sl_html_dec_run(&p->dec, "", 0, 1, &tail, &tail_len) < 0)
    luaL_error(L, "not enough memory");
  html_feed(L, p, tail, tail_len, 1);
  html_push(L, p, p->held.p ? p->held.p : "", p->held.len, 1);
  p->held.len = 0;
  html_free_ctxt(p);
  if (p->has_base_href)
    len = html_resolve(L, p, p->base_href.p ? p->base_href.p : "", p->base_href.len,
                       p->base, p->base_len);
  if (len >= 0)
    lua_pushlstring(L, p->scratch, (size_t)len);
  else if (p->base != NULL)
    lua_pushlstring(L, p->base, p->base_len);
  else
    lua_pushnil(L);
  top = lua_gettop(L);         /* the effective base, or nil; anchored here */
  base = lua_tolstring(L, top, &blen);
  lua_createtable(L, (int)(p->nhrefs < 1024 ? p->nhrefs : 1024), 0);
  lua_createtable(L, 0, (int)(p->nhrefs < 1024 ? p->nhrefs : 1024));   /* seen */
  for (i = 0; i < p->nhrefs && !p->replaced; start = p->ends[i++]) {
    len = html_resolve(L, p, p->hrefs.p + start, p->ends[i] - start, base, blen);
    if (len < 0)
      continue;
    lua_pushlstring(L, p->scratch, (size_t)len);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, top + 2) != LUA_TNIL) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, top + 2);
    lua_rawseti(L, top + 1, ++nlinks);
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, top);
  lua_setfield(L, -2, "base");
  if (!p->replaced) {
    html_push_title(L, p);
    lua_setfield(L, -2, "title");
  }
  if (p->has_robots) {
    lua_pushlstring(L, p->robots.p, p->robots.len);
    lua_setfield(L, -2, "robots");
  }
  html_release(p);
  return 2;
}

/* ------------------------------------------------------------ Lua API */

/* html.links(body [, base]) -> links, info */
static int html_links_l(lua_State *L) {
  size_t n;
  const char *body = luaL_checklstring(L, 1, &n);
  html_parser *p = html_new(L, lua_isnoneornil(L, 2) ? 0 : 2);
  if (sl_html_dec_run(&p->dec, body, n, 1, &body, &n) < 0)
    luaL_error(L, "not enough memory");
  html_feed(L, p, body, n, 0);
  return html_results(L, p);
}

/* html.parser([base]) -> parser */
static int html_parser_l(lua_State *L) {
  html_new(L, lua_isnoneornil(L, 1) ? 0 : 1);
  return 1;
}

/* p:feed(chunk): chunks may split the page anywhere; an unclosed tag at the end of a chunk
 * is held back and fed with the next one. */
static int html_feed_l(lua_State *L) {
  html_parser *p = check_open(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  if (sl_html_dec_run(&p->dec, s, n, 0, &s, &n) < 0)
    luaL_error(L, "not enough memory");
  html_feed(L, p, s, n, 0);
  return 0;
}

/* p:finish() -> links, info */
static int html_finish_l(lua_State *L) {
  return html_results(L, check_open(L));
}

static int html_close_l(lua_State *L) {
  html_release(check_parser(L));
  return 0;
}

int luaopen_sluice_html(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"links", html_links_l},
    {"parser", html_parser_l},
    {NULL, NULL}
  };
  static const luaL_Reg methods[] = {
    {"feed", html_feed_l},
    {"finish", html_finish_l},
    {"close", html_close_l},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", html_close_l},
    {"__close", html_close_l},
    {NULL, NULL}
  };
  sl_html_mem_init();
  xmlInitParser();
  xmlSetGenericErrorFunc(NULL, html_silent);
  xmlSetStructuredErrorFunc(NULL, html_silent_structured);
  xmlThrDefSetGenericErrorFunc(NULL, html_silent);   /* and html_async.c's thread's */
  xmlThrDefSetStructuredErrorFunc(NULL, html_silent_structured);
  sl_newmeta(L, SL_HTML_PARSER_MT, methods, meta);
  luaL_newlib(L, funcs);
  sl_html_doc_register(L);
  return 1;
}
