/* html_doc.h: what html_doc.c (documents, queries, selections) and html_xindex.c (the
 * element index that queries take their first step from) share. */
#ifndef SLUICE_HTML_DOC_H
#define SLUICE_HTML_DOC_H

#include <libxml/tree.h>
#include <libxml/xpath.h>

typedef struct doc_index doc_index;

typedef struct html_doc {
  xmlDocPtr doc;               /* NULL once closed */
  xmlXPathContextPtr xctx;     /* for queries; made at the first one */
  doc_index *index;            /* its elements by name; made at the first query using it */
  int fast;                    /* whether sl_html_index_fast may hold: -1 not known yet */
} html_doc;

typedef struct xpath_box {
  xmlXPathCompExprPtr comp;
  xmlXPathCompExprPtr fast;    /* the same taking steps from the element index, or NULL */
  int deep;                    /* whether fast looks at every found node's ancestors */
} xpath_box;

/* html_doc_parse.c: the tree of body[0..n), its encoding from the label (a charset from
 * the HTTP header, label_len 0 without), a BOM or a <meta>; NULL when out of memory. */
xmlDocPtr sl_html_doc_parse(const char *body, size_t n, const char *label, size_t label_len);

/* html_xindex.c */
int sl_html_index_fast(html_doc *d, const xpath_box *b, xmlNodePtr node);
char *sl_html_index_rewrite(const char *s, int *deep);
void sl_html_index_free(doc_index *x);
int sl_html_index_register(xmlXPathContextPtr x);

#endif
