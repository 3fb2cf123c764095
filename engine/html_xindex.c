/* html_xindex.c: the element index of html.parse's documents, and the rewriting of XPath
 * expressions to take their first steps from it (html_doc.c runs them). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "sluice.h"
#include "html.h"
#include "html_doc.h"

/* ------------------------------------------------------------ the element index */

/* Nearly every query starts by walking the whole tree for elements of one name (a CSS
 * selector's descendant-or-self::NAME, XPath's //NAME), and libxml2 walks it again for
 * each. A document's first such query lists its elements once, grouped by name, and the
 * queries that start so take their first step from that list instead: the expression is
 * rewritten to call INDEX_FN('NAME') there, which gives the same nodes in the same
 * (document) order. sl_html_index_fast says where that holds. */
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
  return sl_fnv1a(SL_FNV_BASIS, s, strlen((const char *)s));
}

/* The slot of name: its group's, or the free one where it would go. */
static unsigned *index_slot(const doc_index *x, const xmlChar *name) {
  size_t i = name_hash(name) & (x->cap - 1);
  while (x->slot[i] != 0 && !xmlStrEqual(x->group[x->slot[i] - 1].name, name))
    i = (i + 1) & (x->cap - 1);
  return &x->slot[i];
}

void sl_html_index_free(doc_index *x) {
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
  sl_html_index_free(x);
  return NULL;
}

/* The argument of INDEX_FN or INDEX_PARENTS (popped): the document's elements of that name
 * ("*": all), in document order, *n of them at *src; and *set, an empty node set for the
 * result, or NULL when the call failed (an XPath error is then set). */
static void index_arg(xmlXPathParserContextPtr ctxt, int nargs, xmlNodePtr **src, size_t *n,
                      xmlNodeSetPtr *set) {
  html_doc *d = (html_doc *)ctxt->context->userData;
  xmlXPathObjectPtr name;
  unsigned *slot;
  *src = NULL;
  *n = 0;
  *set = NULL;
  CHECK_ARITY(1);
  CAST_TO_STRING;
  CHECK_TYPE(XPATH_STRING);
  if (d == NULL || d->doc == NULL)
    XP_ERROR(XPATH_INVALID_CTXT);
  if (d->index == NULL && (d->index = index_build(d->doc)) == NULL)
    XP_ERROR(XPATH_MEMORY_ERROR);
  name = valuePop(ctxt);
  if (xmlStrEqual(name->stringval, BAD_CAST "*")) {
    *src = d->index->all;
    *n = d->index->nel;
  } else if (*(slot = index_slot(d->index, name->stringval)) != 0) {
    *src = d->index->by_name + d->index->group[*slot - 1].start;
    *n = d->index->group[*slot - 1].n;
  }
  xmlXPathFreeObject(name);
  if ((*set = xmlXPathNodeSetCreate(NULL)) == NULL)
    XP_ERROR(XPATH_MEMORY_ERROR);
}

/* INDEX_FN(name): the document's elements of that name ("*": all), in document order. */
static void index_fn(xmlXPathParserContextPtr ctxt, int nargs) {
  xmlNodeSetPtr set;
  xmlNodePtr *src;
  size_t n;
  index_arg(ctxt, nargs, &src, &n, &set);
  if (set == NULL)
    return;
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
  xmlNodeSetPtr set;
  xmlNodePtr *src, *p;
  size_t n, i, k = 0;
  index_arg(ctxt, nargs, &src, &n, &set);
  if (set == NULL)
    return;
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

/* Whether b's expression rewritten by sl_html_index_rewrite gives what the original does with node
 * as the context node (node is the root element and the only element at the top, so that
 * its descendants-or-self are all the document's elements), and costs less: one that looks
 * at ancestors takes the depth for each node found, which a tree nested deeper than
 * INDEX_DEPTH_MAX would make quadratic. */
int sl_html_index_fast(html_doc *d, const xpath_box *b, xmlNodePtr node) {
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
char *sl_html_index_rewrite(const char *s, int *deep) {
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

/* Registers INDEX_FN and INDEX_PARENTS in x, whose userData is the html_doc queried. */
int sl_html_index_register(xmlXPathContextPtr x) {
  if (xmlXPathRegisterFunc(x, BAD_CAST INDEX_FN, index_fn) != 0 ||
      xmlXPathRegisterFunc(x, BAD_CAST INDEX_PARENTS, index_parents_fn) != 0)
    return -1;
  return 0;
}

