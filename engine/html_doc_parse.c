/* html_doc_parse.c: html.parse's tree: libxml2's HTML parser set as lxml sets it (so
 * answers match parsel's), the page's encoding decided as html.links decides it, and one
 * dictionary of names shared by every tree. */
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/parserInternals.h>

#include "sluice.h"
#include "html.h"
#include "html_doc.h"

/* lxml's HTMLParser options as parsel sets them (recover, no network, compact text nodes,
 * huge trees), plus silence; no default DOCTYPE node, which no selection reaches; and no
 * <meta> charset from libxml2 itself (doc_meta_cb decides, as html.links does). */
#define DOC_OPTIONS                                                                      \
  (HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |   \
   HTML_PARSE_COMPACT | HTML_PARSE_NODEFDTD | HTML_PARSE_IGNORE_ENC | XML_PARSE_HUGE)
#define NAMES_MAX 100000       /* names shared before a new dictionary starts */

/* Element and attribute names, shared by the trees a thread makes (a dictionary takes no
 * lock: the loop's thread and html_async.c's have one each; a tree holds a reference to
 * its own, counted under libxml2's lock, and may be freed on either thread). */
static _Thread_local xmlDictPtr names;

/* ------------------------------------------------------------ parsing */

/* What a parse may learn from a <meta>: it runs only when neither the caller nor a byte
 * order mark gave the encoding. */
typedef struct doc_sniff {
  startElementSAXFunc start;   /* libxml2's own tree-building callback */
  size_t utf8_end;             /* bytes before the first one that is not UTF-8 */
  int open;                    /* a <meta> may still decide */
  int kind;                    /* SL_CHARSET_* a <meta> asked for, re-parsing with handler */
  xmlCharEncodingHandler *handler;
} doc_sniff;

/* A <meta charset> (or http-equiv content-type) before the first byte that is not UTF-8,
 * with a label of the Encoding standard, decides the encoding as in html.c; one asking for
 * other than UTF-8 stops the parse, which starts again in that encoding. */
static void doc_meta(htmlParserCtxtPtr ctxt, doc_sniff *sn, const xmlChar **atts) {
  xmlCharEncodingHandler *handler;
  int kind = sl_html_meta(atts, &handler);
  if (kind == SL_CHARSET_UNKNOWN)
    return;
  sn->open = 0;
  if (kind == SL_CHARSET_UTF8 || (size_t)(ctxt->input->cur - ctxt->input->base) > sn->utf8_end) {
    if (handler != NULL)
      xmlCharEncCloseFunc(handler);
    return;
  }
  sn->kind = kind;
  sn->handler = handler;
  xmlStopParser(ctxt);
}

/* libxml2's HTML parser gives every element and attribute a copy of its name (it keeps
 * ctxt->dictNames off); lxml puts the dictionary's in their place after the parse, and so
 * does this, as each element starts (its names still in the cache), saving what the copies
 * cost (16 to 32 bytes each, a tenth of the tree). The tree refers to the dictionary from
 * its first element on, so that freeing any of it frees no name of the dictionary's. A name
 * the dictionary cannot take (no memory) stays a copy. */
/* The dictionary's copy of name: given (what the parser passed, nearly always the
 * dictionary's own already), else a lookup. */
static const xmlChar *doc_name(xmlDictPtr dict, const xmlChar *name, const xmlChar *given) {
  if (given != NULL && given != name && xmlStrEqual(name, given) && xmlDictOwns(dict, given) == 1)
    return given;
  return xmlDictLookup(dict, name, -1);
}

static void doc_intern(htmlParserCtxtPtr ctxt, const xmlChar *given, const xmlChar **atts) {
  xmlNodePtr node = ctxt->node;
  xmlDocPtr doc = ctxt->myDoc;
  const xmlChar *name;
  xmlAttrPtr a;
  if (doc == NULL || node == NULL || node->type != XML_ELEMENT_NODE || ctxt->dict == NULL)
    return;
  if (doc->dict == NULL) {
    doc->dict = ctxt->dict;
    xmlDictReference(doc->dict);
  }
  if (doc->dict != ctxt->dict)
    return;
  if ((name = doc_name(doc->dict, node->name, given)) != NULL && name != node->name) {
    if (!xmlDictOwns(doc->dict, node->name))
      xmlFree((xmlChar *)node->name);
    node->name = name;
  }
  for (a = node->properties; a != NULL; a = a->next) {
    given = atts != NULL && atts[0] != NULL ? atts[0] : NULL;
    if (given != NULL)
      atts += 2;               /* the attributes come in the order of atts */
    if ((name = doc_name(doc->dict, a->name, given)) != NULL && name != a->name) {
      if (!xmlDictOwns(doc->dict, a->name))
        xmlFree((xmlChar *)a->name);
      a->name = name;
    }
  }
}

