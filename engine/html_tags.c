/* html_tags.c: what a tag's name means to the tokenizing pass (html_tokens.c): which of the
 * elements it cares about the tag is, and, inside SVG and MathML, which namespace it is in,
 * which the HTML standard's tree builder decides and a tokenizer alone cannot. The pass asks
 * once a tag's name is read (the namespace only while SVG or MathML is open) and once a
 * start tag that opens or is foreign content ends. */
#include <string.h>

#include "sluice.h"
#include "html.h"
#include "html_tags.h"

const sl_html_tag_name sl_html_tag_names[] = {
  {"", 0}, {"title", 5}, {"textarea", 8}, {"xmp", 3}, {"iframe", 6}, {"noembed", 7},
  {"noframes", 8}, {"script", 6}, {"style", 5}, {"plaintext", 9}, {"area", 4}, {"base", 4},
  {"link", 4}, {"svg", 3}, {"math", 4}, {"foreignobject", 13}, {"desc", 4}, {"mi", 2},
  {"mo", 2}, {"mn", 2}, {"ms", 2}, {"mtext", 5},
};

/* HTML start tags that end SVG or MathML content (the standard's "in foreign content";
 * <font> only with some attributes, which this pass does not look at). */
static const char BREAKOUT[] =
  " b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i"
  " img li listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt"
  " u ul var ";

/* ------------------------------------------------------------- names */

/* A leaf, called for every tag: no frame to set up, and no stack. */
int sl_html_tag_id(const sl_html_tok *t) {
  size_t len = t->name_len;
  const char *nm = t->name;
#define IS(id) (memcmp(nm, sl_html_tag_names[id].name, len) == 0)
  if (len == 0 || len > 14 || t->name_odd)
    return N_OTHER;
  switch (len) {              /* most tags are none of these: tell them apart quickly */
  case 2:
    if (nm[0] == 'm' && (nm[1] == 'i' || nm[1] == 'o' || nm[1] == 'n' || nm[1] == 's'))
      return nm[1] == 'i' ? N_MI : nm[1] == 'o' ? N_MO : nm[1] == 'n' ? N_MN : N_MS;
    break;
  case 3:
    if (IS(N_XMP) || IS(N_SVG))
      return nm[0] == 'x' ? N_XMP : N_SVG;
    break;
  case 4:
    if (IS(N_AREA) || IS(N_BASE) || IS(N_LINK) || IS(N_MATH) || IS(N_DESC))
      return nm[0] == 'a' ? N_AREA : nm[0] == 'b' ? N_BASE : nm[0] == 'l' ? N_LINK
           : nm[0] == 'm' ? N_MATH : N_DESC;
    break;
  case 5:
    if (IS(N_TITLE) || IS(N_STYLE) || IS(N_MTEXT))
      return nm[0] == 't' ? N_TITLE : nm[0] == 's' ? N_STYLE : N_MTEXT;
    break;
  case 6:
    if (IS(N_IFRAME) || IS(N_SCRIPT))
      return nm[0] == 'i' ? N_IFRAME : N_SCRIPT;
    break;
  case 7:
    if (IS(N_NOEMBED))
      return N_NOEMBED;
    break;
  case 8:
    if (IS(N_TEXTAREA) || IS(N_NOFRAMES))
      return nm[0] == 't' ? N_TEXTAREA : N_NOFRAMES;
    break;
  case 9:
    if (IS(N_PLAINTEXT))
      return N_PLAINTEXT;
    break;
  case 13:
    if (IS(N_FOREIGNOBJECT))
      return N_FOREIGNOBJECT;
    break;
  }
#undef IS
  return N_OTHER;
}

/* Whether t->name is one of BREAKOUT's (asked only in foreign content). */
static int tag_breaks_out(const sl_html_tok *t) {
  char key[24];
  size_t len = t->name_len;
  if (len == 0 || len > 14 || t->name_odd)
    return 0;
  key[0] = ' ';
  memcpy(key + 1, t->name, len);
  key[len + 1] = ' ';
  key[len + 2] = '\0';
  return strstr(BREAKOUT, key) != NULL;
}

