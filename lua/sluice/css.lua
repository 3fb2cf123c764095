-- sluice.css: CSS selectors compiled to XPath 1.0 as parsel compiles them (cssselect's
-- HTMLTranslator with parsel's ::text and ::attr()), so doc:css() answers what Scrapy gives.
--
-- One pass: a tokenizer (sluice.css_lex: CSS Syntax's tokens as cssselect reads them), then
-- a recursive descent parser that builds each compound selector straight into an XPath
-- expression {path, element, conds} and joins them with the combinators. The expression
-- algebra is cssselect's, so for every selector cssselect supports the XPath text is the
-- same, to the parenthesis; README's "CSS selectors" says where sluice goes further (the
-- `i` flag, selector lists and complex selectors in :not() and :is(), any relative selector
-- in :has()) and where it differs on purpose (:has(> a.b), which cssselect 1.2
-- mistranslates).
local lex = require "sluice.css_lex"

local M = {}

local sub, find, match, lower, concat, rep, format =
  string.sub, string.find, string.match, string.lower, table.concat, string.rep,
  string.format
local raise, tokenize = lex.raise, lex.tokenize

--- Compiled selectors kept, and the longest selector worth keeping: a crawl uses a few
-- dozen selectors millions of times, so a full cache is simply emptied and refilled.
local CACHE_MAX, CACHE_KEY_MAX = 512, 4096

--- How deeply :not(), :is(), :where() and :has() may nest.
local MAX_DEPTH = 32

local UPPER, LOWER = "'ABCDEFGHIJKLMNOPQRSTUVWXYZ'", "'abcdefghijklmnopqrstuvwxyz'"

---------------------------------------------------------------------------------------------
-- XPath helpers: cssselect's XPathExpr. A condition list renders as cssselect nests them,
-- "((c1) and (c2)) and (c3)"; kept as a list so a long compound costs linear time.

-- An XPath string literal for any text (XPath 1.0 has no escapes: concat() when both quotes
-- occur).
local function literal(s)
  if not find(s, "'", 1, true) then return "'" .. s .. "'" end
  if not find(s, '"', 1, true) then return '"' .. s .. '"' end
  local parts = {}
  local i = 1
  while i <= #s do
    local qs, qe = find(s, "'+", i)
    if qs == i then
      parts[#parts + 1] = '"' .. sub(s, qs, qe) .. '"'
      i = qe + 1
    else
      local e = (qs or #s + 1) - 1
      parts[#parts + 1] = "'" .. sub(s, i, e) .. "'"
      i = e + 1
    end
  end
  return "concat(" .. concat(parts, ",") .. ")"
end

local function chain(list, conj)
  local n = #list
  if n == 0 then return "" elseif n == 1 then return list[1] end
  local out = {rep("(", n - 1), list[1], ")"}
  for i = 2, n - 1 do out[#out + 1] = " " .. conj .. " (" .. list[i] .. "))" end
  out[#out + 1] = " " .. conj .. " (" .. list[n] .. ")"
  return concat(out)
end

local function new_expr(element)
  return {path = {}, element = element, conds = {}}
end

local function add_cond(x, c)
  x.conds[#x.conds + 1] = c
end

-- Moves the element's name into the condition, so the step can be "*".
local function name_test(x)
  if x.element ~= "*" then
    add_cond(x, "name() = " .. literal(x.element))
    x.element = "*"
  end
end

-- The step as text: "element" or "element[conditions]".
local function step(x)
  if #x.conds == 0 then return x.element end
  return x.element .. "[" .. chain(x.conds, "and") .. "]"
end

local function tostr(x)
  return concat(x.path) .. step(x)
end

-- x, then combiner, then other's step: the path goes on, other's step becomes the last.
local function join(x, combiner, other)
  local p = x.path
  p[#p + 1] = step(x)
  p[#p + 1] = combiner
  x.element, x.conds = other.element, other.conds
end

---------------------------------------------------------------------------------------------
-- Parser state: the source, its tokens and the current index.

local P = {}
P.__index = P

function P:peek() return self.toks[self.k] end

function P:next()
  local t = self.toks[self.k]
  if t.t ~= "EOF" then self.k = self.k + 1 end
  return t
end

function P:skip_ws()
  if self.toks[self.k].t == "S" then self.k = self.k + 1 end
end

function P:fail(pos, msg) raise(self.src, pos, msg) end

local function is_delim(t, a, b, c)
  return t.t == "DELIM" and (t.v == a or t.v == b or t.v == c)
end

local function describe(t)
  if t.t == "EOF" then return "the end"
  elseif t.t == "S" then return "white space"
  elseif t.t == "STRING" then return "a string"
  elseif t.t == "HASH" then return "'#" .. t.v .. "'" end
  return "'" .. t.v .. "'"
end

local function ascii_lower(s) return (s:gsub("%u", lower)) end

-- cssselect writes names matching this as XPath name tests, others as name() = '...'.
local function is_safe(name) return find(name, "^[a-zA-Z_][a-zA-Z0-9_.-]*$") ~= nil end

---------------------------------------------------------------------------------------------
-- Attribute selectors. attrib is "@name" (or an attribute::* step for unusual names); with
-- the i flag the value is compared with the attribute's ASCII-lower-cased text.

local function attrib_cond(attrib, op, value, ci)
  local subj = attrib
  if ci then
    value = ascii_lower(value)
    subj = "translate(" .. attrib .. ", " .. UPPER .. ", " .. LOWER .. ")"
  end
  local lit = literal(value)
  if op == "=" then
    if ci then return attrib .. " and " .. subj .. " = " .. lit end
    return attrib .. " = " .. lit
  elseif op == "~=" then
    if value == "" or find(value, "[ \t\r\n\f]") then return "0" end
    return format("%s and contains(concat(' ', normalize-space(%s), ' '), %s)",
                  attrib, subj, literal(" " .. value .. " "))
  elseif op == "|=" then
    return format("%s and (%s = %s or starts-with(%s, %s))", attrib, subj, lit, subj,
                  literal(value .. "-"))
  elseif op == "^=" then
    if value == "" then return "0" end
    return format("%s and starts-with(%s, %s)", attrib, subj, lit)
  elseif op == "$=" then
    if value == "" then return "0" end
    return format("%s and substring(%s, string-length(%s)-%d) = %s", attrib, subj, subj,
                  utf8.len(value) - 1, lit)
  elseif op == "*=" then
    if value == "" then return "0" end
    return format("%s and contains(%s, %s)", attrib, subj, lit)
  else -- "!=", cssselect's extension
    if value == "" then return subj .. " != " .. lit end
    return format("not(%s) or %s != %s", attrib, subj, lit)
  end
end

local function attrib_name(ns, name)
  name = ascii_lower(name)
  local safe = is_safe(name)
  if ns then
    name = ns .. ":" .. name
    safe = safe and is_safe(ns)
  end
  return safe and "@" .. name or "attribute::*[name() = " .. literal(name) .. "]"
end

-- After "[": [name], [name op value], [name op value i], with optional namespace prefixes.
function P:attribute(x)
  self:skip_ws()
  local t = self:next()
  local ns, name, op
  if t.t == "IDENT" then name = t.v
  elseif not is_delim(t, "*") then self:fail(t.p, "expected an attribute name after '['") end
  if is_delim(self:peek(), "|") then
    self:next()
    if is_delim(self:peek(), "=") and name then
      self:next()
      op = "|="
    else
      ns, t = name, self:next()
      if t.t ~= "IDENT" then self:fail(t.p, "expected an attribute name after '|'") end
      name = t.v
    end
  elseif not name then
    self:fail(self:peek().p, "expected '|' after '*' in an attribute selector")
  end
  if not op then
    self:skip_ws()
    t = self:next()
    if is_delim(t, "]") then
      add_cond(x, attrib_name(ns, name))
      return
    elseif is_delim(t, "=") then
      op = "="
    elseif t.t == "DELIM" and find("^$*~|!", t.v, 1, true) and is_delim(self:peek(), "=") then
      self:next()
      op = t.v .. "="
    elseif t.t == "EOF" then
      self:fail(t.p, "unclosed '['")
    else
      self:fail(t.p, "expected an attribute operator or ']', got " .. describe(t))
    end
  end
  self:skip_ws()
  local v = self:next()
  if v.t ~= "IDENT" and v.t ~= "STRING" then
    self:fail(v.p, "expected a value (an identifier or a quoted string) after '" .. op
              .. "', got " .. describe(v))
  end
  self:skip_ws()
  t = self:next()
  local ci = false
  if t.t == "IDENT" and (t.v == "i" or t.v == "I" or t.v == "s" or t.v == "S") then
    ci = t.v == "i" or t.v == "I"
    self:skip_ws()
    t = self:next()
  end
  if not is_delim(t, "]") then
    self:fail(t.p, t.t == "EOF" and "unclosed '['" or "expected ']', got " .. describe(t))
  end
  add_cond(x, attrib_cond(attrib_name(ns, name), op, v.v, ci))
end

---------------------------------------------------------------------------------------------
-- Pseudo-classes without arguments: HTMLTranslator's definitions.

local DISABLED = "(@disabled and ((name(.) = 'input' and @type != 'hidden') or "
  .. "name(.) = 'button' or name(.) = 'select' or name(.) = 'textarea' or "
  .. "name(.) = 'command' or name(.) = 'fieldset' or name(.) = 'optgroup' or "
  .. "name(.) = 'option')) or (((name(.) = 'input' and @type != 'hidden') or "
  .. "name(.) = 'button' or name(.) = 'select' or name(.) = 'textarea') and "
  .. "ancestor::fieldset[@disabled])"

local ENABLED = "(@href and (name(.) = 'a' or name(.) = 'link' or name(.) = 'area')) or "
  .. "((name(.) = 'command' or name(.) = 'fieldset' or name(.) = 'optgroup') and "
  .. "not(@disabled)) or (((name(.) = 'input' and @type != 'hidden') or "
  .. "name(.) = 'button' or name(.) = 'select' or name(.) = 'textarea' or "
  .. "name(.) = 'keygen') and not (@disabled or ancestor::fieldset[@disabled])) or "
  .. "(name(.) = 'option' and not(@disabled or ancestor::optgroup[@disabled]))"

local SIMPLE = {
  root = "not(parent::*)",
  ["first-child"] = "count(preceding-sibling::*) = 0",
  ["last-child"] = "count(following-sibling::*) = 0",
  ["only-child"] = "count(parent::*/child::*) = 1",
  empty = "not(*) and not(string-length())",
  checked = "(@selected and name(.) = 'option') or (@checked and (name(.) = 'input' or "
    .. "name(.) = 'command')and (@type = 'checkbox' or @type = 'radio'))",
  disabled = DISABLED,
  enabled = ENABLED,
  link = "@href and (name(.) = 'a' or name(.) = 'link' or name(.) = 'area')",
  -- A document has no user: these never match.
  visited = "0", hover = "0", active = "0", focus = "0", target = "0",
}

-- The -of-type forms name the element in the XPath: they need a type selector.
local OF_TYPE = {
  ["first-of-type"] = "count(preceding-sibling::%s) = 0",
  ["last-of-type"] = "count(following-sibling::%s) = 0",
  ["only-of-type"] = "count(parent::*/child::%s) = 1",
}

local LEGACY_PSEUDO_ELEMENTS = {
  before = true, after = true, ["first-line"] = true, ["first-letter"] = true,
}

---------------------------------------------------------------------------------------------
-- Functional pseudo-classes with plain arguments.

-- The arguments up to ")": identifiers, strings, numbers, + and -.
function P:arguments(what)
  local args = {}
  while true do
    self:skip_ws()
    local t = self:next()
    if t.t == "IDENT" or t.t == "STRING" or t.t == "NUMBER" or is_delim(t, "+", "-") then
      args[#args + 1] = t
    elseif is_delim(t, ")") then
      return args
    elseif t.t == "EOF" then
      self:fail(t.p, "unclosed '(' of " .. what)
    else
      self:fail(t.p, "unexpected " .. describe(t) .. " in " .. what)
    end
  end
end

-- a and b of an+b: odd, even, 3, n, -n+3, 2n+1, +2n - 1 ...
local function series(args)
  local parts = {}
  for i, t in ipairs(args) do
    if t.t == "STRING" then return nil end
    parts[i] = t.v
  end
  local s = ascii_lower(concat(parts))
  if s == "odd" then return 2, 1 elseif s == "even" then return 2, 0 end
  local a, b
  if find(s, "^[+-]?%d+$") then
    a, b = "0", s
  else
    a, b = match(s, "^([+-]?%d*)n([+-]%d+)$")
    if not a then a, b = match(s, "^([+-]?%d*)n$"), "0" end
    if not a then return nil end
    if a == "" or a == "+" then a = "1" elseif a == "-" then a = "-1" end
  end
  a, b = math.tointeger(tonumber(a)), math.tointeger(tonumber(b))
  if not a or not b or math.abs(a) > 2^31 or math.abs(b) > 2^31 then return nil end
  return a, b
end

-- :nth-child(an+b) and its three siblings: the element has an+b-1 siblings (of its type)
-- before it (after it, for the -last- forms) for some n >= 0.
local function nth(x, a, b, last, of_type)
  local b1 = b - 1
  if a == 1 and b1 <= 0 then return end            -- every element
  if a < 0 and b1 < 0 then return add_cond(x, "0") end
  local count = format("count(%s-sibling::%s)", last and "following" or "preceding",
                       of_type and x.element or "*")
  if a == 0 then return add_cond(x, count .. " = " .. b1) end
  local parts = {}
  if a > 0 then
    if b1 > 0 then parts[1] = count .. " >= " .. b1 end
  else
    parts[1] = count .. " <= " .. b1
  end
  if a ~= 1 and a ~= -1 then
    local left, r = count, (-b1) % math.abs(a)
    if r ~= 0 then left = "(" .. count .. " +" .. r .. ")" end
    parts[#parts + 1] = left .. " mod " .. a .. " = 0"
  end
  add_cond(x, #parts > 1 and "(" .. parts[1] .. ") and (" .. parts[2] .. ")" or parts[1])
end

local NTH = {
  ["nth-child"] = {false, false}, ["nth-last-child"] = {true, false},
  ["nth-of-type"] = {false, true}, ["nth-last-of-type"] = {true, true},
}

---------------------------------------------------------------------------------------------
-- Selectors inside :not(), :is(), :has(): what a complex selector means as a condition on
-- the element itself, read right to left (so "div > p" is "p whose parent is a div").

local REVERSE = {
  [" "] = "ancestor::*", [">"] = "parent::*",
  ["+"] = "preceding-sibling::*[1]", ["~"] = "preceding-sibling::*",
}

local function self_cond(cx)
  local c = ""
  for i, x in ipairs(cx.exprs) do
    name_test(x)
    local own = chain(x.conds, "and")
    if i > 1 then
      local rel = REVERSE[cx.combs[i - 1]]
      if c ~= "" then rel = rel .. "[" .. c .. "]" end
      c = own ~= "" and "(" .. own .. ") and (" .. rel .. ")" or rel
    else
      c = own
    end
  end
  return c
end

-- A relative selector of :has() as a path from the element: "descendant::p",
-- "./p", "following-sibling::p", "following-sibling::*[(name() = 'p') and (position() = 1)]".
local LEAD = {[" "] = "descendant::", [">"] = "./", ["~"] = "following-sibling::",
              ["+"] = "following-sibling::"}

local COMBINATOR = {
  [" "] = "/descendant-or-self::*/", [">"] = "/", ["~"] = "/following-sibling::",
  ["+"] = "/following-sibling::",
}

-- Folds a complex selector's compounds into one expression, left to right.
local function fold(cx)
  local x = cx.exprs[1]
  for i = 2, #cx.exprs do
    local comb = cx.combs[i - 1]
    join(x, COMBINATOR[comb], cx.exprs[i])
    if comb == "+" then
      name_test(x)
      add_cond(x, "position() = 1")
    end
  end
  return x
end

local function relative_cond(cx)
  local lead = cx.lead or " "
  if lead == "+" then
    name_test(cx.exprs[1])
    add_cond(cx.exprs[1], "position() = 1")
  end
  return LEAD[lead] .. tostr(fold(cx))
end

---------------------------------------------------------------------------------------------
-- The grammar.

-- A compound selector: an optional type selector, then #id, .class, [attr], :pseudo and at
-- most one ::pseudo-element, which ends it. Returns its expression and the pseudo-element.
-- after: what came before, for the "expected a selector" message; opts.scope: :scope may
-- stand here (alone, at the start of a top-level selector); opts.inner: ")" ends it.
function P:compound(after, opts)
  self:skip_ws()
  local start = self.k
  local t = self:peek()
  local ns, name = nil, nil
  if t.t == "IDENT" or is_delim(t, "*") or (is_delim(t, "|") and self.toks[self.k + 1].t == "IDENT") then
    if not is_delim(t, "|") then
      self:next()
      name = t.t == "IDENT" and t.v or nil
    end
    if is_delim(self:peek(), "|") and not is_delim(self.toks[self.k + 1], "=") then
      self:next()
      ns = name
      local e = self:next()
      if e.t == "IDENT" then name = e.v
      elseif is_delim(e, "*") then name = nil
      else self:fail(e.p, "expected a type name or '*' after '|'") end
    end
  end
  local x
  if name then
    local el, safe = ascii_lower(name), is_safe(name)
    if ns then el, safe = ns .. ":" .. el, safe and is_safe(ns) end
    x = new_expr(el)
    if not safe then name_test(x) end
  else
    x = new_expr(ns and ns .. ":*" or "*")
  end
  local pseudo, scope
  while true do
    t = self:peek()
    if t.t == "S" or t.t == "EOF" or is_delim(t, ",", "+", ">") or is_delim(t, "~")
       or (opts.inner and is_delim(t, ")")) then
      break
    end
    if pseudo then
      self:fail(t.p, "the pseudo-element ::" .. pseudo.name .. " must end the selector")
    end
    if scope then self:fail(t.p, ":scope must stand alone in its compound selector") end
    if t.t == "HASH" then
      self:next()
      add_cond(x, "@id = " .. literal(t.v))
    elseif is_delim(t, ".") then
      self:next()
      local c = self:next()
      if c.t ~= "IDENT" then self:fail(c.p, "expected a class name after '.'") end
      add_cond(x, attrib_cond("@class", "~=", c.v))
    elseif is_delim(t, "[") then
      self:next()
      self:attribute(x)
    elseif is_delim(t, ":") then
      self:next()
      if is_delim(self:peek(), ":") then
        self:next()
        pseudo = self:pseudo_element(t)
      else
        scope = self:pseudo_class(x, t, opts)
        if scope and (x.element ~= "*" or #x.conds ~= 1 or not opts.scope) then
          self:fail(t.p, ":scope is only supported alone at the start of a selector")
        end
      end
    else
      self:fail(t.p, "unexpected " .. describe(t))
    end
  end
  if self.k == start then
    self:fail(t.p, "expected a selector" .. after .. ", got " .. describe(t))
  end
  return x, pseudo
end

-- After "::" (colon: the first ":" token): ::text or ::attr(name).
function P:pseudo_element(colon)
  local t = self:next()
  if t.t ~= "IDENT" then self:fail(t.p, "expected a pseudo-element name after '::'") end
  local name = ascii_lower(t.v)
  if is_delim(self:peek(), "(") then
    self:next()
    local args = self:arguments("::" .. name .. "()")
    if name ~= "attr" then self:fail(colon.p, "unknown pseudo-element ::" .. name .. "()") end
    if #args ~= 1 or (args[1].t ~= "IDENT" and args[1].t ~= "STRING") then
      self:fail(colon.p, "::attr() takes one attribute name")
    end
    local attr = ascii_lower(args[1].v)
    return {name = "attr", attr = is_safe(attr) and "@" .. attr
                                  or "attribute::*[name() = " .. literal(attr) .. "]"}
  end
  if name ~= "text" then self:fail(colon.p, "unknown pseudo-element ::" .. name) end
  return {name = "text"}
end

-- After ":" (colon: its token): a pseudo-class, added to x. Returns true for :scope.
function P:pseudo_class(x, colon, opts)
  local t = self:next()
  if t.t ~= "IDENT" then self:fail(t.p, "expected a pseudo-class name after ':'") end
  local name = ascii_lower(t.v)
  if not is_delim(self:peek(), "(") then
    if SIMPLE[name] then
      add_cond(x, SIMPLE[name])
    elseif OF_TYPE[name] then
      if x.element == "*" then
        self:fail(colon.p, ":" .. name .. " needs a type selector before it (as in parsel)")
      end
      add_cond(x, format(OF_TYPE[name], x.element))
    elseif name == "scope" then
      add_cond(x, "1")
      return true
    elseif LEGACY_PSEUDO_ELEMENTS[name] then
      self:fail(colon.p, "unknown pseudo-element ::" .. name)
    else
      self:fail(colon.p, "unknown pseudo-class :" .. name)
    end
    return
  end
  self:next()
  local what = ":" .. name .. "()"
  if name == "not" or name == "is" or name == "matches" or name == "where" or name == "has" then
    if self.depth >= MAX_DEPTH then self:fail(colon.p, "selectors nested too deeply") end
    self.depth = self.depth + 1
    local list = self:group(what, name == "has")
    self.depth = self.depth - 1
    local conds = {}
    for i, cx in ipairs(list) do
      conds[i] = name == "has" and relative_cond(cx) or self_cond(cx)
      if conds[i] == "" then conds = false break end   -- a member that matches everything
    end
    if name == "not" then
      add_cond(x, conds and "not(" .. chain(conds, "or") .. ")" or "0")
    elseif conds then
      add_cond(x, chain(conds, "or"))
    end
    return
  end
  local args = self:arguments(what)
  local kind = NTH[name]
  if kind then
    local a, b = series(args)
    if not a then self:fail(colon.p, "expected an+b (odd, even, 3, 2n+1 ...) in " .. what) end
    if kind[2] and x.element == "*" then
      self:fail(colon.p, what .. " needs a type selector before it (as in parsel)")
    end
    nth(x, a, b, kind[1], kind[2])
  elseif name == "contains" or name == "lang" then
    if #args ~= 1 or (args[1].t ~= "IDENT" and args[1].t ~= "STRING") then
      self:fail(colon.p, what .. " takes one string or identifier")
    end
    local v = args[1].v
    if name == "contains" then
      add_cond(x, "contains(., " .. literal(v) .. ")")
    else
      add_cond(x, "ancestor-or-self::*[@lang][1][starts-with(concat(translate(@lang, "
               .. UPPER .. ", " .. LOWER .. "), '-'), " .. literal(ascii_lower(v) .. "-")
               .. ")]")
    end
  else
    self:fail(colon.p, "unknown pseudo-class " .. what)
  end
end

-- A complex selector: compounds joined by combinators, as {exprs, combs, lead, pseudo}.
-- inner: inside a functional pseudo-class (ends at ")"); relative: :has() (may start with a
-- combinator).
function P:complex(after, inner, relative)
  local cx = {exprs = {}, combs = {}}
  self:skip_ws()
  local t = self:peek()
  if relative and is_delim(t, ">", "+", "~") then
    self:next()
    cx.lead = t.v
    after = " after '" .. t.v .. "'"
  end
  local opts = {inner = inner, scope = not inner}
  while true do
    local x, pseudo = self:compound(after, opts)
    opts.scope = false
    cx.exprs[#cx.exprs + 1] = x
    self:skip_ws()
    t = self:peek()
    if pseudo then
      if inner then self:fail(t.p, "pseudo-elements are not allowed inside " .. inner) end
      cx.pseudo = pseudo
    end
    if t.t == "EOF" or is_delim(t, ",") or (inner and is_delim(t, ")")) then return cx end
    if pseudo then
      self:fail(t.p, "the pseudo-element ::" .. pseudo.name .. " must end the selector")
    end
    local comb = " "
    if is_delim(t, "+", ">", "~") then
      self:next()
      comb = t.v
    end
    cx.combs[#cx.combs + 1] = comb
    after = comb == " " and "" or " after '" .. comb .. "'"
  end
end

-- A selector list, up to the end (inner == nil) or up to the ")" of inner.
function P:group(inner, relative)
  local list = {}
  local after = inner and " in " .. inner or ""
  while true do
    list[#list + 1] = self:complex(after, inner, relative)
    local t = self:next()
    if is_delim(t, ",") then
      after = " after ','"
    elseif t.t == "EOF" then
      if inner then self:fail(t.p, "unclosed '(' of " .. inner) end
      return list
    else -- ")" of inner: complex() stops only at these three
      return list
    end
  end
end

-- parsel's pseudo-elements on the finished expression (its XPathExpr.__str__).
local function with_pseudo(x, pe)
  local path = tostr(x)
  if not pe then return path end
  if pe.name == "text" then
    if path == "*" then return "text()" end
    if sub(path, -5) == "::*/*" then return sub(path, 1, -4) .. "text()" end
    return path .. "/text()"
  end
  if sub(path, -5) == "::*/*" then path = sub(path, 1, -3) end
  return path .. "/" .. pe.attr
end

local function compile(sel)
  local ok, bad = utf8.len(sel)
  if not ok then raise(sel, bad, "the selector is not valid UTF-8") end
  -- Characters XPath cannot hold (see css_lex's unescape); form feed is white space, so it
  -- may stand.
  local bad_char = find(sel, "[%z\1-\8\11\14-\31]") or find(sel, "\239\191[\190\191]")
  if bad_char then
    raise(sel, bad_char, "a character XPath cannot hold (a control character, U+FFFE or U+FFFF)") end
  local p = setmetatable({src = sel, toks = tokenize(sel), k = 1, depth = 0}, P)
  local out = {}
  for i, cx in ipairs(p:group(nil, false)) do
    out[i] = "descendant-or-self::" .. with_pseudo(fold(cx), cx.pseudo)
  end
  return concat(out, " | ")
end

---------------------------------------------------------------------------------------------

local cache, cached = {}, 0

--- The XPath 1.0 expression for a CSS selector (group), to be evaluated with the node the
-- selector applies to as the context node. Raises "css: ..." for a bad selector.
function M.xpath(selector)
  if type(selector) ~= "string" then
    error("bad argument #1 to 'xpath' (string expected, got " .. type(selector) .. ")", 2)
  end
  local x = cache[selector]
  if x then return x end
  x = compile(selector)
  if #selector <= CACHE_KEY_MAX then
    if cached >= CACHE_MAX then cache, cached = {}, 0 end
    cache[selector] = x
    cached = cached + 1
  end
  return x
end

return M