static void doc_start_cb(void *ctx, const xmlChar *name, const xmlChar **atts) {
  htmlParserCtxtPtr ctxt = (htmlParserCtxtPtr)ctx;
  doc_sniff *sn = (doc_sniff *)ctxt->_private;
  sn->start(ctx, name, atts);
  doc_intern(ctxt, name, atts);
  if (sn->open && name[0] == 'm' && strcmp((const char *)name, "meta") == 0)
    doc_meta(ctxt, sn, atts);
}

/* The calling thread ends: it lets go of its dictionary (trees still using it keep it). */
void sl_html_doc_thread_end(void) {
  if (names != NULL)
    xmlDictFree(names);
  names = NULL;
}

/* Parses s[0..n) (1 <= n <= INT_MAX) into a tree: read through handler when not NULL (it
 * is then consumed), else as UTF-8, with sn (or NULL) watching for a <meta>. Returns the
 * document, or NULL when libxml2 ran out of memory. */
static xmlDocPtr doc_read(const char *s, size_t n, xmlCharEncodingHandler *handler,
                          doc_sniff *sn) {
  htmlParserCtxtPtr ctxt = htmlCreateMemoryParserCtxt(s, (int)n);
  doc_sniff own_sn;
  xmlDocPtr doc;
  if (ctxt == NULL) {
    if (handler != NULL)
      xmlCharEncCloseFunc(handler);
    return NULL;
  }
  htmlCtxtUseOptions(ctxt, DOC_OPTIONS);
  /* htmlCtxtUseOptions turns the dictionary off for the tree; on, as for XML, the tree
   * refers to it, and short text nodes (attribute values too) keep their text in the node
   * (HTML_PARSE_COMPACT), blank ones share the dictionary's: a page's tree takes 12.0 bytes
   * per HTML byte instead of 14.0 (lxml's: 12.2). */
  ctxt->dictNames = 1;
  /* Trees share one dictionary of names, as lxml's do: a page's tree then holds no copy of
   * "div" or "href". Each tree holds a reference; a dictionary grown past NAMES_MAX (pages
   * making up names) is left to the trees using it and a new one starts. */
  if (names != NULL && xmlDictSize(names) > NAMES_MAX) {
    xmlDictFree(names);
    names = NULL;
  }
  if (names == NULL)
    names = xmlDictCreate();
  if (names != NULL) {
    xmlDictFree(ctxt->dict);
    ctxt->dict = names;
    xmlDictReference(names);
    ctxt->str_xml = xmlDictLookup(names, BAD_CAST "xml", 3);
    ctxt->str_xmlns = xmlDictLookup(names, BAD_CAST "xmlns", 5);
    ctxt->str_xml_ns = xmlDictLookup(names, XML_XML_NAMESPACE, 36);
  }
  if (sn == NULL) {            /* no <meta> to watch for: still the names to share */
    memset(&own_sn, 0, sizeof own_sn);
    sn = &own_sn;
  }
  ctxt->_private = sn;
  sn->start = ctxt->sax->startElement;
  ctxt->sax->startElement = doc_start_cb;
  /* As UTF-8 (the memory parser would otherwise take each byte above 127 for Latin-1). */
  ctxt->charset = XML_CHAR_ENCODING_UTF8;
  if (handler != NULL)
    xmlSwitchToEncoding(ctxt, handler);
  htmlParseDocument(ctxt);
  doc = ctxt->myDoc;
  ctxt->myDoc = NULL;
  htmlFreeParserCtxt(ctxt);
  return doc;
}

/* Frees what doc_decode allocated. */
typedef struct doc_bytes {
  const char *s;               /* the page, to parse */
  size_t n;
  char *own;                   /* a copy s points into, or NULL */
} doc_bytes;

/* The page as parsel hands it to lxml: without surrounding white space and NUL bytes. */
static int doc_trim(doc_bytes *b) {
  const char *s = b->s, *nul;
  size_t n = b->n;
  while (n > 0 && ((unsigned char)s[0] <= 0x20 && (s[0] == ' ' || (s[0] >= 9 && s[0] <= 13) ||
                                                  (s[0] >= 0x1c && s[0] <= 0x1f))))
    s++, n--;
  while (n > 0 && ((unsigned char)s[n - 1] <= 0x20 &&
                   (s[n - 1] == ' ' || (s[n - 1] >= 9 && s[n - 1] <= 13) ||
                    (s[n - 1] >= 0x1c && s[n - 1] <= 0x1f))))
    n--;
  if ((nul = (const char *)memchr(s, '\0', n)) != NULL) {
    char *out = (char *)malloc(n), *o = out;
    size_t i;
    if (out == NULL)
      return -1;
    for (i = 0; i < n; i++)
      if (s[i] != '\0')
        *o++ = s[i];
    free(b->own);
    b->own = out;
    s = out;
    n = (size_t)(o - out);
  }
  b->s = s;
  b->n = n;
  return 0;
}

