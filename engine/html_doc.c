/* html_doc.c: "sluice.html"'s documents and selections: html.parse (its tree is built in
 * html_doc_parse.c), and the XPath and CSS queries that give selections (taking their first
 * steps from html_xindex.c's element index where that holds). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/HTMLtree.h>
#include <libxml/parserInternals.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "internal.h"
#include "html_doc.h"

#define DOC_COST_FACTOR 12     /* tree bytes per HTML byte, about (see html_parse_l) */
#define CACHE_MAX 4096         /* compiled expressions kept per cache before it is emptied */
#define SHOW_MAX 5             /* results __tostring shows */
#define SHOW_BYTES 100         /* bytes of each it shows */

/* A selection: nodes of one document (uservalue 1), from a query (uservalue 2). An item
 * that is NULL is a Lua value (an XPath number, string or boolean, or a namespace node's
 * URI) kept at the same index in the table at uservalue 3. */
typedef struct html_sel {
  size_t n;
  xmlNodePtr item[];
} html_sel;

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
  sl_html_index_free(d->index);
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
  if ((d->doc = sl_html_doc_parse(body, n, label, label_len)) == NULL)
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
  if ((fast = sl_html_index_rewrite(expr, &deep)) != NULL) {  /* none when it does not compile */
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
    if (sl_html_index_register(d->xctx) != 0)
      luaL_error(L, "not enough memory");
  }
  memset(&spare, 0, sizeof spare);
  v.n = 0;
  for (i = 0; i < nctx; i++) {
    xmlXPathObjectPtr r;
    if (!queryable(ctx[i]))
      continue;
    d->xctx->node = ctx[i];
    if ((r = xmlXPathCompiledEval(sl_html_index_fast(d, b, ctx[i]) ? b->fast : b->comp, d->xctx)) ==
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
