/* html_doc.h: what html_doc.c (documents), html_sel.c (the selections queries give),
 * html_query.c (compiled queries and running them) and html_xindex.c (the element index
 * that queries take their first step from) share. From the top: html_doc.c, html_sel.c,
 * html_query.c, html_xindex.c; each calls only files below it. */
#ifndef SLUICE_HTML_DOC_H
#define SLUICE_HTML_DOC_H

#include <lua.h>
#include <uv.h>
#include <lauxlib.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

typedef struct doc_index doc_index;

typedef struct html_doc {
  xmlDocPtr doc;               /* NULL once closed */
  xmlXPathContextPtr xctx;     /* for queries; made at the first one */
  doc_index *index;            /* its elements by name; made at the first query using it */
  int fast;                    /* whether sl_html_index_fast may hold: -1 not known yet */
  int threaded;                /* made on html_async.c's thread: freed there too */
} html_doc;

typedef struct xpath_box {
  xmlXPathCompExprPtr comp;
  xmlXPathCompExprPtr fast;    /* the same taking steps from the element index, or NULL */
  int deep;                    /* whether fast looks at every found node's ancestors */
} xpath_box;

/* A selection: nodes of one document (uservalue 1), from a query (uservalue 2). An item
 * that is NULL is a Lua value (an XPath number, string or boolean, or a namespace node's
 * URI) kept at the same index in the table at uservalue 3. */
typedef struct html_sel {
  size_t n;
  xmlNodePtr item[];
} html_sel;

/* html_query.c: the compiled forms of the XPath expression (css: the CSS selector) at idx,
 * from the cache or compiled now (a bad one raises). */
xpath_box *sl_html_compiled(lua_State *L, int idx, int css);
/* Evaluates b with each of ctx[0..nctx) as the context node and pushes the selection of
 * all the results, in order (doc at doc_idx, the query string at q_idx). */
void sl_html_eval(lua_State *L, html_doc *d, xpath_box *b, xmlNodePtr *ctx, size_t nctx,
                  int doc_idx, int q_idx);
/* Pushes a new selection with room for n items (none yet) of the document at doc_idx, for
 * the query at q_idx. */
html_sel *sl_html_sel_new(lua_State *L, size_t n, int doc_idx, int q_idx);
/* Makes the compiled expressions' type and their caches (sl_html_doc_register calls it). */
void sl_html_query_register(lua_State *L);

/* html_sel.c: the methods, metamethods and __index (a closure over the methods) of the
 * selections' metatable, which sl_html_doc_register makes. */
extern const luaL_Reg sl_html_sel_methods[], sl_html_sel_meta[];
int sl_html_sel_index(lua_State *L);

/* html_doc_parse.c: the tree of body[0..n), its encoding from the label (a charset from
 * the HTTP header, label_len 0 without), a BOM or a <meta>; NULL when out of memory. */
xmlDocPtr sl_html_doc_parse(const char *body, size_t n, const char *label, size_t label_len);

/* html_async.c: a page parsed, and its tree freed, on a thread of its own. A job holds a
 * copy of the page (and of the charset label after it); done is set on the loop when doc
 * is made, and waiter woken. */
typedef struct sl_html_job {
  struct sl_html_job *next;
  int kind;
  char *body;
  size_t n, label_len;
  int has_label;
  xmlDocPtr doc;               /* the tree made, NULL when out of memory */
  int done;
  struct sl_task *waiter;
} sl_html_job;

sl_html_job *sl_html_job_new(const char *body, size_t n, const char *label,
                             size_t label_len);   /* NULL when out of memory */
/* Queues j (the thread starts at the first); -1 when there is no thread: parse here. */
int sl_html_async_parse(uv_loop_t *loop, sl_html_job *j);
/* Frees a tree sl_html_async_parse made, on its thread. */
void sl_html_async_free(xmlDocPtr doc);
/* html_doc_parse.c: the calling thread ends. */
void sl_html_doc_thread_end(void);

/* html_xindex.c */
int sl_html_index_fast(html_doc *d, const xpath_box *b, xmlNodePtr node);
char *sl_html_index_rewrite(const char *s, int *deep);
void sl_html_index_free(doc_index *x);
int sl_html_index_register(xmlXPathContextPtr x);

#endif
