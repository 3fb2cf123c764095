/* robots.c (fuzz harness): the robots.txt parser and matcher of lua/sluice/crawl/robots.lua
 * (embedded in the binary), against a slow reference written here from RFC 9309.
 *
 * Input: the path to ask about (up to the first '\n'), then the robots.txt body.
 *
 * Invariants, beyond "no error and no sanitizer report": for the product tokens "sluice"
 * and "other", the module's answer (robots.allowed(robots.parse(body, token), path)) equals
 * the reference's, for the path given and for paths made from the edges of each rule
 * (Lua code gives libFuzzer no coverage to steer by, so the harness aims itself). The
 * reference: the groups that name the token (merged), else the `*` groups; among
 * their rules that match the path, the longest wins and Allow wins a tie; `*` matches any
 * run of bytes and a final `$` the end; nothing matching allows; "/robots.txt" is always
 * allowed. Rule paths (and paths with a '%') are compared with their percent-encoding
 * normalized as robots.lua documents it. The reference is quadratic: inputs above REF_MAX bytes only run the module.
 *
 * lua_parse and lua_allowed below are the only places that know the module's API. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"

#define REF_MAX (16 * 1024)    /* larger inputs are not checked against the reference */
#define BODY_MAX (512 * 1024)  /* robots.lua reads this much of a file */

static lua_State *L;           /* made once; the module stays at index 1 */

/* ------------------------------------------------------------ the module */

/* robots.parse(body, token): leaves what it returns at index 2. */
static void lua_parse(const char *body, size_t blen, const char *token) {
  lua_settop(L, 1);
  lua_getfield(L, 1, "parse");
  lua_pushlstring(L, body, blen);
  lua_pushstring(L, token);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK)
    FUZZ_CHECK(0, "robots.parse raised: %s", lua_tostring(L, -1));
}

/* robots.allowed(parsed, path): 1 allowed, 0 disallowed. */
static int lua_allowed(const char *path, size_t plen) {
  int allowed;
  lua_getfield(L, 1, "allowed");
  lua_pushvalue(L, 2);
  lua_pushlstring(L, path, plen);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK)
    FUZZ_CHECK(0, "robots.allowed raised: %s", lua_tostring(L, -1));
  FUZZ_CHECK(lua_isboolean(L, -1), "robots.allowed returned a %s", luaL_typename(L, -1));
  allowed = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return allowed;
}

/* ------------------------------------------------------------ the reference */

