-- sluice.css_lex: sluice.css's tokenizer (internal), and the errors both raise. Apart so
-- that the compiler reads as the grammar and the XPath it gives.
local M = {}

local byte, sub, find, match, concat, format =
  string.byte, string.sub, string.find, string.match, table.concat, string.format

---------------------------------------------------------------------------------------------
-- Errors: "css: MESSAGE at position N in "SELECTOR"", N counting characters from 1 (the end
-- of the selector is one past its last character).

local function quote(s)
  if #s > 200 then                  -- cut before the character holding byte 201
    local e = 201
    while e > 1 and byte(s, e) >= 0x80 and byte(s, e) < 0xC0 do e = e - 1 end
    s = sub(s, 1, e - 1) .. "..."
  end
  local pat = utf8.len(s) and '[%c"\\]' or '[%c"\\\128-\255]'   -- bytes of bad UTF-8 too
  return '"' .. s:gsub(pat, function(c)
    if c == "\n" then return "\\n" elseif c == "\t" then return "\\t"
    elseif c == '"' or c == "\\" then return "\\" .. c end
    return format("\\x%02x", byte(c))
  end) .. '"'
end

local function raise(src, pos, msg)
  local n = (utf8.len(src, 1, pos - 1) or (pos - 1)) + 1
  error(format("css: %s at position %d in %s", msg, n, quote(src)), 0)
end

---------------------------------------------------------------------------------------------
-- Tokenizer. Tokens are {t = type, v = value, p = byte position}: S (white space), IDENT,
-- HASH (v without the #), STRING (v unescaped), NUMBER, DELIM (one character), EOF.

local NAME_RUN = "^[_a-zA-Z0-9%-\128-\255]+"
local NAME_START = "^[_a-zA-Z\128-\255]"

-- A backslash escape at i (CSS Syntax 4.3.7): up to 6 hex digits and one white space after
-- them, or any other character as itself. U+0000, surrogates and code points past U+10FFFF
-- become U+FFFD (CSS Syntax), and so do the others XML has no place for (controls but tab,
-- line feed and carriage return; U+FFFE, U+FFFF): libxml2 would refuse them in XPath, and
-- no HTML document holds them. Returns the text and the position after the escape.
local function unescape(s, i)
  local hex = match(s, "^%x+", i + 1)
  if not hex then return sub(s, i + 1, i + 1), i + 2 end
  hex = sub(hex, 1, 6)
  local j = i + 1 + #hex
  if sub(s, j, j + 1) == "\r\n" then j = j + 2
  elseif find(s, "^[ \t\r\n\f]", j) then j = j + 1 end
  local cp = tonumber(hex, 16)
  if (cp < 0x20 and cp ~= 9 and cp ~= 10 and cp ~= 13) or cp > 0x10FFFF
     or (cp >= 0xD800 and cp <= 0xDFFF) or cp == 0xFFFE or cp == 0xFFFF then
    cp = 0xFFFD
  end
  return utf8.char(cp), j
end

-- A backslash at i starts an escape unless a new line or the end follows it.
local function is_escape(s, i)
  return byte(s, i) == 92 and i < #s and not find(s, "^[\n\r\f]", i + 1)
end

-- The name characters from i on, escapes decoded. Returns the name and the next position.
local function read_name(s, i)
  local out = {}
  while true do
    local _, e = find(s, NAME_RUN, i)
    if e then
      out[#out + 1] = sub(s, i, e)
      i = e + 1
    elseif is_escape(s, i) then
      out[#out + 1], i = unescape(s, i)
    else
      return concat(out), i
    end
  end
end

local function starts_ident(s, i)
  if byte(s, i) == 45 then i = i + 1 end   -- one leading "-", as cssselect reads idents
  return find(s, NAME_START, i) ~= nil or is_escape(s, i)
end

local function tokenize(s)
  local toks, i, n = {}, 1, #s
  while i <= n do
    local c = sub(s, i, i)
    local _, e = find(s, "^[ \t\r\n\f]+", i)
    if e then
      toks[#toks + 1] = {t = "S", v = " ", p = i}
      i = e + 1
    elseif starts_ident(s, i) then
      local start, v = i, ""
      if c == "-" then v, i = "-", i + 1 end
      local name
      name, i = read_name(s, i)
      toks[#toks + 1] = {t = "IDENT", v = v .. name, p = start}
    elseif c == "#" and (find(s, NAME_RUN, i + 1) or is_escape(s, i + 1)) then
      local name, j = read_name(s, i + 1)
      toks[#toks + 1] = {t = "HASH", v = name, p = i}
      i = j
    elseif c == '"' or c == "'" then
      local out, j = {}, i + 1
      local plain = c == '"' and '^[^\\\n\r\f"]+' or "^[^\\\n\r\f']+"
      while true do
        local b = sub(s, j, j)
        if b == "" then raise(s, i, "unclosed string") end
        if b == c then break end
        if b == "\\" then
          local nb = sub(s, j + 1, j + 1)
          if nb == "" then raise(s, i, "unclosed string")
          elseif nb == "\n" or nb == "\f" then j = j + 2       -- an escaped new line: nothing
          elseif nb == "\r" then j = j + (sub(s, j + 2, j + 2) == "\n" and 3 or 2)
          else out[#out + 1], j = unescape(s, j) end
        elseif b == "\n" or b == "\r" or b == "\f" then
          raise(s, j, "new line inside a string (escape it as \\a)")
        else
          local _, pe = find(s, plain, j)
          out[#out + 1] = sub(s, j, pe)
          j = pe + 1
        end
      end
      toks[#toks + 1] = {t = "STRING", v = concat(out), p = i}
      i = j + 1
    elseif find(s, "^[+-]?%d*%.%d", i) or find(s, "^[+-]?%d", i) then
      local _, ne = find(s, "^[+-]?%d*%.%d+", i)
      if not ne then _, ne = find(s, "^[+-]?%d+", i) end
      toks[#toks + 1] = {t = "NUMBER", v = sub(s, i, ne), p = i}
      i = ne + 1
    elseif sub(s, i, i + 1) == "/*" then
      local ce = select(2, find(s, "*/", i + 2, true))
      i = (ce or n) + 1
    else
      toks[#toks + 1] = {t = "DELIM", v = c, p = i}
      i = i + 1
    end
  end
  toks[#toks + 1] = {t = "EOF", p = n + 1}
  return toks
end

--- raise(src, pos, msg): a "css: ..." error at byte pos of src; tokenize(s): the tokens
-- of s, ending with EOF (raising on an unclosed string or a new line inside one).
M.raise, M.tokenize = raise, tokenize
return M
