/* html_tags.h: what the tokenizing pass (html_tokens.c) asks of html_tags.c: which element a
 * tag's name is, and whether it is SVG or MathML. Only those two files include it. */
#ifndef SLUICE_HTML_TAGS_H
#define SLUICE_HTML_TAGS_H

#include "html.h"

/* The element names the pass cares about; 0 is any other. */
enum {
  N_OTHER, N_TITLE, N_TEXTAREA, N_XMP, N_IFRAME, N_NOEMBED, N_NOFRAMES, N_SCRIPT, N_STYLE,
  N_PLAINTEXT, N_AREA, N_BASE, N_LINK, N_SVG, N_MATH, N_FOREIGNOBJECT, N_DESC, N_MI, N_MO,
  N_MN, N_MS, N_MTEXT
};

/* Frames of the namespace stack, sl_html_tok's frames[] (see html_tags.c). */
enum { F_SVG = 1, F_MATH, F_ISLAND };

/* The names of the N_ values up to N_MTEXT, indexed by them, with their lengths. */
typedef struct sl_html_tag_name {
  const char *name;
  size_t len;
} sl_html_tag_name;
extern const sl_html_tag_name sl_html_tag_names[];

/* The N_ value of the tag name t->name (of its first bytes, lower-cased). */
int sl_html_tag_id(const sl_html_tok *t);
/* The tag's name, t->name, is complete, and t->nframes > 0 (outside SVG and MathML nothing
 * needs doing: the tag is HTML and keeps its name). For a start tag, pops the frames of the
 * foreign content an HTML element ends, and sets t->tag_foreign; for an end tag, pops the
 * frame it closes. Sets t->tag_renamed: the name is to be given a prefix. */
void sl_html_tag_named(sl_html_tok *t, int id);
/* A start tag, foreign or <svg> or <math>, ended at its '>' (t->self_closing known): pushes
 * the frame it opens, if any. */
void sl_html_tag_opened(sl_html_tok *t, int id);
/* Whether an element starting here would be SVG or MathML. */
int sl_html_tag_foreign(const sl_html_tok *t);

#endif
