/* html_doc.c: "sluice.html"'s documents: html.parse (its tree is built in html_doc_parse.c),
 * doc.base, and doc:xpath and doc:css, run by html_query.c, which give selections
 * (html_sel.c). It registers the document and selection types; it sits above both. */
#include <stdlib.h>
#include <string.h>

#include <libxml/xpath.h>

#include "sluice.h"
#include "url.h"
#include "html.h"
#include "html_doc.h"

#define DOC_COST_FACTOR 12     /* tree bytes per HTML byte, about (see doc_made) */
#define PARSE_ASYNC 1024       /* smaller pages are parsed faster than handed over */

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
      return sl_task_wait_work(L, me, parse_k, (lua_KContext)j);
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
  sl_html_query_register(L);
  doc_createmeta(L, SL_HTML_DOCUMENT_MT, doc_methods, doc_meta, doc_index_l);
  doc_createmeta(L, SL_HTML_SELECTION_MT, sl_html_sel_methods, sl_html_sel_meta,
                 sl_html_sel_index);
  lua_pushcfunction(L, html_parse_l);
  lua_setfield(L, -2, "parse");
}