/* Replaces b's bytes from the first that is not UTF-8 on with their windows-1252 reading
 * (UTF-8 throughout, as html.links reads such a page). */
static int doc_fallback(doc_bytes *b, size_t k) {
  sl_html_dec d;
  const char *t;
  size_t tn;
  char *out;
  memset(&d, 0, sizeof d);
  if (sl_html_dec_fallback(&d, b->s + k, b->n - k, &t, &tn) < 0 ||
      (out = (char *)malloc(k + tn + 1)) == NULL) {
    sl_html_dec_free(&d);
    return -1;
  }
  memcpy(out, b->s, k);
  memcpy(out + k, t, tn);
  sl_html_dec_free(&d);
  free(b->own);
  b->own = out;
  b->s = out;
  b->n = k + tn;
  return 0;
}

/* Parses the page body[0..n): the encoding is a byte order mark's (as in browsers, it
 * overrides the rest), then the charset label's (when given and known), then the first
 * <meta> charset's, else UTF-8 read as html.c reads it. Returns the document, or NULL when
 * out of memory. */
xmlDocPtr sl_html_doc_parse(const char *body, size_t n, const char *label, size_t label_len) {
  xmlCharEncodingHandler *handler = NULL;
  int kind = SL_CHARSET_UNKNOWN;
  doc_bytes b = {body, n, NULL};
  doc_sniff sn;
  sl_html_dec d;
  xmlDocPtr doc = NULL;
  size_t k, tail;
  memset(&sn, 0, sizeof sn);
  memset(&d, 0, sizeof d);
  if (sl_html_dec_run(&d, body, n, 1, &b.s, &b.n) < 0)
    goto done;
  if (!sl_html_dec_has_bom(&d) && label != NULL)
    kind = sl_html_charset(label, label_len, &handler);
  sn.open = !sl_html_dec_has_bom(&d) && kind == SL_CHARSET_UNKNOWN;
  if (kind == SL_CHARSET_REPLACEMENT) {
    b.n = 0;                   /* browsers show one U+FFFD: nothing to select */
  } else if (kind == SL_CHARSET_1252) {
    handler = NULL;            /* html_charset.c's own, never freed */
    if (doc_fallback(&b, 0) < 0)
      goto done;
  }
  if (handler == NULL) {       /* UTF-8: the bytes libxml2 would not take go as windows-1252 */
    k = sl_html_utf8_check(b.s, b.n, &tail);
    if (tail > 0)
      k = b.n - tail;
    sn.utf8_end = k;
    if (k < b.n && doc_fallback(&b, k) < 0)
      goto done;
  }
  if (doc_trim(&b) < 0)
    goto done;
  if (b.n > 0 && b.n <= INT_MAX) {
    doc = doc_read(b.s, b.n, handler, sn.open ? &sn : NULL);
    handler = NULL;
    if (doc != NULL && sn.kind != 0) {       /* a <meta> asked for another encoding */
      xmlFreeDoc(doc);
      doc = NULL;
      b.s = body;              /* no BOM here: the bytes as they came */
      b.n = n;
      free(b.own);
      b.own = NULL;
      if (sn.kind == SL_CHARSET_1252 && doc_fallback(&b, 0) < 0)
        goto done;
      if (doc_trim(&b) < 0)
        goto done;
      if (b.n > 0 && b.n <= INT_MAX)
        doc = doc_read(b.s, b.n, sn.kind == SL_CHARSET_1252 ? NULL : sn.handler, NULL);
      sn.handler = NULL;
    }
  }
  /* Nothing left, or no element at all: parsel parses "<html/>" instead. */
  if (doc == NULL || xmlDocGetRootElement(doc) == NULL) {
    if (doc != NULL)
      xmlFreeDoc(doc);
    doc = doc_read("<html/>", 7, NULL, NULL);
  }
done:
  if (handler != NULL)
    xmlCharEncCloseFunc(handler);
  if (sn.handler != NULL && sn.kind != SL_CHARSET_1252)
    xmlCharEncCloseFunc(sn.handler);
  free(b.own);
  sl_html_dec_free(&d);
  return doc;
}
