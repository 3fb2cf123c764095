/* html_doc.c: "sluice.html"'s documents and selections: html.parse builds libxml2's HTML
 * tree the way lxml does (so answers match parsel's), and XPath and CSS give selections. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/HTMLtree.h>
#include <libxml/parserInternals.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "internal.h"

/* lxml's HTMLParser options as parsel sets them (recover, no network, compact text nodes,
 * huge trees), plus silence; no default DOCTYPE node, which no selection reaches; and no
 * <meta> charset from libxml2 itself (doc_meta_cb decides, as html.links does). */
#define DOC_OPTIONS                                                                      \
  (HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |   \
   HTML_PARSE_COMPACT | HTML_PARSE_NODEFDTD | HTML_PARSE_IGNORE_ENC | XML_PARSE_HUGE)
#define DOC_COST_FACTOR 12     /* tree bytes per HTML byte, about (see html_parse_l) */
#define CACHE_MAX 4096         /* compiled expressions kept per cache before it is emptied */
#define SHOW_MAX 5             /* results __tostring shows */
#define SHOW_BYTES 100         /* bytes of each it shows */
#define NAMES_MAX 100000       /* names shared before a new dictionary starts */

typedef struct doc_index doc_index;

typedef struct html_doc {
  xmlDocPtr doc;               /* NULL once closed */
  xmlXPathContextPtr xctx;     /* for queries; made at the first one */
  doc_index *index;            /* its elements by name; made at the first query using it */
  int fast;                    /* whether index_fast may hold: -1 not known yet */
} html_doc;

/* A selection: nodes of one document (uservalue 1), from a query (uservalue 2). An item
 * that is NULL is a Lua value (an XPath number, string or boolean, or a namespace node's
 * URI) kept at the same index in the table at uservalue 3. */
typedef struct html_sel {
  size_t n;
  xmlNodePtr item[];
} html_sel;

typedef struct xpath_box {
  xmlXPathCompExprPtr comp;
  xmlXPathCompExprPtr fast;    /* the same taking steps from the element index, or NULL */
  int deep;                    /* whether fast looks at every found node's ancestors */
} xpath_box;

static xmlXPathContextPtr compile_ctx;   /* compiles every expression; lives as long as the
                                            process, like libxml2's own globals */
static char cache_xpath_key, cache_css_key;  /* registry keys of the two caches */

/* The results of one query, gathered before the selection is made. */
typedef struct node_vec {
  xmlNodePtr *p;
  size_t n, cap;
} node_vec;

/* Buffers kept from one query or serialization to the next. A query takes them for its
 * own while it runs, and so does one that runs inside it (from a Lua finalizer that the
 * collector runs as the first allocates). */
static node_vec spare;
static xmlOutputBufferPtr dump_out;
static xmlDictPtr names;                 /* element and attribute names, shared by trees */

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

static const char *doc_attr(const xmlChar **atts, const char *name) {
  if (atts == NULL)
    return NULL;
  for (; atts[0] != NULL; atts += 2)
    if (xmlStrcasecmp(atts[0], (const xmlChar *)name) == 0)
      return (const char *)atts[1];
  return NULL;
}

/* A <meta charset> (or http-equiv content-type) before the first byte that is not UTF-8,
 * with a label of the Encoding standard, decides the encoding as in html.c; one asking for
 * other than UTF-8 stops the parse, which starts again in that encoding. */
