/* html_query.c: the XPath and CSS queries of "sluice.html": expressions compiled once and
 * cached (a CSS selector through require("sluice.css").xpath), and run against a document
 * with each of some nodes as context (taking their first steps from html_xindex.c's element
 * index where that holds), into a new selection. html_doc.c (documents) and html_sel.c
 * (selections) both query through it; it calls neither. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "sluice.h"
#include "html.h"
#include "html_doc.h"

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

/* ------------------------------------------------------------ selections */

html_sel *sl_html_sel_new(lua_State *L, size_t n, int doc_idx, int q_idx) {
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

/* ------------------------------------------------------------ registration */

void sl_html_query_register(lua_State *L) {
  static const luaL_Reg box_meta[] = {
    {"__gc", xpath_box_gc},
    {NULL, NULL}
  };
  if (compile_ctx == NULL) {
    if ((compile_ctx = xmlXPathNewContext(NULL)) == NULL)
      luaL_error(L, "not enough memory");
    compile_ctx->error = xpath_silent;
  }
  luaL_newmetatable(L, SL_HTML_XPATH_MT);
  luaL_setfuncs(L, box_meta, 0);
  lua_pop(L, 1);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_xpath_key);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_css_key);
}
