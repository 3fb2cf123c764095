/* html_tokens.c: a pass over a page before libxml2 reads it, tokenizing as the HTML standard
 * does and rewriting what libxml2's HTML 4 tokenizer would read otherwise into what it reads
 * the same way, so that a page gives the links a browser shows, no fewer and no more.
 *
 * Rewritten: NUL bytes (libxml2 cuts an attribute value at one), the content of raw-text
 * elements (title, textarea, xmp, iframe, noembed, noframes, script and style hold text only,
 * and plaintext the rest of the page: their '<' become "&lt;"), bogus comments and CDATA,
 * comments closed early ("<!-->"), odd tag and attribute names, end tags with attributes,
 * "/" between attributes, and the names of SVG and MathML elements that mean something else
 * in HTML (an SVG <base> or <title> becomes <svg:base>, <svg:title>).
 *
 * Dropped, since no result reads it and libxml2 spends most of its time on it: text other
 * than the title's (raw text included), and the attributes of elements other than <a>,
 * <area>, <link>, <base> and <meta>. Tags, comments and the title pass byte for byte
 * otherwise. (Which start tags libxml2 reports does not depend on the text between them:
 * the links of 20,417 real pages were the same with and without it.)
 *
 * This file is the tokenizer's states and the rewriting; which element a tag is, and whether
 * it is SVG or MathML (a stand-in for the tree builder), is html_tags.c's. */
#include <string.h>

#include "sluice.h"
#include "html.h"
#include "html_tags.h"

enum {
  T_DATA, T_TAG_OPEN, T_END_TAG_OPEN, T_TAG_NAME, T_BEFORE_ATTR, T_ATTR_NAME, T_AFTER_ATTR,
  T_BEFORE_VALUE, T_VALUE_DQ, T_VALUE_SQ, T_VALUE_UNQ, T_AFTER_VALUE, T_SELF_CLOSING,
  T_COMMENT_START, T_COMMENT_START_DASH, T_COMMENT, T_COMMENT_END_DASH, T_COMMENT_END,
  T_COMMENT_END_BANG, T_DOCTYPE, T_BOGUS, T_CDATA, T_RAW, T_PLAINTEXT
};

/* A run of the pass over one chunk: where the output stands. Output is s itself until the
 * first change; from then on it is built in t->out. */
typedef struct tok_run {
  sl_html_tok *t;
  const char *s;
  size_t n;
  size_t from;                 /* s[from..] is not in t->out yet */
  int copying;                 /* t->out holds s[0..from) rewritten */
  int failed;                  /* an allocation failed */
  int dropping;                /* s[drop_from..] is attributes to leave out (drop_attrs) */
  size_t drop_from;
} tok_run;