static void doc_meta(htmlParserCtxtPtr ctxt, doc_sniff *sn, const xmlChar **atts) {
  const char *label = doc_attr(atts, "charset"), *equiv;
  size_t n = label != NULL ? strlen(label) : 0;
  xmlCharEncodingHandler *handler;
  int kind;
  if (label == NULL && (equiv = doc_attr(atts, "http-equiv")) != NULL &&
      xmlStrcasecmp((const xmlChar *)equiv, BAD_CAST "content-type") == 0 &&
      (label = doc_attr(atts, "content")) != NULL)
    label = sl_html_meta_charset(label, &n);
  if (label == NULL || (kind = sl_html_charset(label, n, &handler)) == SL_CHARSET_UNKNOWN)
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
static void doc_intern(htmlParserCtxtPtr ctxt) {
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
  if ((name = xmlDictLookup(doc->dict, node->name, -1)) != NULL && name != node->name) {
    if (!xmlDictOwns(doc->dict, node->name))
      xmlFree((xmlChar *)node->name);
    node->name = name;
  }
  for (a = node->properties; a != NULL; a = a->next) {
    if ((name = xmlDictLookup(doc->dict, a->name, -1)) != NULL && name != a->name) {
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
  doc_intern(ctxt);
  if (sn->open && name[0] == 'm' && strcmp((const char *)name, "meta") == 0)
    doc_meta(ctxt, sn, atts);
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
static xmlDocPtr doc_parse(const char *body, size_t n, const char *label, size_t label_len) {
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

/* ------------------------------------------------------------ the element index */

/* Nearly every query starts by walking the whole tree for elements of one name (a CSS
 * selector's descendant-or-self::NAME, XPath's //NAME), and libxml2 walks it again for
 * each. A document's first such query lists its elements once, grouped by name, and the
 * queries that start so take their first step from that list instead: the expression is
 * rewritten to call INDEX_FN('NAME') there, which gives the same nodes in the same
 * (document) order. index_fast says where that holds. */
#define INDEX_FN "sluice-elements"
#define INDEX_PARENTS "sluice-parents"
#define INDEX_DEPTH_MAX 256

typedef struct el_group {
  const xmlChar *name;
  size_t start, n;             /* where its elements are in by_name */
} el_group;

typedef struct doc_index {
  xmlNodePtr *all;             /* every element, in document order */
  xmlNodePtr *by_name;         /* the same, grouped by name, each group in document order */
  el_group *group;             /* one per name, in order of first appearance */
  unsigned *slot;              /* open addressing on the name's hash: group + 1, 0 free */
  size_t nel, ngroup, cap;     /* cap: slots, a power of two, at least twice ngroup */
  size_t depth;                /* how deeply elements nest, at most */
} doc_index;

static size_t name_hash(const xmlChar *s) {
  size_t h = 2166136261u;
  while (*s)
    h = (h ^ *s++) * 16777619u;
  return h;
}

/* The slot of name: its group's, or the free one where it would go. */
static unsigned *index_slot(const doc_index *x, const xmlChar *name) {
  size_t i = name_hash(name) & (x->cap - 1);
  while (x->slot[i] != 0 && !xmlStrEqual(x->group[x->slot[i] - 1].name, name))
    i = (i + 1) & (x->cap - 1);
  return &x->slot[i];
}

static void index_free(doc_index *x) {
  if (x == NULL)
    return;
  free(x->all);
  free(x->by_name);
  free(x->group);
  free(x->slot);
  free(x);
}

/* The group of name, made when new; -1 without memory. */
static long index_group(doc_index *x, const xmlChar *name) {
  unsigned *s = index_slot(x, name);
  if (*s != 0)
    return (long)*s - 1;
  if (2 * (x->ngroup + 1) > x->cap) {   /* grow, then find the slot again */
    size_t i, ncap = 2 * x->cap;
    unsigned *old = x->slot;
    el_group *g = (el_group *)realloc(x->group, ncap / 2 * sizeof *g);
    if (g == NULL)
      return -1;
    x->group = g;
    if ((x->slot = (unsigned *)calloc(ncap, sizeof *x->slot)) == NULL) {
      x->slot = old;
      return -1;
    }
    x->cap = ncap;
    for (i = 0; i < x->ngroup; i++)
      *index_slot(x, x->group[i].name) = (unsigned)i + 1;
    free(old);
    s = index_slot(x, name);
  }
  x->group[x->ngroup].name = name;
  x->group[x->ngroup].start = x->group[x->ngroup].n = 0;
  *s = (unsigned)++x->ngroup;
  return (long)x->ngroup - 1;
}

/* Lists doc's elements (iteratively: trees may be 200,000 levels deep); NULL without
 * memory. Names are nearly all shared from the parser's dictionary, so a name's group is
 * looked for by its pointer first. */
static doc_index *index_build(xmlDocPtr doc) {
  enum { SEEN = 64 };
  const xmlChar *seen_name[SEEN] = {NULL};
  unsigned seen_group[SEEN];
  doc_index *x = (doc_index *)calloc(1, sizeof *x);
  unsigned *gid = NULL;
  size_t cap = 0, i, at = 0, depth = 1;
  xmlNodePtr cur = doc->children;
  if (x == NULL)
    return NULL;
  while (cur != NULL) {
    if (cur->type == XML_ELEMENT_NODE) {
      if (x->nel == cap) {
        xmlNodePtr *p = (xmlNodePtr *)realloc(x->all, (cap ? 2 * cap : 1024) * sizeof *p);
        if (p == NULL)
          goto fail;
        x->all = p;
        cap = cap ? 2 * cap : 1024;
      }
      x->all[x->nel++] = cur;
      if (depth > x->depth)
        x->depth = depth;
      if (cur->children != NULL) {
        cur = cur->children;
        depth++;
        continue;
      }
    }
    while (cur != NULL && cur->next == NULL) {
      cur = cur->parent == (xmlNodePtr)doc ? NULL : cur->parent;
      depth--;
    }
    if (cur != NULL)
      cur = cur->next;
  }
  x->cap = 64;
  if ((x->group = (el_group *)malloc(x->cap / 2 * sizeof *x->group)) == NULL ||
      (x->slot = (unsigned *)calloc(x->cap, sizeof *x->slot)) == NULL ||
      (x->nel > 0 && ((x->by_name = (xmlNodePtr *)malloc(x->nel * sizeof *x->by_name)) == NULL ||
                      (gid = (unsigned *)malloc(x->nel * sizeof *gid)) == NULL)))
    goto fail;
  for (i = 0; i < x->nel; i++) {
    const xmlChar *name = x->all[i]->name;
    size_t h = ((uintptr_t)name >> 4) % SEEN;
    if (seen_name[h] != name) {
      long g = index_group(x, name);
      if (g < 0)
        goto fail;
      seen_name[h] = name;
      seen_group[h] = (unsigned)g;
    }
    gid[i] = seen_group[h];
    x->group[gid[i]].n++;
  }
  for (i = 0; i < x->ngroup; i++) {
    x->group[i].start = at;
    at += x->group[i].n;
    x->group[i].n = 0;
  }
  for (i = 0; i < x->nel; i++) {
    el_group *g = &x->group[gid[i]];
    x->by_name[g->start + g->n++] = x->all[i];
  }
  free(gid);
  return x;
fail:
  free(gid);
  index_free(x);
  return NULL;
}

/* INDEX_FN(name): the document's elements of that name ("*": all), in document order. */
static void index_fn(xmlXPathParserContextPtr ctxt, int nargs) {
  html_doc *d = (html_doc *)ctxt->context->userData;
  xmlXPathObjectPtr name;
  xmlNodeSetPtr set;
  xmlNodePtr *src = NULL;
  size_t n = 0;
  CHECK_ARITY(1);
  CAST_TO_STRING;
  CHECK_TYPE(XPATH_STRING);
  if (d == NULL || d->doc == NULL)
    XP_ERROR(XPATH_INVALID_CTXT);
  if (d->index == NULL && (d->index = index_build(d->doc)) == NULL)
    XP_ERROR(XPATH_MEMORY_ERROR);
  name = valuePop(ctxt);
  if (xmlStrEqual(name->stringval, BAD_CAST "*")) {
    src = d->index->all;
    n = d->index->nel;
  } else {
    unsigned *slot = index_slot(d->index, name->stringval);
    if (*slot != 0) {
      src = d->index->by_name + d->index->group[*slot - 1].start;
      n = d->index->group[*slot - 1].n;
    }
  }
  xmlXPathFreeObject(name);
  if ((set = xmlXPathNodeSetCreate(NULL)) == NULL)
    XP_ERROR(XPATH_MEMORY_ERROR);
  if (n > 0) {
    if (n > INT_MAX || (set->nodeTab = (xmlNodePtr *)xmlMalloc(n * sizeof *src)) == NULL) {
      xmlXPathFreeNodeSet(set);
      XP_ERROR(XPATH_MEMORY_ERROR);
    }
    memcpy(set->nodeTab, src, n * sizeof *src);
    set->nodeNr = set->nodeMax = (int)n;
  }
  valuePush(ctxt, xmlXPathWrapNodeSet(set));
}

static int doc_order_cmp(const void *a, const void *b) {
  return -xmlXPathCmpNodes(*(xmlNodePtr const *)a, *(xmlNodePtr const *)b);
}

/* INDEX_PARENTS(name): the parents of the document's elements of that name, in document
 * order. */
static void index_parents_fn(xmlXPathParserContextPtr ctxt, int nargs) {
  html_doc *d = (html_doc *)ctxt->context->userData;
  xmlXPathObjectPtr name;
  xmlNodeSetPtr set;
  xmlNodePtr *src = NULL, *p;
  size_t n = 0, i, k = 0;
  unsigned *slot;
  CHECK_ARITY(1);
  CAST_TO_STRING;
  CHECK_TYPE(XPATH_STRING);
  if (d == NULL || d->doc == NULL)
    XP_ERROR(XPATH_INVALID_CTXT);
  if (d->index == NULL && (d->index = index_build(d->doc)) == NULL)
    XP_ERROR(XPATH_MEMORY_ERROR);
  name = valuePop(ctxt);
  if (xmlStrEqual(name->stringval, BAD_CAST "*")) {
    src = d->index->all;
    n = d->index->nel;
  } else if (*(slot = index_slot(d->index, name->stringval)) != 0) {
    src = d->index->by_name + d->index->group[*slot - 1].start;
    n = d->index->group[*slot - 1].n;
  }
  xmlXPathFreeObject(name);
  if ((set = xmlXPathNodeSetCreate(NULL)) == NULL)
    XP_ERROR(XPATH_MEMORY_ERROR);
  if (n > 0) {
    if (n > INT_MAX || (p = (xmlNodePtr *)xmlMalloc(n * sizeof *p)) == NULL) {
      xmlXPathFreeNodeSet(set);
      XP_ERROR(XPATH_MEMORY_ERROR);
    }
    for (i = 0; i < n; i++)    /* siblings come together, mostly */
      if (src[i]->parent != NULL && (k == 0 || p[k - 1] != src[i]->parent))
        p[k++] = src[i]->parent;
    qsort(p, k, sizeof *p, doc_order_cmp);
    for (i = n = 0; i < k; i++)
      if (n == 0 || p[n - 1] != p[i])
        p[n++] = p[i];
    set->nodeTab = p;
    set->nodeNr = set->nodeMax = (int)n;
  }
  valuePush(ctxt, xmlXPathWrapNodeSet(set));
}

/* Whether b's expression rewritten by index_rewrite gives what the original does with node
 * as the context node (node is the root element and the only element at the top, so that
 * its descendants-or-self are all the document's elements), and costs less: one that looks
 * at ancestors takes the depth for each node found, which a tree nested deeper than
 * INDEX_DEPTH_MAX would make quadratic. */
static int index_fast(html_doc *d, const struct xpath_box *b, xmlNodePtr node) {
  if (b->fast == NULL)
    return 0;
  if (b->deep && d->index == NULL && (d->index = index_build(d->doc)) == NULL)
    return 0;
  if (b->deep && d->index->depth > INDEX_DEPTH_MAX)
    return 0;
  if (d->fast < 0) {
    xmlNodePtr c;
    int roots = 0;
    for (c = d->doc->children; c != NULL; c = c->next)
      roots += c->type == XML_ELEMENT_NODE;
    d->fast = roots == 1;
  }
  return d->fast && node != NULL && node->parent == (xmlNodePtr)d->doc &&
         node->type == XML_ELEMENT_NODE;
}

/* -- rewriting: a small scanner over XPath's lexical structure (literals, brackets,
 * names), deliberately conservative: what it is not sure of stays as it is. */

static int x_name_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int x_name_char(int c) {
  return x_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int x_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The index past the literal, bracket or parenthesis group that starts at s[i] (or n). */
static size_t x_skip_group(const char *s, size_t n, size_t i) {
  int depth = 0;
  for (; i < n; i++) {
    char c = s[i];
    if (c == '\'' || c == '"') {
      const char *e = memchr(s + i + 1, c, n - i - 1);
      if (e == NULL)
        return n;
      i = (size_t)(e - s);
      if (depth == 0)
        return i + 1;
    } else if (c == '[' || c == '(') {
      depth++;
    } else if (c == ']' || c == ')') {
      if (--depth <= 0)
        return i + 1;
    }
  }
  return n;
}

static int x_word_is(const char *s, size_t n, const char *w) {
  return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* Whether the predicate s[0..n) (without its brackets) surely does not depend on the
 * context position or size: no position() or last() of its own, no variable, and a boolean
 * (a comparison, and/or, a boolean function) or a plain location path as its value. */
static int x_pred_plain(const char *s, size_t n) {
  size_t i = 0, j;
  int paren = 0, boolean = 0;
  char prev = 0;               /* the last significant character at this level */
  while (n > 0 && x_space(s[n - 1]))
    n--;
  while (i < n && x_space(s[i]))
    i++;
  s += i;
  n -= i;
  if (n == 0)
    return 0;
  for (i = 0; i < n;) {
    char c = s[i];
    if (c == '\'' || c == '"' || c == '[') {
      i = x_skip_group(s, n, i);
      prev = c == '[' ? ']' : '\'';
      continue;
    }
    if (c == '$')
      return 0;
    if (c == '(')
      paren++;
    else if (c == ')')
      paren--;
    if (x_name_start((unsigned char)c)) {
      for (j = i; j < n && (x_name_char((unsigned char)s[j]) || s[j] == ':'); j++)
        if (s[j] == ':' && j + 1 < n && s[j + 1] == ':')
          break;
      {
        size_t k = j;
        while (k < n && x_space(s[k]))
          k++;
        if (k < n && s[k] == '(' &&
            (x_word_is(s + i, j - i, "position") || x_word_is(s + i, j - i, "last")))
          return 0;
        if (paren == 0 && (x_word_is(s + i, j - i, "and") || x_word_is(s + i, j - i, "or")) &&
            prev != 0 && !strchr("@:([,|/+-*=<>!", prev))
          boolean = 1;
      }
      prev = s[j - 1];
      i = j;
      continue;
    }
    if (paren == 0 && (c == '=' || c == '<' || c == '>'))
      boolean = 1;
    if (!x_space(c))
      prev = c;
    i++;
  }
  if (boolean)
    return 1;
  {                            /* one call of a boolean function */
    static const char *const fns[] = {"not", "contains", "starts-with", "boolean", "true",
                                      "false", "lang"};
    size_t k;
    for (j = 0; j < n && x_name_char((unsigned char)s[j]); j++)
      ;
    for (k = 0; k < sizeof fns / sizeof fns[0]; k++) {
      if (x_word_is(s, j, fns[k])) {
        while (j < n && x_space(s[j]))
          j++;
        return j < n && s[j] == '(' && x_skip_group(s, n, j) == n;
      }
    }
  }
  if (s[0] != '@' && !x_name_start((unsigned char)s[0]))  /* a plain location path */
    return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c == '*' ? i > 0 && !strchr("/@:", s[i - 1])
                 : !(x_name_char((unsigned char)c) || c == ':' || c == '@' || c == '/'))
      return 0;
  }
  return 1;
}

/* A growing string; on failure of memory it frees itself and keeps p NULL. */
typedef struct x_buf {
  char *p;
  size_t n, cap;
  int failed;
} x_buf;

static void x_put(x_buf *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = 2 * (b->n + n + 1) + 64;
    char *p = (char *)realloc(b->p, cap);
    if (p == NULL) {
      free(b->p);
      memset(b, 0, sizeof *b);
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void x_puts(x_buf *b, const char *s) {
  x_put(b, s, strlen(s));
}

/* The end of the name test at s[i] ("*" or an ASCII name without a prefix, not a node type
 * test nor an axis), or i when there is none. */
static size_t x_name_test(const char *s, size_t n, size_t i) {
  size_t end = i, k;
  if (end < n && s[end] == '*') {
    end++;
  } else if (end < n && x_name_start((unsigned char)s[end])) {
    while (end < n && x_name_char((unsigned char)s[end]))
      end++;
  }
  if (end == i || (end < n && ((unsigned char)s[end] >= 0x80 || s[end] == ':')))
    return i;
  for (k = end; k < n && x_space(s[k]);)
    k++;
  return k < n && (s[k] == '(' || s[k] == ':') ? i : end;
}

/* The end of the predicates at s[i] (after white space), and in *plain whether all are
 * x_pred_plain. */
static size_t x_preds(const char *s, size_t n, size_t i, int *plain) {
  *plain = 1;
  while (i < n && x_space(s[i]))
    i++;
  while (i < n && s[i] == '[') {
    size_t e = x_skip_group(s, n, i);
    if (s[e - 1] != ']') {
      *plain = 0;
      return n;
    }
    *plain = *plain && x_pred_plain(s + i + 1, e - i - 2);
    for (i = e; i < n && x_space(s[i]);)
      i++;
  }
  return i;
}

/* The expression with the first steps it can take from the index rewritten (a malloc'd
 * string), or NULL when there are none; *deep is set when it looks at ancestors. At a
 * path's start (nothing or one of ( , | [ = < > + before it):
 *   descendant-or-self::NAME   outside any predicate, whatever follows: from the root
 *                              element that axis gives its elements in document order, and
 *                              the predicates count positions in that order, as they do on
 *                              a node set
 *   //NAME                     anywhere, when every predicate right after is plain
 *                              (x_pred_plain): //NAME[1] counts per parent
 * NAME is an ASCII name without a prefix, or "*". Then, while the predicates are plain, a
 * descendant step (CSS's "A B": A/descendant-or-self::* /B without the space, or A//B)
 * becomes a condition on B's ancestors: INDEX_FN('B')[...][ancestor::A[...]]. libxml2 would walk below every A and
 * merge the node sets, comparing each node with all found before: quadratic in nested
 * lists. */
static char *index_rewrite(const char *s, int *deep) {
  static const char DOS[] = "descendant-or-self::", DESC[] = "/descendant-or-self::*/";
  size_t n = strlen(s), i = 0, done = 0;
  int bracket = 0;
  char prev = 0;
  x_buf out = {0}, head = {0}, preds = {0};
  *deep = 0;
  while (i < n) {
    char c = s[i];
    if (c == '\'' || c == '"') {
      i = x_skip_group(s, n, i);
      prev = '\'';
      continue;
    }
    if ((prev == 0 || strchr("(,|[=<>+", prev)) &&
        ((c == '/' && i + 1 < n && s[i + 1] == '/') ||
         (bracket == 0 && strncmp(s + i, DOS, sizeof DOS - 1) == 0))) {
      size_t name = c == '/' ? i + 2 : i + sizeof DOS - 1, end = x_name_test(s, n, name), k;
      const char *fn = INDEX_FN;
      int plain;
      if (end > name && ((k = x_preds(s, n, end, &plain)), plain || c != '/')) {
        head.n = preds.n = 0;
        x_put(&head, s + name, end - name);
        x_put(&preds, s + end, k - end);
        while (plain) {        /* descendant steps */
          size_t b = k + (strncmp(s + k, DESC, sizeof DESC - 1) == 0 ? sizeof DESC - 1
                          : strncmp(s + k, "//", 2) == 0 ? 2 : 0), be, bk;
          int bplain;
          if (b == k || (be = x_name_test(s, n, b)) == b)
            break;
          bk = x_preds(s, n, be, &bplain);
          if (!bplain) {       /* B's positions count among its parent's B children */
            x_buf t = {0};
            x_puts(&t, "[ancestor-or-self::");
            x_put(&t, head.p, head.n);
            x_put(&t, preds.p, preds.n);
            x_puts(&t, "]/");
            x_put(&t, s + b, bk - b);
            free(preds.p);
            preds = t;
            head.n = 0;
            x_put(&head, s + b, be - b);
            fn = INDEX_PARENTS;
            *deep = 1;
            k = bk;
            break;
          }
          {
            x_buf t = {0};
            x_put(&t, s + be, bk - be);
            x_puts(&t, "[ancestor::");
            x_put(&t, head.p, head.n);
            x_put(&t, preds.p, preds.n);
            x_puts(&t, "]");
            free(preds.p);
            preds = t;
          }
          head.n = 0;
          x_put(&head, s + b, be - b);
          *deep = 1;
          k = bk;
        }
        x_put(&out, s + done, i - done);
        x_puts(&out, fn);
        x_puts(&out, "('");
        x_put(&out, head.p, head.n);
        x_puts(&out, "')");
        x_put(&out, preds.p, preds.n);
        if (head.failed || preds.failed)
          out.failed = 1;
        done = i = k;
        prev = ']';
        continue;
      }
    }
    if (c == '[')
      bracket++;
    else if (c == ']')
      bracket--;
    if (!x_space(c))
      prev = c;
    i++;
  }
  free(head.p);
  free(preds.p);
  if (out.p == NULL || out.failed) {
    free(out.p);
    return NULL;
  }
  x_put(&out, s + done, n - done);
  return out.p;
}

/* ------------------------------------------------------------ documents */

static html_doc *check_doc(lua_State *L, int idx) {
  return (html_doc *)luaL_checkudata(L, idx, SL_HTML_DOCUMENT_MT);
}

static html_doc *check_open_doc(lua_State *L, int idx) {
  html_doc *d = check_doc(L, idx);
  if (d->doc == NULL)
    luaL_error(L, "attempt to use a closed HTML document");
  return d;
}

static void doc_release(html_doc *d) {
  if (d->xctx != NULL)
    xmlXPathFreeContext(d->xctx);
  if (d->doc != NULL)
    xmlFreeDoc(d->doc);
  index_free(d->index);
  d->index = NULL;
  d->xctx = NULL;
  d->doc = NULL;
}

/* html.parse(body [, base [, charset]]) -> doc */
static int html_parse_l(lua_State *L) {
  size_t n, label_len = 0;
  const char *body = luaL_checklstring(L, 1, &n);
  const char *label = luaL_optlstring(L, 3, NULL, &label_len);
  html_doc *d;
  int idx;
  lua_settop(L, 3);
  d = (html_doc *)lua_newuserdatauv(L, sizeof *d, 2);
  idx = lua_gettop(L);
  memset(d, 0, sizeof *d);
  d->fast = -1;
  luaL_setmetatable(L, SL_HTML_DOCUMENT_MT);
  if (!lua_isnoneornil(L, 2)) {  /* uservalue 1: the page's URL, normalized */
    size_t bn;
    const char *s = luaL_checklstring(L, 2, &bn);
    sl_url_err e;
    ptrdiff_t len;
    char *out = (char *)lua_newuserdatauv(L, sl_url_bound(bn, 0), 0);
    if ((len = sl_url_normalize(s, bn, NULL, 0, out, &e)) < 0) {
      sl_url_fail(L, &e);
      luaL_argerror(L, 2, lua_tostring(L, -2));
    }
    lua_pushlstring(L, out, (size_t)len);
    lua_setiuservalue(L, idx, 1);
    lua_pop(L, 1);
  }
  if ((d->doc = doc_parse(body, n, label, label_len)) == NULL)
    luaL_error(L, "not enough memory");
  /* The tree lives outside Lua's heap: count it as allocated there, so that a script that
   * never closes its documents has them collected at the pace it parses them. libxml2's
   * tree of a page takes 10 to 15 times its bytes (Python's documentation: 12), lxml's as
   * much; pages dense in small elements take more. */
  lua_gc(L, LUA_GCSTEP, n / 1024 < INT_MAX / 2 / DOC_COST_FACTOR
                            ? (int)(n / 1024 * DOC_COST_FACTOR + 1) : INT_MAX / 2);
  lua_settop(L, idx);
  return 1;
}

static int doc_close_l(lua_State *L) {
  doc_release(check_doc(L, 1));
  return 0;
}

/* The first HTML <base href> of the tree, in document order, or NULL. */
static const xmlChar *doc_base_href(xmlDocPtr doc, xmlNodePtr *owner) {
  xmlNodePtr cur = xmlDocGetRootElement(doc);
  while (cur != NULL) {
    if (cur->type == XML_ELEMENT_NODE) {
      if (xmlStrEqual(cur->name, BAD_CAST "base") && xmlHasProp(cur, BAD_CAST "href")) {
        *owner = cur;
        return BAD_CAST "href";
      }
      if (cur->children != NULL) {
        cur = cur->children;
        continue;
      }
    }
    while (cur != NULL && cur->next == NULL)
      cur = cur->parent != NULL && cur->parent->type == XML_ELEMENT_NODE ? cur->parent : NULL;
    if (cur != NULL)
      cur = cur->next;
  }
  return NULL;
}

/* doc.base: the URL links resolve against, as html.links gives it (uservalue 2, once). */
static void doc_push_base(lua_State *L, html_doc *d) {
  xmlNodePtr owner = NULL;
  xmlChar *href;
  const char *url;
  size_t ulen = 0, hn;
  if (lua_getiuservalue(L, 1, 2) != LUA_TNIL) {
    if (!lua_toboolean(L, -1)) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
    return;
  }
  lua_pop(L, 1);
  lua_getiuservalue(L, 1, 1);
  url = lua_tolstring(L, -1, &ulen);
  if (doc_base_href(d->doc, &owner) != NULL &&
      (href = xmlGetProp(owner, BAD_CAST "href")) != NULL) {
    char *out;
    ptrdiff_t len;
    sl_url_err e;
    hn = strlen((const char *)href);
    out = (char *)malloc(sl_url_bound(hn, ulen));
    len = out != NULL && hn > 0 ? sl_url_normalize((const char *)href, hn, url, ulen, out, &e)
                                : -1;
    xmlFree(href);
    if (len >= 0) {
      lua_pop(L, 1);
      lua_pushlstring(L, out, (size_t)len);
    }
    free(out);
  }
  if (lua_isnil(L, -1)) {
    lua_pushboolean(L, 0);
    lua_setiuservalue(L, 1, 2);
    return;
  }
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, 2);
}

/* ------------------------------------------------------------ compiled XPath */

static const char *const XPATH_ERRORS[] = {
  "ok", "number encoding", "unfinished literal", "start of literal", "expected $ for a"
  " variable reference", "undefined variable", "invalid predicate", "invalid expression",
  "missing closing curly brace", "unregistered function", "invalid operand", "invalid type",
  "invalid number of arguments", "invalid context size", "invalid context position",
  "memory allocation failed", "syntax error", "resource error", "sub resource error",
  "undefined namespace prefix", "encoding error", "char out of XML range",
  "invalid or incomplete context", "stack usage error", "forbidden variable",
  "operation limit exceeded", "recursion limit exceeded",
};

static void xpath_silent(void *ctx, xmlErrorPtr err) {
  (void)ctx;
  (void)err;
}

/* Raises libxml2's last XPath error for expr (kind: "bad" or "failed"). */
static int xpath_raise(lua_State *L, xmlXPathContextPtr x, const char *expr, const char *kind) {
  int code = x->lastError.code - XML_XPATH_EXPRESSION_OK;
  int at = x->lastError.int1;
  const char *why = code > 0 && code < (int)(sizeof XPATH_ERRORS / sizeof XPATH_ERRORS[0])
                        ? XPATH_ERRORS[code] : NULL;
  if (why == NULL && x->lastError.message != NULL) {   /* e.g. a node set past its limit */
    size_t n = strlen(x->lastError.message);
    while (n > 0 && (x->lastError.message[n - 1] == '\n' || x->lastError.message[n - 1] == ' '))
      n--;
    lua_pushlstring(L, x->lastError.message, n);
    why = lua_tostring(L, -1);
  }
  xmlResetError(&x->lastError);
  if (strcmp(kind, "bad") == 0)
    return luaL_error(L, "bad XPath '%s': %s at character %d", expr, why ? why : "error",
                      at + 1);
  return luaL_error(L, "XPath '%s' failed: %s", expr,
                    why ? why : "a node set past libxml2's 10,000,000 nodes, or no memory");
}

static int xpath_box_gc(lua_State *L) {
  xpath_box *b = (xpath_box *)luaL_checkudata(L, 1, SL_HTML_XPATH_MT);
  if (b->comp != NULL)
    xmlXPathFreeCompExpr(b->comp);
  if (b->fast != NULL)
    xmlXPathFreeCompExpr(b->fast);
  b->comp = b->fast = NULL;
  return 0;
}

/* Stores the value at the top in the cache under key (at key_idx) and pops it; a full
 * cache is emptied first. The cache's entry count is at [0]. */
static void cache_put(lua_State *L, void *cache_key, int key_idx) {
  lua_Integer count;
  lua_rawgetp(L, LUA_REGISTRYINDEX, cache_key);
  lua_rawgeti(L, -1, 0);
  count = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (count >= CACHE_MAX) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, cache_key);
    lua_remove(L, -2);
    count = 0;
  }
  lua_pushinteger(L, count + 1);
  lua_rawseti(L, -2, 0);
  lua_pushvalue(L, key_idx);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 2);
}

/* The compiled forms of the XPath expression at idx, from the cache or compiled now (a bad
 * one raises). */
static xpath_box *xpath_compiled(lua_State *L, int idx) {
  const char *expr = lua_tostring(L, idx);
  char *fast;
  int deep;
  xpath_box *b;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_xpath_key);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    b = (xpath_box *)lua_touserdata(L, -1);
    lua_pop(L, 2);
    return b;
  }
  lua_pop(L, 2);
  b = (xpath_box *)lua_newuserdatauv(L, sizeof *b, 0);
  b->comp = b->fast = NULL;
  b->deep = 0;
  luaL_setmetatable(L, SL_HTML_XPATH_MT);
  xmlResetError(&compile_ctx->lastError);
  if ((b->comp = xmlXPathCtxtCompile(compile_ctx, BAD_CAST expr)) == NULL)
    xpath_raise(L, compile_ctx, expr, "bad");
  if ((fast = index_rewrite(expr, &deep)) != NULL) {  /* none when it does not compile */
    b->deep = deep;
    b->fast = xmlXPathCtxtCompile(compile_ctx, BAD_CAST fast);
    xmlResetError(&compile_ctx->lastError);
    free(fast);
  }
  cache_put(L, &cache_xpath_key, idx);
  return b;
}

/* The XPath expression for the CSS selector at idx, compiled: require("sluice.css").xpath
 * translates it (raising on a bad one), once per selector. */
static xpath_box *css_compiled(lua_State *L, int idx) {
  xpath_box *b;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_css_key);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    b = (xpath_box *)lua_touserdata(L, -1);
    lua_pop(L, 2);
    return b;
  }
  lua_pop(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "sluice.css");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "xpath");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "sluice.css gave no XPath for '%s'", lua_tostring(L, idx));
  b = xpath_compiled(L, lua_gettop(L));
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_xpath_key);
  lua_pushvalue(L, -2);
  lua_rawget(L, -2);           /* the box xpath_compiled cached: the css cache shares it */
  cache_put(L, &cache_css_key, idx);
  lua_pop(L, 3);
  return b;
}

