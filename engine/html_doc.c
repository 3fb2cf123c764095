/* html_doc.c: "sluice.html"'s documents: html.parse (its tree is built in html_doc_parse.c),
 * and the XPath and CSS queries, compiled once and cached, that give selections (html_sel.c;
 * taking their first steps from html_xindex.c's element index where that holds). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "sluice.h"
#include "url.h"
#include "html.h"
#include "html_doc.h"

#define DOC_COST_FACTOR 12     /* tree bytes per HTML byte, about (see doc_made) */
#define PARSE_ASYNC 1024       /* smaller pages are parsed faster than handed over */
#define CACHE_MAX 4096         /* compiled expressions kept per cache before it is emptied */

static xmlXPathContextPtr compile_ctx;   /* compiles every expression; lives as long as the
                                            process, like libxml2's own globals */
static char cache_xpath_key, cache_css_key;  /* registry keys of the two caches */

/* The results of one query, gathered before the selection is made. */
typedef struct node_vec {
  xmlNodePtr *p;
  size_t n, cap;
} node_vec;

/* A buffer kept from one query to the next. A query takes it for its own while it runs,
 * and so does one that runs inside it (from a Lua finalizer that the collector runs as the
 * first allocates). */
static node_vec spare;

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
  if (d->doc != NULL && d->threaded)
    sl_html_async_free(d->doc);
  else if (d->doc != NULL)
    xmlFreeDoc(d->doc);
  sl_html_index_free(d->index);
  d->index = NULL;
  d->xctx = NULL;
  d->doc = NULL;
}

/* Gives the document at idx (the stack's top) its tree, or raises when there is none (out of
 * memory). The tree lives outside Lua's heap: it is counted as allocated there, so that a
 * script that never closes its documents has them collected at the pace it parses them.
 * libxml2's tree of a page takes 10 to 15 times its bytes (Python's documentation: 12),
 * lxml's as much; pages dense in small elements take more. */
static int doc_made(lua_State *L, int idx, xmlDocPtr doc, size_t n, int threaded) {
  html_doc *d = check_doc(L, idx);
  if ((d->doc = doc) == NULL)
    return luaL_error(L, "not enough memory");
  d->threaded = threaded;
  lua_gc(L, LUA_GCSTEP, n / 1024 < INT_MAX / 2 / DOC_COST_FACTOR
                            ? (int)(n / 1024 * DOC_COST_FACTOR + 1) : INT_MAX / 2);
  lua_settop(L, idx);
  return 1;
}

static void parse_cleanup(sl_task *t, void *data) {
  (void)t;
  (void)data;
}

/* The parse cannot be stopped halfway: a cancellation meanwhile waits for it to end, and
 * is delivered at the task's next wait (sl_task_wait_work). The document is at 4 (after
 * html.parse's three arguments). */
static int parse_k(lua_State *L, int status, lua_KContext ctx) {
  sl_html_job *j = (sl_html_job *)ctx;
  sl_task *me = sl_task_current(L);
  xmlDocPtr doc;
  size_t n;
  (void)status;
  if (!sl_task_work_done(L, j->done))
    return sl_task_wait_work(L, me, parse_k, ctx);
  doc = j->doc;
  n = j->n;
  free(j);
  return doc_made(L, 4, doc, n, 1);
}

/* html.parse(body [, base [, charset]]) -> doc *waits* in a task for a page of PARSE_ASYNC
 * bytes or more, parsed on html_async.c's thread meanwhile. */
static int html_parse_l(lua_State *L) {
  size_t n, label_len = 0;
  const char *body = luaL_checklstring(L, 1, &n);
  const char *label = luaL_optlstring(L, 3, NULL, &label_len);
  html_doc *d;
  sl_task *me;
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
  lua_settop(L, idx);
  if (n >= PARSE_ASYNC && (me = sl_task_current(L)) != NULL && lua_isyieldable(L)) {
    sl_html_job *j = sl_html_job_new(body, n, label, label_len);
    if (j == NULL)
      return luaL_error(L, "not enough memory");
    j->waiter = me;
    if (sl_html_async_parse(SL_ENGINE(L)->loop, j) == 0) {
      me->catch_cancel = 1;
      return sl_task_wait(L, me, parse_cleanup, j, -1, parse_k, (lua_KContext)j);
    }
    free(j);
  }
  return doc_made(L, idx, sl_html_doc_parse(body, n, label, label_len), n, 0);
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

/* ------------------------------------------------------------ compiled XPath */

static const char *const XPATH_ERRORS[] = {
  "ok", "number encoding", "unfinished literal", "start of literal",
  "expected $ for a variable reference", "undefined variable", "invalid predicate",
  "invalid expression",
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

/* The box the cache holds for the key at key_idx, or NULL. */
static xpath_box *cache_get(lua_State *L, void *cache_key, int key_idx) {
  xpath_box *b;
  lua_rawgetp(L, LUA_REGISTRYINDEX, cache_key);
  lua_pushvalue(L, key_idx);
  b = lua_rawget(L, -2) == LUA_TUSERDATA ? (xpath_box *)lua_touserdata(L, -1) : NULL;
  lua_pop(L, 2);
  return b;
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
  xpath_box *b = cache_get(L, &cache_xpath_key, idx);
  if (b != NULL)
    return b;
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
  xpath_box *b = cache_get(L, &cache_css_key, idx);
  if (b != NULL)
    return b;
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

xpath_box *sl_html_compiled(lua_State *L, int idx, int css) {
  return css ? css_compiled(L, idx) : xpath_compiled(L, idx);
}

/* ------------------------------------------------------------ queries */

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

void sl_html_eval(lua_State *L, html_doc *d, xpath_box *b, xmlNodePtr *ctx, size_t nctx,
                  int doc_idx, int q_idx) {
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
  s = sl_html_sel_new(L, v.n, doc_idx, q_idx);
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
  b = sl_html_compiled(L, 2, css);
  root = xmlDocGetRootElement(d->doc);
  sl_html_eval(L, d, b, &root, 1, 1, 2);
  return 1;
}

static int doc_xpath_l(lua_State *L) {
  return doc_query(L, 0);
}

static int doc_css_l(lua_State *L) {
  return doc_query(L, 1);
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
  doc_createmeta(L, SL_HTML_SELECTION_MT, sl_html_sel_methods, sl_html_sel_meta,
                 sl_html_sel_index);
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