static int is_space(unsigned c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static int is_alpha(unsigned c) {
  return (c | 32) - 'a' < 26;
}

/* Characters libxml2 takes in a tag name (htmlParseHTMLName). */
static int is_name_char(unsigned c) {
  return is_alpha(c) || c - '0' < 10 || c == ':' || c == '-' || c == '_' || c == '.';
}

/* Replaces s[at..at+len) with r[0..rn); at is not before r->from. */
static void tok_replace(tok_run *r, size_t at, size_t len, const char *rep, size_t rn) {
  sl_html_tok *t = r->t;
  if (r->failed)
    return;
  if (!r->copying) {
    t->out.len = 0;
    r->copying = 1;
  }
  if ((at > r->from && sl_buf_add(&t->out, r->s + r->from, at - r->from) < 0) ||
      (rn > 0 && sl_buf_add(&t->out, rep, rn) < 0))
    r->failed = 1;
  r->from = at + len;
}

/* Leaves out the attributes read since drop_from, up to end: in one piece, not a byte at a
 * time. */
static void tok_drop_flush(tok_run *r, size_t end) {
  if (r->dropping) {
    r->dropping = 0;
    if (end > r->drop_from)
      tok_replace(r, r->drop_from, end - r->drop_from, "", 0);
  }
}

/* ------------------------------------------------------------- the tokenizer */

/* The tag name s[t->name_at..i) is complete: decides the tag's namespace and writes the name
 * out with its prefix and with any byte libxml2 would stop at replaced by '-'. */
static void tok_name_done(tok_run *r, size_t i) {
  sl_html_tok *t = r->t;
  int id = sl_html_tag_id(t), keep, keep_attrs;
  t->tag_id = (uint8_t)id;
  t->tag_dropped = 0;
  if (t->nframes > 0)
    sl_html_tag_named(t, id);
  else
    t->tag_foreign = t->tag_renamed = 0;
  /* html.c reads the hrefs of <a>, <area>, <link> and <base>, <meta>'s name, content,
   * charset and http-equiv, and the first <title>'s text; an SVG <a> is a link too, an SVG
   * <link> or <title> (renamed) is not. Other tags go whole, and the attributes of those
   * that stay other than these. */
  keep_attrs = (t->name_len == 1 && t->name[0] == 'a') ||
               (t->name_len == 4 && memcmp(t->name, "meta", 4) == 0) ||
               ((id == N_AREA || id == N_BASE || id == N_LINK) && !t->tag_renamed);
  keep = keep_attrs || (id == N_TITLE && !t->tag_renamed);
  t->drop_attrs = (uint8_t)(t->end_tag || !keep_attrs);
  if (!t->name_here) {
    t->started |= !t->end_tag;
    return;                    /* the name began in an earlier chunk: written as it was */
  }
  /* An end tag before any start tag means nothing to a browser, but libxml2's push parser,
   * with no element open, takes the page for ended and drops the rest. */
  if (t->lt_here && (!keep || (t->end_tag && !t->started))) {
    t->tag_dropped = 1;
    tok_replace(r, t->lt_at, i - t->lt_at, "", 0);
    return;
  }
  t->started |= !t->end_tag;
  if (t->tag_renamed) {
    int math = t->nframes > 0 && t->frames[t->nframes - 1].kind == F_MATH;
    tok_replace(r, t->name_at, 0, math ? "math:" : "svg:", math ? 5 : 4);
  }
  if (t->name_odd) {
    size_t k;
    for (k = t->name_at; k < i; k++)
      if (!is_name_char((unsigned char)r->s[k]))
        tok_replace(r, k, 1, "-", 1);
  }
}

/* The tag ends at s[i] == '>'. */
static void tok_tag_end(tok_run *r, size_t i) {
  sl_html_tok *t = r->t;
  tok_drop_flush(r, i);
  t->state = T_DATA;
  if (t->tag_dropped)
    tok_replace(r, i, 1, "", 0);
  if (t->end_tag)
    return;
  if (t->tag_foreign || t->tag_id == N_SVG || t->tag_id == N_MATH) {
    sl_html_tag_opened(t, t->tag_id);
  } else if (t->tag_id >= N_TITLE && t->tag_id <= N_STYLE) {
    t->raw = t->tag_id;        /* "/>" changes nothing on an HTML element */
    t->state = T_RAW;
  } else if (t->tag_id == N_PLAINTEXT) {
    t->state = T_PLAINTEXT;
  }
}

/* The first byte of an attribute name: libxml2 wants a letter, '_' or ':'. */
static void tok_attr_first(tok_run *r, size_t i, unsigned c) {
  if (!is_alpha(c) && c != '_' && c != ':')
    tok_replace(r, i, 1, "_", 1);
}

enum { A_NEXT, A_REREAD };

/* One byte s[*ip] == c of a tag after its name, in one of the attribute states (up to
 * *ip when it reads ahead). Returns A_REREAD when c is to be read again in the new state,
 * A_NEXT when it is consumed. Rewrites only when the tag keeps its attributes (edit): an
 * end tag's mean nothing, and after its name libxml2 misreads what follows, so only
 * "</name>" is left; a start tag's that no result reads go too (tok_drop_flush). nul: the
 * chunk holds NUL bytes. */
static int tok_attr(tok_run *r, size_t *ip, unsigned c, int nul) {
  sl_html_tok *t = r->t;
  size_t i = *ip;
  int edit = !t->drop_attrs;
  switch (t->state) {
  case T_BEFORE_ATTR:
  case T_AFTER_ATTR:
    if (is_space(c))
      return A_NEXT;
    if (c == '>') {
      tok_tag_end(r, i);
      return A_NEXT;
    }
    if (c == '/') {
      /* "/>" makes an SVG element empty, and a '/' elsewhere separates attributes
       * ("<a/href=x>" has an href); libxml2 needs neither: it reads a space. */
      if (edit)
        tok_replace(r, i, 1, " ", 1);
      t->state = T_SELF_CLOSING;
    } else if (c == '=' && t->state == T_AFTER_ATTR) {
      t->state = T_BEFORE_VALUE;
    } else {
      if (edit)
        tok_attr_first(r, i, c);
      t->state = T_ATTR_NAME;
    }
    return A_NEXT;
  case T_ATTR_NAME:
    if (edit) {                /* the plain part of the name in one go */
      while (is_name_char(c) && i + 1 < r->n)
        c = (unsigned char)r->s[++i];
      *ip = i;
    }
    if (c == '/' || c == '>') {
      t->state = T_BEFORE_ATTR;
      return A_REREAD;
    }
    if (is_space(c))
      t->state = T_AFTER_ATTR;
    else if (c == '=')
      t->state = T_BEFORE_VALUE;
    else if (edit && !is_name_char(c))
      tok_replace(r, i, 1, "-", 1);
    return A_NEXT;
  case T_BEFORE_VALUE:
    if (c == '"') {
      t->state = T_VALUE_DQ;
    } else if (c == '\'') {
      t->state = T_VALUE_SQ;
    } else if (c == '>') {
      tok_tag_end(r, i);
      return A_NEXT;
    } else if (!is_space(c)) {
      t->state = T_VALUE_UNQ;
      return A_REREAD;
    }
    return A_NEXT;
  case T_VALUE_DQ:
  case T_VALUE_SQ: {
    unsigned quote = t->state == T_VALUE_DQ ? '"' : '\'';
    if (!nul) {                /* skip to the closing quote */
      const char *q = (const char *)memchr(r->s + i, (int)quote, r->n - i);
      size_t end = q != NULL ? (size_t)(q - r->s) : r->n;
      if (q == NULL) {
        *ip = r->n - 1;
        return A_NEXT;
      }
      *ip = i = end;
      c = quote;
    }
    if (c == quote)
      t->state = T_AFTER_VALUE;
    else if (c == 0 && edit)
      tok_replace(r, i, 1, "&#xFFFD;", 8);   /* what a browser reads for NUL */
    return A_NEXT;
  }
  case T_VALUE_UNQ:
    if (c == '>') {
      tok_tag_end(r, i);
      return A_NEXT;
    }
    if (is_space(c))
      t->state = T_BEFORE_ATTR;
    else if (c == 0 && edit)
      tok_replace(r, i, 1, "&#xFFFD;", 8);
    return A_NEXT;
  case T_AFTER_VALUE:
    t->state = T_BEFORE_ATTR;
    if (edit && !is_space(c) && c != '/' && c != '>')
      tok_replace(r, i, 0, " ", 1);   /* a="x"b="y": two attributes */
    return A_REREAD;
  default:                     /* T_SELF_CLOSING */
    if (c == '>') {
      t->self_closing = 1;
      tok_tag_end(r, i);
      return A_NEXT;
    }
    t->state = T_BEFORE_ATTR;
    return A_REREAD;
  }
}

/* Whether s[i..] starts with the end tag of the raw-text element t->raw. Returns 1 yes, 0
 * no, and 0 too when the chunk ends before it can tell (it is then text). */
static int tok_raw_end(const tok_run *r, size_t i) {
  const char *name = sl_html_tag_names[r->t->raw].name;
  size_t len = sl_html_tag_names[r->t->raw].len, k;
  if (i + 2 + len >= r->n || r->s[i + 1] != '/')
    return 0;
  for (k = 0; k < len; k++)
    if (((unsigned char)r->s[i + 2 + k] | 32) != (unsigned char)name[k])
      return 0;
  return is_space((unsigned char)r->s[i + 2 + len]) || r->s[i + 2 + len] == '/' ||
         r->s[i + 2 + len] == '>';
}

/* Whether s[i..] starts with word, ASCII case-insensitively (word in lower case). */
static int tok_looking_at(const tok_run *r, size_t i, const char *word) {
  size_t k, len = strlen(word);
  if (i + len > r->n)
    return 0;
  for (k = 0; k < len; k++) {
    unsigned c = (unsigned char)r->s[i + k];
    if ((is_alpha(c) ? c | 32 : c) != (unsigned char)word[k])
      return 0;
  }
  return 1;
}

/* A '<' read as text: libxml2 must read it as text too. */
static void tok_text_lt(tok_run *r, size_t at) {
  if (r->t->lt_here)
    tok_replace(r, at, 1, "&lt;", 4);
}

/* Starts a tag name at s[i], a letter. */
static void tok_name_start(sl_html_tok *t, size_t i, unsigned c, int end_tag) {
  t->state = T_TAG_NAME;
  t->end_tag = (uint8_t)end_tag;
  t->self_closing = 0;
  t->name_at = i;
  t->name_here = 1;
  t->name_odd = 0;
  t->name[0] = (char)(c | 32);
  t->name_len = 1;
}

/* Runs the state machine over s[0..n). */
/* Text s[i..end) in data, which no result reads (the title is raw text), goes: it is most
 * of a page, and libxml2 reads it a character at a time (and white space, looking for a
 * parent that takes it). */
static void tok_text(tok_run *r, size_t i, size_t end) {
  if (end > i)
    tok_replace(r, i, end - i, "", 0);
}

static void tok_scan(tok_run *r) {
  sl_html_tok *t = r->t;
  const char *s = r->s;
  size_t n = r->n, i = 0;
  int nul = memchr(s, 0, n) != NULL;   /* without NUL bytes, memchr skips text */
  while (i < n && !r->failed) {
    unsigned c = (unsigned char)s[i];
    switch (t->state) {
    case T_DATA: {
      const char *lt;
      if (!nul) {
        lt = (const char *)memchr(s + i, '<', n - i);
        tok_text(r, i, lt != NULL ? (size_t)(lt - s) : n);
        if (lt == NULL)
          return;
        i = (size_t)(lt - s);
      } else if (c == 0) {
        tok_replace(r, i, 1, "", 0);   /* browsers drop NUL in text */
        break;
      } else if (c != '<') {
        break;
      }
      t->lt_at = i;
      t->lt_here = 1;
      if (i + 1 < n && is_alpha((unsigned char)s[i + 1])) {
        tok_name_start(t, i + 1, (unsigned char)s[i + 1], 0);   /* most '<' start a tag */
        i += 2;
        continue;
      }
      t->state = T_TAG_OPEN;
      break;
    }
    case T_TAG_OPEN:
      if (is_alpha(c)) {
        tok_name_start(t, i, c, 0);
      } else if (c == '/') {
        t->state = T_END_TAG_OPEN;
      } else if (c == '!') {
        if (tok_looking_at(r, i + 1, "--")) {
          t->state = T_COMMENT_START;
          i += 2;
        } else if (tok_looking_at(r, i + 1, "doctype")) {
          t->state = T_DOCTYPE;
          i += 7;
        } else if (sl_html_tag_foreign(t) && i + 8 <= n && memcmp(s + i + 1, "[CDATA[", 7) == 0) {
          tok_text_lt(r, t->lt_at);    /* a CDATA section: text */
          t->state = T_CDATA;
          t->match = 0;
          i += 7;
        } else {
          tok_text_lt(r, t->lt_at);
          t->state = T_BOGUS;
        }
      } else if (c == '?') {
        tok_text_lt(r, t->lt_at);
        t->state = T_BOGUS;
      } else {
        tok_text_lt(r, t->lt_at);
        t->state = T_DATA;
        continue;              /* c is text: read it again as such */
      }
      break;
    case T_END_TAG_OPEN:
      if (is_alpha(c)) {
        tok_name_start(t, i, c, 1);
      } else if (c == '>') {
        if (t->lt_here)
          tok_replace(r, t->lt_at, i + 1 - t->lt_at, "", 0);   /* "</>" is nothing */
        t->state = T_DATA;
      } else {
        tok_text_lt(r, t->lt_at);
        t->state = T_BOGUS;
        continue;
      }
      break;
    case T_TAG_NAME:
      for (;;) {               /* the whole name in one go: tags are most of the work */
        if (is_space(c) || c == '/' || c == '>') {
          tok_name_done(r, i);
          t->state = T_BEFORE_ATTR;
          break;
        }
        if (!is_name_char(c))
          t->name_odd = 1;
        if (t->name_len < sizeof t->name)
          t->name[t->name_len] = (char)(c - 'A' < 26 ? c | 32 : c);
        if (t->name_len < 255)
          t->name_len++;
        if (++i == n)
          return;
        c = (unsigned char)s[i];
      }
      continue;
    case T_BEFORE_ATTR:
    case T_ATTR_NAME:
    case T_AFTER_ATTR:
    case T_BEFORE_VALUE:
    case T_VALUE_DQ:
    case T_VALUE_SQ:
    case T_VALUE_UNQ:
    case T_AFTER_VALUE:
    case T_SELF_CLOSING:
      if (t->drop_attrs && !r->dropping) {   /* up to the '>' or the chunk's end */
        r->dropping = 1;
        r->drop_from = i;
      }
      for (;;) {               /* the rest of the tag in one go */
        if (tok_attr(r, &i, c, nul) != A_REREAD)
          i++;
        if (t->state < T_BEFORE_ATTR || t->state > T_SELF_CLOSING || i >= n)
          break;
        c = (unsigned char)s[i];
      }
      continue;
    case T_COMMENT_START:
    case T_COMMENT_START_DASH:
      if (c == '-' && t->state == T_COMMENT_START) {
        t->state = T_COMMENT_START_DASH;
      } else if (c == '-') {
        t->state = T_COMMENT_END;
      } else if (c == '>') {
        /* "<!-->" and "<!--->" are whole comments to a browser, not to libxml2 */
        if (t->state == T_COMMENT_START)
          tok_replace(r, i, 1, "-->", 3);
        else
          tok_replace(r, i, 1, "->", 2);
        t->state = T_DATA;
      } else {
        t->state = T_COMMENT;
        continue;
      }
      break;
    case T_COMMENT:
      if (!nul) {
        const char *dash = (const char *)memchr(s + i, '-', n - i);
        if (dash == NULL)
          return;
        i = (size_t)(dash - s);
        c = '-';
      }
      if (c == '-')
        t->state = T_COMMENT_END_DASH;
      else if (c == 0)
        tok_replace(r, i, 1, " ", 1);
      break;
    case T_COMMENT_END_DASH:
      t->state = c == '-' ? T_COMMENT_END : T_COMMENT;
      if (c != '-')
        continue;
      break;
    case T_COMMENT_END:
      if (c == '>')
        t->state = T_DATA;
      else if (c == '!')
        t->state = T_COMMENT_END_BANG;
      else if (c != '-') {
        t->state = T_COMMENT;
        continue;
      }
      break;
    case T_COMMENT_END_BANG:
      if (c == '>') {
        t->state = T_DATA;     /* "--!>": libxml2 ends the comment there too */
      } else {
        t->state = c == '-' ? T_COMMENT_END_DASH : T_COMMENT;
        if (c != '-')
          continue;
      }
      break;
    case T_DOCTYPE:
      if (c == '>')
        t->state = T_DATA;
      else if (c == 0)
        tok_replace(r, i, 1, " ", 1);
      break;
    case T_BOGUS:
      /* "<?x>", "<!x>", "</ x>": a comment up to the first '>', which libxml2 reads as text
       * once its '<' are escaped. */
      if (c == '>')
        t->state = T_DATA;
      else if (c == '<')
        tok_replace(r, i, 1, "&lt;", 4);
      else if (c == 0)
        tok_replace(r, i, 1, " ", 1);
      break;
    case T_CDATA:
      if (c == ']') {
        t->match = (uint8_t)(t->match < 2 ? t->match + 1 : 2);
        break;
      }
      if (c == '>' && t->match == 2)
        t->state = T_DATA;
      else if (c == '<')
        tok_replace(r, i, 1, "&lt;", 4);
      else if (c == 0)
        tok_replace(r, i, 1, " ", 1);
      t->match = 0;
      break;
    case T_RAW:
      if (!nul) {
        const char *lt = (const char *)memchr(s + i, '<', n - i);
        size_t end = lt != NULL ? (size_t)(lt - s) : n;
        if (t->raw != N_TITLE) {
          /* Text nobody reads: dropped, with a '<' that does not end it. */
          int ends = lt != NULL && tok_raw_end(r, end);
          if (end + !ends > i)
            tok_replace(r, i, end + !ends - i, "", 0);
          if (lt == NULL)
            return;
          i = end;
          if (!ends)
            break;
        } else if (lt == NULL) {
          return;
        }
        i = end;
        c = '<';
      }
      if (c == '<') {
        if (tok_raw_end(r, i)) {
          t->raw = 0;
          t->lt_at = i;
          t->lt_here = 1;
          tok_name_start(t, i + 2, (unsigned char)s[i + 2], 1);
          i += 3;
          continue;
        }
        tok_replace(r, i, 1, "&lt;", 4);
      } else if (c == 0) {
        tok_replace(r, i, 1, t->raw <= N_TEXTAREA ? "&#xFFFD;" : " ",
                    t->raw <= N_TEXTAREA ? 8 : 1);
      }
      break;
    case T_PLAINTEXT:
      if (c == '<')
        tok_replace(r, i, 1, "&lt;", 4);
      else if (c == 0)
        tok_replace(r, i, 1, "&#xFFFD;", 8);
      break;
    }
    i++;
  }
}

int sl_html_tok_run(sl_html_tok *t, const char *s, size_t n, const char **out,
                    size_t *outlen) {
  tok_run r;
  r.t = t;
  r.s = s;
  r.n = n;
  r.from = 0;
  r.copying = 0;
  r.failed = 0;
  t->lt_here = 0;              /* positions kept from an earlier chunk are gone */
  t->name_here = 0;
  r.dropping = 0;
  tok_scan(&r);
  tok_drop_flush(&r, n);
  if (r.copying)
    tok_replace(&r, n, 0, "", 0);
  if (r.failed)
    return -1;
  *out = !r.copying ? s : t->out.p != NULL ? t->out.p : "";
  *outlen = r.copying ? t->out.len : n;
  return 0;
}

void sl_html_tok_free(sl_html_tok *t) {
  sl_buf_free(&t->out);
}