/* ------------------------------------------------------------ selections */

static html_sel *check_sel(lua_State *L, int idx) {
  return (html_sel *)luaL_checkudata(L, idx, SL_HTML_SELECTION_MT);
}

/* The document of the selection at idx, raising when it is closed. */
static html_doc *sel_doc(lua_State *L, int idx) {
  html_doc *d;
  lua_getiuservalue(L, idx, 1);
  d = (html_doc *)lua_touserdata(L, -1);
  lua_pop(L, 1);               /* the selection keeps it alive */
  if (d->doc == NULL)
    luaL_error(L, "attempt to use a selection of a closed HTML document");
  return d;
}

/* Pushes a new selection of n items of the document at doc_idx, for the query at q_idx. */
static html_sel *sel_new(lua_State *L, size_t n, int doc_idx, int q_idx) {
  html_sel *s;
  if (n > (SIZE_MAX - sizeof *s) / sizeof s->item[0])
    luaL_error(L, "not enough memory");
  s = (html_sel *)lua_newuserdatauv(L, sizeof *s + n * sizeof s->item[0], 3);
  s->n = 0;
  luaL_setmetatable(L, SL_HTML_SELECTION_MT);
  lua_pushvalue(L, doc_idx);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, q_idx);
  lua_setiuservalue(L, -2, 2);
  return s;
}