/* The C locale's classes, which Lua's patterns use: %s, %a, %w, %x, %c. */
static int is_space(unsigned c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

static int is_alpha(unsigned c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(unsigned c) {
  return is_alpha(c) || (c >= '0' && c <= '9');
}

static int hexval(unsigned c) {
  if (c >= '0' && c <= '9')
    return (int)(c - '0');
  if ((c | 32) >= 'a' && (c | 32) <= 'f')
    return (int)((c | 32) - 'a' + 10);
  return -1;
}

/* A rule: its pattern (normalized, '$' taken off), how it ends, and what it says. */
typedef struct rule {
  char *pat;
  size_t len;
  int anchored, allow;
} rule;

typedef struct rules {
  rule *v;
  size_t n, cap;
} rules;

static const char HEX[] = "0123456789ABCDEF";

/* A rule path with its percent-encoding normalized: escapes of unreserved characters
 * decoded, other escapes upper-cased, then controls, blanks, bytes above 127 and
 * "<>\^`{|} encoded. A '%' that starts no escape becomes %25 (as url.c writes it). */
static char *normalize_path(const char *s, size_t n, size_t *outlen) {
  char *mid = (char *)malloc(3 * n + 1), *out;
  size_t i = 0, m = 0, o = 0;
  int hi, lo;
  FUZZ_CHECK(mid != NULL, "out of memory");
  while (i < n) {
    if (s[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
        (lo = hexval((unsigned char)s[i + 2])) >= 0) {
      unsigned v = (unsigned)(hi * 16 + lo);
      if (is_alnum(v) || v == '-' || v == '.' || v == '_' || v == '~') {
        mid[m++] = (char)v;
      } else {
        mid[m++] = '%';
        mid[m++] = HEX[hi];
        mid[m++] = HEX[lo];
      }
      i += 3;
    } else if (s[i] == '%') {
      mid[m++] = '%';
      mid[m++] = '2';
      mid[m++] = '5';
      i++;
    } else {
      mid[m++] = s[i++];
    }
  }
  out = (char *)malloc(3 * m + 1);
  FUZZ_CHECK(out != NULL, "out of memory");
  for (i = 0; i < m; i++) {
    unsigned c = (unsigned char)mid[i];
    if (c <= 32 || c >= 127 || is_space(c) || strchr("\"<>\\^`{|}", (int)c) != NULL) {
      out[o++] = '%';
      out[o++] = HEX[c >> 4];
      out[o++] = HEX[c & 15];
    } else {
      out[o++] = (char)c;
    }
  }
  free(mid);
  *outlen = o;
  return out;
}

static void add_rule(rules *rs, const char *v, size_t n, int allow) {
  rule *r;
  int anchored = n > 0 && v[n - 1] == '$';
  if (rs->n == rs->cap) {
    rs->cap = rs->cap ? 2 * rs->cap : 8;
    FUZZ_CHECK((rs->v = (rule *)realloc(rs->v, rs->cap * sizeof *rs->v)) != NULL,
               "out of memory");
  }
  r = &rs->v[rs->n++];
  r->pat = normalize_path(v, anchored ? n - 1 : n, &r->len);
  r->anchored = anchored;
  r->allow = allow;
}

static void free_rules(rules *rs) {
  size_t i;
  for (i = 0; i < rs->n; i++)
    free(rs->v[i].pat);
  free(rs->v);
}

/* Whether pat[0..m) (with '*' for any run) matches all of s[0..n) (anchored) or a prefix
 * of it: a table of which pattern prefixes match which path prefixes. */
static int glob_match(const char *pat, size_t m, const char *s, size_t n, int anchored) {
  unsigned char *row = (unsigned char *)calloc(n + 1, 1), *next;
  size_t i, j;
  int hit = 0;
  FUZZ_CHECK(row != NULL, "out of memory");
  next = (unsigned char *)calloc(n + 1, 1);
  FUZZ_CHECK(next != NULL, "out of memory");
  row[0] = 1;                  /* the empty pattern matches the empty prefix */
  for (i = 0; i < m; i++) {
    memset(next, 0, n + 1);
    if (pat[i] == '*') {
      int any = 0;
      for (j = 0; j <= n; j++) {
        any |= row[j];
        next[j] = (unsigned char)any;
      }
    } else {
      for (j = 0; j < n; j++)
        if (row[j] && s[j] == pat[i])
          next[j + 1] = 1;
    }
    memcpy(row, next, n + 1);
  }
  if (anchored) {
    hit = row[n];
  } else {
    for (j = 0; j <= n && !hit; j++)
      hit = row[j];
  }
  free(row);
  free(next);
  return hit;
}

/* The rules of body that apply to token (RFC 9309: the groups naming it, merged, else the
 * `*` groups), into *use; the other groups' rules are freed. */
static void ref_parse(const char *body, size_t blen, const char *token, rules *use) {
  rules mine = {NULL, 0, 0}, star = {NULL, 0, 0};
  int in_agents = 0, named = 0, any = 0, grouped = 0, seen_mine = 0;
  size_t i = 0;
  if (blen > BODY_MAX)
    blen = BODY_MAX;
  if (blen >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0)
    i = 3;
  while (i < blen) {
    size_t start, end, k, key0, key1, v0, v1;
    if (body[i] == '\r' || body[i] == '\n') {
      i++;
      continue;
    }
    start = i;
    while (i < blen && body[i] != '\r' && body[i] != '\n')
      i++;
    end = i;
    for (k = start; k < end; k++)      /* a comment runs to the end of the line */
      if (body[k] == '#') {
        end = k;
        break;
      }
    /* ^%s*([%a%-]+)%s*:%s*(.-)%s*$ */
    k = start;
    while (k < end && is_space((unsigned char)body[k]))
      k++;
    key0 = k;
    while (k < end && (is_alpha((unsigned char)body[k]) || body[k] == '-'))
      k++;
    key1 = k;
    while (k < end && is_space((unsigned char)body[k]))
      k++;
    if (key1 == key0 || k >= end || body[k] != ':')
      continue;                /* not a "key: value" line: ignored */
    k++;
    while (k < end && is_space((unsigned char)body[k]))
      k++;
    v0 = k;
    v1 = end;
    while (v1 > v0 && is_space((unsigned char)body[v1 - 1]))
      v1--;
#define KEY_IS(s) \
  (key1 - key0 == sizeof(s) - 1 && strncasecmp(body + key0, s, key1 - key0) == 0)
    if (KEY_IS("user-agent")) {
      size_t t = v0, tl = strlen(token);
      if (!in_agents) {
        named = any = 0;
        in_agents = grouped = 1;
      }
      while (t < v1 && (is_alnum((unsigned char)body[t]) || body[t] == '_' ||
                        body[t] == '-' || body[t] == '*'))
        t++;
      if (t - v0 == 1 && body[v0] == '*')
        any = 1;
      else if (t - v0 == tl && strncasecmp(body + v0, token, tl) == 0)
        named = seen_mine = 1;
    } else if (KEY_IS("sitemap")) {
      /* no effect on rules, and it does not end the user-agent lines */
    } else {
      rules *target = grouped ? (named ? &mine : any ? &star : NULL) : NULL;
      in_agents = 0;
      if ((KEY_IS("allow") || KEY_IS("disallow")) && target != NULL && v1 > v0)
        add_rule(target, body + v0, v1 - v0, KEY_IS("allow"));
    }
#undef KEY_IS
  }
  *use = seen_mine ? mine : star;
  free_rules(seen_mine ? &star : &mine);
}

/* The answer for path under rs: the longest matching rule, Allow winning a tie. */
static int ref_allowed(const rules *rs, const char *path, size_t plen) {
  size_t i, best = 0;
  int allowed = 1, found = 0;
  if (plen == 11 && memcmp(path, "/robots.txt", 11) == 0)
    return 1;
  for (i = 0; i < rs->n; i++) {
    const rule *r = &rs->v[i];
    size_t len = r->len + (size_t)r->anchored;
    if (!glob_match(r->pat, r->len, path, plen, r->anchored))
      continue;
    if (!found || len > best || (len == best && r->allow && !allowed)) {
      allowed = r->allow;
      best = len;
      found = 1;
    }
  }
  return allowed;
}

/* ------------------------------------------------------------ driver */

#define PROBE_RULES 8          /* rules that give probe paths */

/* Asks both about path. */
static void check_path(const rules *rs, const char *token, const char *path, size_t plen,
                       const char *body, size_t blen) {
  /* a path with escapes is compared with them normalized, as the rules are */
  size_t nlen = plen;
  char *norm = memchr(path, '%', plen) ? normalize_path(path, plen, &nlen) : NULL;
  int got = lua_allowed(path, plen), want = ref_allowed(rs, norm ? norm : path, nlen);
  free(norm);
  if (nlen > 8192)             /* robots.MAX_PATH, which the reference does not know */
    return;
  if (got != want) {
    fuzz_show("path", path, plen);
    fuzz_show("robots.txt", body, blen);
    FUZZ_CHECK(0, "for %s, robots.lua says %s and the reference %s", token,
               got ? "allowed" : "disallowed", want ? "allowed" : "disallowed");
  }
}

/* Paths at the edges of a rule, which random paths rarely hit: its pattern with each `*`
 * as nothing, as "x" and as "*x*", then one byte shorter, and one byte longer. Written
 * into buf (room for 3 * len + 2 bytes); returns the length, or -1 after the last. */
static long probe(const rule *r, int k, char *buf) {
  size_t i, o = 0;
  for (i = 0; i < r->len; i++) {
    if (r->pat[i] != '*')
      buf[o++] = r->pat[i];
    else if (k == 1)
      buf[o++] = 'x';
    else if (k == 2)
      buf[o++] = '*', buf[o++] = 'x', buf[o++] = '*';
  }
  switch (k) {
  case 0: case 1: case 2: return (long)o;
  case 3: return o > 0 ? (long)o - 1 : 0;
  case 4: buf[o++] = 'z'; return (long)o;
  default: return -1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const tokens[] = {"sluice", "other"};
  const char *in = (const char *)data, *nl = (const char *)memchr(data, '\n', size);
  const char *path = in, *body = nl ? nl + 1 : in + size;
  size_t plen = nl ? (size_t)(nl - in) : size, blen = size - (size_t)(body - in), t, i;
  if (L == NULL) {
    L = fuzz_lua_state();
    fuzz_require(L, "sluice.crawl.robots");
  }
  for (t = 0; t < sizeof tokens / sizeof tokens[0]; t++) {
    rules rs = {NULL, 0, 0};
    lua_parse(body, blen, tokens[t]);
    if (size > REF_MAX) {
      lua_allowed(path, plen);
      continue;
    }
    ref_parse(body, blen, tokens[t], &rs);
    check_path(&rs, tokens[t], path, plen, body, blen);
    for (i = 0; i < rs.n && i < PROBE_RULES; i++) {
      char *buf = (char *)malloc(3 * rs.v[i].len + 2);
      long len;
      int k;
      FUZZ_CHECK(buf != NULL, "out of memory");
      for (k = 0; (len = probe(&rs.v[i], k, buf)) >= 0; k++)
        check_path(&rs, tokens[t], buf, (size_t)len, body, blen);
      free(buf);
    }
    free_rules(&rs);
  }
  lua_settop(L, 1);
  return 0;
}
