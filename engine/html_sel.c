/* html_sel.c: "sluice.html"'s selections, what doc:css() and doc:xpath() give (html_query.c
 * runs the queries and makes them): their results as strings and values, the nodes' text,
 * attributes and HTML, queries relative to them, and how they print. html_doc.c registers
 * their type. */
#include <limits.h>
#include <string.h>

#include <libxml/HTMLtree.h>
#include <libxml/xpath.h>

#include "sluice.h"
#include "html.h"
#include "html_doc.h"

#define SHOW_MAX 5             /* results __tostring shows */
#define SHOW_BYTES 100         /* bytes of each it shows */

/* A buffer kept from one serialization to the next; one that runs inside another (from a
 * Lua finalizer that the collector runs as the first allocates) makes its own. */
static xmlOutputBufferPtr dump_out;

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

/* sel:xpath(expr), sel:css(selector): relative to each node, results concatenated. */
static int sel_query(lua_State *L, int css) {
  html_sel *s = check_sel(L, 1);
  html_doc *d = sel_doc(L, 1);
  xpath_box *b;
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  b = sl_html_compiled(L, 2, css);
  lua_getiuservalue(L, 1, 1);
  sl_html_eval(L, d, b, s->item, s->n, 3, 2);
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
  r = sl_html_sel_new(L, 1, 2, 3);
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
  r = sl_html_sel_new(L, n, 2, 3);
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
int sl_html_sel_index(lua_State *L) {
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
    r = sl_html_sel_new(L, 1, 3, 4);
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

const luaL_Reg sl_html_sel_methods[] = {
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

const luaL_Reg sl_html_sel_meta[] = {
  {"__len", sel_len_l},
  {"__tostring", sel_tostring_l},
  {NULL, NULL}
};