static int found_add(node_vec *v, xmlNodePtr node) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? 2 * v->cap : 256;
    xmlNodePtr *p = (xmlNodePtr *)realloc(v->p, cap * sizeof *p);
    if (p == NULL)
      return -1;
    v->p = p;
    v->cap = cap;
  }
  v->p[v->n++] = node;
  return 0;
}

/* Gives a query's buffer back for the next one. */
static void found_done(node_vec *v) {
  if (spare.p == NULL) {
    spare = *v;
    spare.n = 0;
  } else {
    free(v->p);
  }
}

/* Pushes an XPath result's scalar as a Lua value (an integral number as an integer). */
static void push_scalar(lua_State *L, xmlXPathObjectPtr r) {
  if (r->type == XPATH_BOOLEAN) {
    lua_pushboolean(L, r->boolval);
  } else if (r->type == XPATH_NUMBER) {
    double v = r->floatval;
    if (v == floor(v) && v >= -9007199254740992.0 && v <= 9007199254740992.0)
      lua_pushinteger(L, (lua_Integer)v);
    else
      lua_pushnumber(L, v);
  } else if (r->type == XPATH_STRING) {
    lua_pushstring(L, r->stringval != NULL ? (const char *)r->stringval : "");
  } else {
    lua_pushnil(L);
  }
}