/* ------------------------------------------------------------- namespaces */
/* A small stand-in for the tree builder: a stack of the open <svg> and <math> elements and
 * of the elements inside them where HTML resumes (foreignObject, desc and title in SVG;
 * mi, mo, mn, ms and mtext in MathML). Elements are foreign when the top frame is SVG or
 * MathML. Frames deeper than SL_HTML_NS_MAX are not tracked. */

int sl_html_tag_foreign(const sl_html_tok *t) {
  return t->nframes > 0 && t->frames[t->nframes - 1].kind != F_ISLAND;
}

static void tag_push(sl_html_tok *t, int kind, int name, int renamed) {
  if (t->nframes == SL_HTML_NS_MAX)
    return;
  t->frames[t->nframes].kind = (uint8_t)kind;
  t->frames[t->nframes].name = (uint8_t)name;
  t->frames[t->nframes].renamed = (uint8_t)renamed;
  t->nframes++;
}

/* Names that mean something to libxml2 or to the link extractor as HTML elements: inside
 * SVG or MathML they are given a prefix, so that neither takes them for HTML. */
static int tag_renamed_in_foreign(int id) {
  return id >= N_TITLE && id <= N_LINK;
}

/* A start tag's name is complete: pops foreign frames for an HTML element that ends foreign
 * content, and says whether the tag is foreign (then t->tag_renamed tells if it is given a
 * prefix). Frames are pushed when the tag ends, once "/>" is known (sl_html_tag_opened). */
static void tag_start_name(sl_html_tok *t, int id) {
  if (sl_html_tag_foreign(t) && id == N_OTHER && tag_breaks_out(t))
    while (sl_html_tag_foreign(t))
      t->nframes--;
  t->tag_foreign = (uint8_t)sl_html_tag_foreign(t);
  t->tag_renamed = (uint8_t)(t->tag_foreign && tag_renamed_in_foreign(id));
}

/* An end tag's name is complete: pops the frame it closes, if any, and sets tag_renamed to
 * match the start tag's name. */
static void tag_end_name(sl_html_tok *t, int id) {
  int k;
  t->tag_renamed = 0;
  if (t->nframes == 0)
    return;
  if (t->frames[t->nframes - 1].kind == F_ISLAND) {
    if (t->frames[t->nframes - 1].name == id) {
      t->tag_renamed = t->frames[t->nframes - 1].renamed;
      t->nframes--;
    }
    return;
  }
  if ((t->name_len == 1 && t->name[0] == 'p') ||
      (t->name_len == 2 && t->name[0] == 'b' && t->name[1] == 'r')) {
    while (sl_html_tag_foreign(t))   /* </p> and </br> end foreign content too */
      t->nframes--;
    return;
  }
  for (k = t->nframes - 1; k >= 0 && t->frames[k].kind != F_ISLAND; k--) {
    if (t->frames[k].name == id) {
      t->tag_renamed = t->frames[k].renamed;
      t->nframes = (uint8_t)k;
      return;
    }
  }
  t->tag_renamed = (uint8_t)tag_renamed_in_foreign(id);
}

void sl_html_tag_named(sl_html_tok *t, int id) {
  if (t->end_tag)
    tag_end_name(t, id);
  else
    tag_start_name(t, id);
}

/* A start tag ended at its '>': pushes the frame it opens. */
void sl_html_tag_opened(sl_html_tok *t, int id) {
  int top = t->nframes > 0 ? t->frames[t->nframes - 1].kind : 0;
  if (t->self_closing)
    return;                    /* "/>" makes an SVG or MathML element empty */
  if (!t->tag_foreign) {
    if (id == N_SVG || id == N_MATH)
      tag_push(t, id == N_SVG ? F_SVG : F_MATH, id, 0);
    return;
  }
  if (top == F_SVG && id == N_SVG)
    tag_push(t, F_SVG, id, 0);   /* (in MathML, <svg> is a MathML element but under
                                    annotation-xml, which this pass does not follow) */
  else if (top == F_SVG && (id == N_FOREIGNOBJECT || id == N_DESC || id == N_TITLE))
    tag_push(t, F_ISLAND, id, t->tag_renamed);
  else if (top == F_MATH && id == N_MATH)
    tag_push(t, F_MATH, id, 0);
  else if (top == F_MATH && id >= N_MI && id <= N_MTEXT)
    tag_push(t, F_ISLAND, id, 0);
}