/* Adds a value (at the top, popped) as the next item found, into the scalars table at
 * vals_idx (made when 0; the index is then returned). */
static int found_value(lua_State *L, node_vec *v, int vals_idx) {
  if (vals_idx == 0) {
    lua_newtable(L);
    lua_insert(L, -2);
    vals_idx = lua_gettop(L) - 1;
  }
  if (found_add(v, NULL) < 0) {
    found_done(v);
    luaL_error(L, "not enough memory");
  }
  lua_rawseti(L, vals_idx, (lua_Integer)v->n);
  return vals_idx;
}

/* Whether XPath and CSS apply to this node: parsel's text and attribute results are
 * strings, which select nothing, and so are sluice's. */
static int queryable(xmlNodePtr node) {
  return node != NULL && (node->type == XML_ELEMENT_NODE || node->type == XML_DOCUMENT_NODE ||
                          node->type == XML_HTML_DOCUMENT_NODE);
}

/* Evaluates comp with each of ctx[0..nctx) as the context node and pushes the selection of
 * all the results, in order (doc at doc_idx, the query string at q_idx). */
static void sel_eval(lua_State *L, html_doc *d, xpath_box *b, xmlNodePtr *ctx,
                     size_t nctx, int doc_idx, int q_idx) {
  int vals_idx = 0;
  size_t i;
  html_sel *s;
  node_vec v = spare;
  if (d->xctx == NULL) {
    if ((d->xctx = xmlXPathNewContext(d->doc)) == NULL)
      luaL_error(L, "not enough memory");
    d->xctx->error = xpath_silent;
    d->xctx->userData = d;
    if (xmlXPathRegisterFunc(d->xctx, BAD_CAST INDEX_FN, index_fn) != 0 ||
        xmlXPathRegisterFunc(d->xctx, BAD_CAST INDEX_PARENTS, index_parents_fn) != 0)
      luaL_error(L, "not enough memory");
  }
  memset(&spare, 0, sizeof spare);
  v.n = 0;
  for (i = 0; i < nctx; i++) {
    xmlXPathObjectPtr r;
    if (!queryable(ctx[i]))
      continue;
    d->xctx->node = ctx[i];
    if ((r = xmlXPathCompiledEval(index_fast(d, b, ctx[i]) ? b->fast : b->comp, d->xctx)) ==
        NULL) {
      found_done(&v);
      xpath_raise(L, d->xctx, lua_tostring(L, q_idx), "failed");
    }
    if (r->type == XPATH_NODESET) {
      xmlNodeSetPtr set = r->nodesetval;
      int j;
      for (j = 0; set != NULL && j < set->nodeNr; j++) {
        xmlNodePtr node = set->nodeTab[j];
        if (node->type == XML_DOCUMENT_NODE || node->type == XML_HTML_DOCUMENT_NODE) {
          continue;            /* lxml gives nothing for "/" */
        } else if (node->type == XML_NAMESPACE_DECL) {  /* a copy, freed with r: keep its URI */
          xmlNsPtr ns = (xmlNsPtr)node;
          lua_pushstring(L, ns->href != NULL ? (const char *)ns->href : "");
          vals_idx = found_value(L, &v, vals_idx);
        } else if (found_add(&v, node) < 0) {
          xmlXPathFreeObject(r);
          found_done(&v);
          luaL_error(L, "not enough memory");
        }
      }
    } else {
      push_scalar(L, r);
      if (!lua_isnil(L, -1))
        vals_idx = found_value(L, &v, vals_idx);
      else
        lua_pop(L, 1);
    }
    xmlXPathFreeObject(r);
  }
  s = sel_new(L, v.n, doc_idx, q_idx);
  if (v.n > 0)
    memcpy(s->item, v.p, v.n * sizeof s->item[0]);
  s->n = v.n;
  found_done(&v);
  if (vals_idx != 0) {
    lua_pushvalue(L, vals_idx);
    lua_setiuservalue(L, -2, 3);
    lua_remove(L, vals_idx);
  }
}

/* doc:xpath(expr), doc:css(selector): relative to the root element, as parsel's are. */
static int doc_query(lua_State *L, int css) {
  html_doc *d = check_open_doc(L, 1);
  xpath_box *b;
  xmlNodePtr root;
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  b = css ? css_compiled(L, 2) : xpath_compiled(L, 2);
  root = xmlDocGetRootElement(d->doc);
  sel_eval(L, d, b, &root, 1, 1, 2);
  return 1;
}

static int doc_xpath_l(lua_State *L) {
  return doc_query(L, 0);
}

static int doc_css_l(lua_State *L) {
  return doc_query(L, 1);
}

/* sel:xpath(expr), sel:css(selector): relative to each node, results concatenated. */
static int sel_query(lua_State *L, int css) {
  html_sel *s = check_sel(L, 1);
  html_doc *d = sel_doc(L, 1);
  xpath_box *b;
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  b = css ? css_compiled(L, 2) : xpath_compiled(L, 2);
  lua_getiuservalue(L, 1, 1);
  sel_eval(L, d, b, s->item, s->n, 3, 2);
  return 1;
}

static int sel_xpath_l(lua_State *L) {
  return sel_query(L, 0);
}

static int sel_css_l(lua_State *L) {
  return sel_query(L, 1);
}

/* ------------------------------------------------------------ item values */

/* Pushes the serialization of node as lxml's tostring(method="html", with_tail=False) makes
 * it: libxml2's HTML serializer, unformatted. */
static void push_html(lua_State *L, xmlDocPtr doc, xmlNodePtr node) {
  xmlOutputBufferPtr out = dump_out;
  dump_out = NULL;
  if (out == NULL && (out = xmlAllocOutputBuffer(NULL)) == NULL)
    luaL_error(L, "not enough memory");
  htmlNodeDumpFormatOutput(out, doc, node, NULL, 0);
  lua_pushlstring(L, (const char *)xmlBufContent(out->buffer), xmlBufUse(out->buffer));
  xmlBufShrink(out->buffer, xmlBufUse(out->buffer));
  if (dump_out == NULL)
    dump_out = out;
  else
    xmlOutputBufferClose(out);
}

/* Pushes an attribute's value: its one text child as it is, or the children joined. */
static void push_attr_value(lua_State *L, xmlAttrPtr a) {
  xmlNodePtr c = a->children;
  if (c == NULL) {
    lua_pushliteral(L, "");
  } else if (c->next == NULL && c->type == XML_TEXT_NODE) {
    lua_pushstring(L, c->content != NULL ? (const char *)c->content : "");
  } else {
    xmlChar *v = xmlNodeListGetString(a->doc, c, 1);
    lua_pushstring(L, v != NULL ? (const char *)v : "");
    xmlFree(v);
  }
}

/* Pushes item i of the selection at idx as sel:get() gives it: outer HTML for an element
 * (and a comment, ...), the text of a text node, the value of an attribute, or the value. */
static void push_item(lua_State *L, int idx, html_sel *s, size_t i, xmlDocPtr doc) {
  xmlNodePtr node = s->item[i];
  if (node == NULL) {
    lua_getiuservalue(L, idx, 3);
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    lua_remove(L, -2);
    return;
  }
  switch (node->type) {
  case XML_TEXT_NODE:
  case XML_CDATA_SECTION_NODE:
    lua_pushstring(L, node->content != NULL ? (const char *)node->content : "");
    break;
  case XML_ATTRIBUTE_NODE:
    push_attr_value(L, (xmlAttrPtr)node);
    break;
  default:
    push_html(L, doc, node);
  }
}

/* sel:get([default]) -> the first result, or default (nil) */
static int sel_get_l(lua_State *L) {
  html_sel *s = check_sel(L, 1);
  html_doc *d = sel_doc(L, 1);
  if (s->n == 0) {
    lua_settop(L, 2);
    return 1;
  }
  push_item(L, 1, s, 0, d->doc);
  return 1;
}

/* sel:getall() -> {results} */
static int sel_getall_l(lua_State *L) {
  html_sel *s = check_sel(L, 1);
  html_doc *d = sel_doc(L, 1);
  size_t i;
  lua_createtable(L, s->n < INT_MAX ? (int)s->n : INT_MAX, 0);
  for (i = 0; i < s->n; i++) {
    push_item(L, 1, s, i, d->doc);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* The first node of the selection, or NULL (empty, or a value). */
static xmlNodePtr sel_first(lua_State *L, html_sel **sp) {
  html_sel *s = check_sel(L, 1);
  sel_doc(L, 1);
  if (sp != NULL)
    *sp = s;
  return s->n > 0 ? s->item[0] : NULL;
}

/* sel:attr(name) -> the first node's attribute, or nil */
static int sel_attr_l(lua_State *L) {
  xmlNodePtr node = sel_first(L, NULL);
  const char *name = luaL_checkstring(L, 2);
  xmlAttrPtr a;
  if (node == NULL || node->type != XML_ELEMENT_NODE)
    return 0;
  for (a = node->properties; a != NULL; a = a->next)
    if (strcmp((const char *)a->name, name) == 0) {
      push_attr_value(L, a);
      return 1;
    }
  return 0;
}

/* sel:attrib() -> {name = value} of the first node (empty when it is not an element) */
static int sel_attrib_l(lua_State *L) {
  xmlNodePtr node = sel_first(L, NULL);
  xmlAttrPtr a;
  lua_newtable(L);
  if (node == NULL || node->type != XML_ELEMENT_NODE)
    return 1;
  for (a = node->properties; a != NULL; a = a->next) {
    push_attr_value(L, a);
    lua_setfield(L, -2, (const char *)a->name);
  }
  return 1;
}

/* sel:text() -> all the text in the first node (its string value), or nil */
static int sel_text_l(lua_State *L) {
  html_sel *s;
  xmlNodePtr node = sel_first(L, &s);
  xmlChar *v;
  if (s->n == 0)
    return 0;
  if (node == NULL) {
    push_item(L, 1, s, 0, NULL);
    luaL_tolstring(L, -1, NULL);
    return 1;
  }
  if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
    lua_pushstring(L, node->content != NULL ? (const char *)node->content : "");
    return 1;
  }
  if ((v = xmlNodeGetContent(node)) == NULL && node->type == XML_ELEMENT_NODE)
    luaL_error(L, "not enough memory");
  lua_pushstring(L, v != NULL ? (const char *)v : "");
  xmlFree(v);
  return 1;
}

/* sel:html() -> the first node as HTML (a text node escaped), or nil */
static int sel_html_l(lua_State *L) {
  html_sel *s;
  xmlNodePtr node = sel_first(L, &s);
  if (s->n == 0)
    return 0;
  if (node == NULL || node->type == XML_ATTRIBUTE_NODE) {
    push_item(L, 1, s, 0, NULL);
    return 1;
  }
  push_html(L, node->doc, node);
  return 1;
}

/* sel:parent() -> a selection of the first node's parent element (empty at the root) */
static int sel_parent_l(lua_State *L) {
  xmlNodePtr node = sel_first(L, NULL), p = node != NULL ? node->parent : NULL;
  html_sel *r;
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_getiuservalue(L, 1, 2);
  r = sel_new(L, 1, 2, 3);
  if (p != NULL && p->type == XML_ELEMENT_NODE)
    r->item[r->n++] = p;
  return 1;
}

/* sel:children() -> a selection of the first node's element children */
static int sel_children_l(lua_State *L) {
  xmlNodePtr node = sel_first(L, NULL), c;
  size_t n = 0;
  html_sel *r;
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_getiuservalue(L, 1, 2);
  if (node != NULL && node->type == XML_ELEMENT_NODE)
    for (c = node->children; c != NULL; c = c->next)
      n += c->type == XML_ELEMENT_NODE;
  r = sel_new(L, n, 2, 3);
  if (n > 0)
    for (c = node->children; c != NULL; c = c->next)
      if (c->type == XML_ELEMENT_NODE)
        r->item[r->n++] = c;
  return 1;
}

/* Calls string.gmatch(str at -1, pattern at pat_idx) and appends every match (its
 * captures, or the whole match) to the table at out_idx; pops the string. Returns the new
 * count; stops after max results. */
static lua_Integer re_matches(lua_State *L, int pat_idx, int out_idx, lua_Integer count,
                              lua_Integer max) {
  int base;
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "gmatch");
  lua_remove(L, -2);
  lua_insert(L, -2);
  lua_pushvalue(L, pat_idx);
  lua_call(L, 2, 1);           /* the iterator */
  base = lua_gettop(L);
  while (count < max) {
    int i, got;
    lua_pushvalue(L, base);
    lua_call(L, 0, LUA_MULTRET);
    got = lua_gettop(L) - base;
    if (got == 0 || lua_isnil(L, base + 1)) {
      lua_settop(L, base);
      break;
    }
    for (i = 1; i <= got && count < max; i++) {
      lua_pushvalue(L, base + i);
      lua_rawseti(L, out_idx, ++count);
    }
    lua_settop(L, base);
  }
  lua_pop(L, 1);
  return count;
}

/* Runs a Lua pattern over getall's strings into a new table at the top. */
static void sel_re(lua_State *L, lua_Integer max) {
  html_sel *s = check_sel(L, 1);
  html_doc *d = sel_doc(L, 1);
  lua_Integer count = 0;
  size_t i;
  luaL_checkstring(L, 2);
  lua_newtable(L);
  for (i = 0; i < s->n && count < max; i++) {
    push_item(L, 1, s, i, d->doc);
    if (lua_type(L, -1) != LUA_TSTRING) {
      luaL_tolstring(L, -1, NULL);
      lua_remove(L, -2);
    }
    count = re_matches(L, 2, lua_gettop(L) - 1, count, max);
  }
}

/* sel:re(pattern) -> {matches} */
static int sel_re_l(lua_State *L) {
  lua_settop(L, 2);
  sel_re(L, LUA_MAXINTEGER);
  return 1;
}

/* sel:re_first(pattern [, default]) -> the first match, or default (nil) */
static int sel_re_first_l(lua_State *L) {
  lua_settop(L, 3);
  sel_re(L, 1);
  if (lua_rawgeti(L, -1, 1) == LUA_TNIL)
    lua_pushvalue(L, 3);
  return 1;
}

static int sel_len_l(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_sel(L, 1)->n);
  return 1;
}

/* sel[i]: a selection of item i alone (nil past the end); sel.tag: the first node's
 * element name; anything else a method. */
static int sel_index_l(lua_State *L) {
  html_sel *s = check_sel(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    int whole;
    lua_Integer i = lua_tointegerx(L, 2, &whole);
    html_sel *r;
    if (!whole || i < 1 || (lua_Unsigned)i > s->n)
      return 0;
    sel_doc(L, 1);
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, 1);
    lua_getiuservalue(L, 1, 2);
    r = sel_new(L, 1, 3, 4);
    r->item[r->n++] = s->item[i - 1];
    if (s->item[i - 1] == NULL) {
      lua_createtable(L, 1, 0);
      push_item(L, 1, s, (size_t)i - 1, NULL);
      lua_rawseti(L, -2, 1);
      lua_setiuservalue(L, -2, 3);
    }
    return 1;
  }
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "tag") == 0) {
    sel_doc(L, 1);
    if (s->n > 0 && s->item[0] != NULL && s->item[0]->type == XML_ELEMENT_NODE) {
      lua_pushstring(L, (const char *)s->item[0]->name);
      return 1;
    }
    return 0;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

/* Appends s[0..n) to b as a quoted string, escaped, cut at SHOW_BYTES. */
static void show_string(luaL_Buffer *b, const char *s, size_t n) {
  size_t i, cut = n > SHOW_BYTES ? SHOW_BYTES : n;
  while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
    cut--;                     /* not inside a UTF-8 character */
  luaL_addchar(b, '"');
  for (i = 0; i < cut; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      luaL_addchar(b, '\\');
      luaL_addchar(b, (char)c);
    } else if (c == '\n') {
      luaL_addstring(b, "\\n");
    } else if (c == '\t') {
      luaL_addstring(b, "\\t");
    } else if (c < 0x20 || c == 0x7f) {
      luaL_addstring(b, "\\?");
    } else {
      luaL_addchar(b, (char)c);
    }
  }
  luaL_addchar(b, '"');
  if (cut < n)
    luaL_addstring(b, "...");
}

/* tostring(sel): how many results, of which query, and the first few. */
static int sel_tostring_l(lua_State *L) {
  html_sel *s = check_sel(L, 1);
  html_doc *d;
  luaL_Buffer b;
  size_t i;
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);
  d = (html_doc *)lua_touserdata(L, -1);
  lua_getiuservalue(L, 1, 2);  /* 3: the query */
  if (d->doc == NULL) {
    lua_pushfstring(L, "selection (closed document) for '%s'", lua_tostring(L, 3));
    return 1;
  }
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "selection of %d for '%s'", (int)s->n, lua_tostring(L, 3));
  luaL_addvalue(&b);
  for (i = 0; i < s->n && i < SHOW_MAX; i++) {
    size_t n;
    const char *v;
    lua_pushfstring(L, "\n  [%d] ", (int)i + 1);
    luaL_addvalue(&b);
    push_item(L, 1, s, i, d->doc);
    if (lua_type(L, -1) == LUA_TSTRING) {
      v = lua_tolstring(L, -1, &n);
      show_string(&b, v, n);
      lua_pop(L, 1);
    } else {
      luaL_tolstring(L, -1, NULL);
      lua_remove(L, -2);
      luaL_addvalue(&b);
    }
  }
  if (s->n > SHOW_MAX) {
    lua_pushfstring(L, "\n  ... %d more", (int)(s->n - SHOW_MAX));
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

/* doc.base, or a method */
static int doc_index_l(lua_State *L) {
  html_doc *d = check_doc(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "base") == 0) {
    if (d->doc == NULL)
      luaL_error(L, "attempt to use a closed HTML document");
    doc_push_base(L, d);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int doc_tostring_l(lua_State *L) {
  html_doc *d = check_doc(L, 1);
  lua_pushfstring(L, "HTML document (%s): %p", d->doc != NULL ? "open" : "closed", (void *)d);
  return 1;
}

/* Makes the metatable name with __index a closure over the methods table. */
static void doc_createmeta(lua_State *L, const char *name, const luaL_Reg *methods,
                           const luaL_Reg *meta, lua_CFunction index) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_pushcclosure(L, index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

void sl_html_doc_register(lua_State *L) {
  static const luaL_Reg doc_methods[] = {
    {"xpath", doc_xpath_l},
    {"css", doc_css_l},
    {"close", doc_close_l},
    {NULL, NULL}
  };
  static const luaL_Reg doc_meta[] = {
    {"__gc", doc_close_l},
    {"__close", doc_close_l},
    {"__tostring", doc_tostring_l},
    {NULL, NULL}
  };
  static const luaL_Reg sel_methods[] = {
    {"xpath", sel_xpath_l},
    {"css", sel_css_l},
    {"get", sel_get_l},
    {"getall", sel_getall_l},
    {"attr", sel_attr_l},
    {"attrib", sel_attrib_l},
    {"attrs", sel_attrib_l},
    {"re", sel_re_l},
    {"re_first", sel_re_first_l},
    {"text", sel_text_l},
    {"html", sel_html_l},
    {"parent", sel_parent_l},
    {"children", sel_children_l},
    {NULL, NULL}
  };
  static const luaL_Reg sel_meta[] = {
    {"__len", sel_len_l},
    {"__tostring", sel_tostring_l},
    {NULL, NULL}
  };
  static const luaL_Reg box_meta[] = {
    {"__gc", xpath_box_gc},
    {NULL, NULL}
  };
  if (compile_ctx == NULL) {
    if ((compile_ctx = xmlXPathNewContext(NULL)) == NULL)
      luaL_error(L, "not enough memory");
    compile_ctx->error = xpath_silent;
  }
  doc_createmeta(L, SL_HTML_DOCUMENT_MT, doc_methods, doc_meta, doc_index_l);
  doc_createmeta(L, SL_HTML_SELECTION_MT, sel_methods, sel_meta, sel_index_l);
  luaL_newmetatable(L, SL_HTML_XPATH_MT);
  luaL_setfuncs(L, box_meta, 0);
  lua_pop(L, 1);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_xpath_key);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_css_key);
  lua_pushcfunction(L, html_parse_l);
  lua_setfield(L, -2, "parse");
}
