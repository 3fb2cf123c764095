-- Specs of sluice.css (lua/sluice/css.lua): CSS selectors compiled to XPath 1.0 as parsel 1.7
-- compiles them, the extensions beyond cssselect 1.2, bad selectors, and (when python3 with
-- lxml and parsel is installed) what the XPath selects, against parsel's own XPath.
local css = require "sluice.css"
local cjson = require "cjson"
local H = require "spec.helpers"

-- Selector -> the XPath parsel 1.7 produces for it: these expectations are the reference
-- implementation's outputs, copied from HTMLTranslator().css_to_xpath(selector) (Debian's
-- python3-parsel 1.7.0 with python3-cssselect 1.2.0), not written by hand. sluice must give
-- the same text, to the parenthesis.
local SAME = {
  {"div", "descendant-or-self::div"},
  {"DIV", "descendant-or-self::div"},
  {"*", "descendant-or-self::*"},
  {".a", "descendant-or-self::*[@class and contains(concat(' ', normalize-space(@class), ' '), ' a ')]"},
  {"a.b.c", "descendant-or-self::a[(@class and contains(concat(' ', normalize-space(@class), ' '), ' b ')) and (@class and contains(concat(' ', normalize-space(@class), ' '), ' c '))]"},
  {"div#x.y", "descendant-or-self::div[(@id = 'x') and (@class and contains(concat(' ', normalize-space(@class), ' '), ' y '))]"},
  {"[href]", "descendant-or-self::*[@href]"},
  {"[HREF]", "descendant-or-self::*[@href]"},
  {"a[href=x]", "descendant-or-self::a[@href = 'x']"},
  {"a[href=\"x y\"]", "descendant-or-self::a[@href = 'x y']"},
  {"a[ href = 'x' ]", "descendant-or-self::a[@href = 'x']"},
  {"[a~=b]", "descendant-or-self::*[@a and contains(concat(' ', normalize-space(@a), ' '), ' b ')]"},
  {"[a|=en]", "descendant-or-self::*[@a and (@a = 'en' or starts-with(@a, 'en-'))]"},
  {"[a^=x]", "descendant-or-self::*[@a and starts-with(@a, 'x')]"},
  {"[a$=xyz]", "descendant-or-self::*[@a and substring(@a, string-length(@a)-2) = 'xyz']"},
  {"[a*=x]", "descendant-or-self::*[@a and contains(@a, 'x')]"},
  {"[a!=x]", "descendant-or-self::*[not(@a) or @a != 'x']"},
  {"[a!=\"\"]", "descendant-or-self::*[@a != '']"},
  {"[a=\"\"]", "descendant-or-self::*[@a = '']"},
  {"[a~=\"\"]", "descendant-or-self::*[0]"},
  {"[a~=\"b c\"]", "descendant-or-self::*[0]"},
  {"[a^=\"\"]", "descendant-or-self::*[0]"},
  {"[a$=\"\"]", "descendant-or-self::*[0]"},
  {"[a*=\"\"]", "descendant-or-self::*[0]"},
  {"[a$=\"é€x\"]", "descendant-or-self::*[@a and substring(@a, string-length(@a)-2) = 'é€x']"},
  {"[a = \"it's\" ]", "descendant-or-self::*[@a = \"it's\"]"},
  {"[a='say \"it\\'s\"']", "descendant-or-self::*[@a = concat('say \"it',\"'\",'s\"')]"},
  {"[a=\"it's \\\"x\\\"\"]", "descendant-or-self::*[@a = concat('it',\"'\",'s \"x\"')]"},
  {"[data-Q=V]", "descendant-or-self::*[@data-q = 'V']"},
  {"[xml|lang]", "descendant-or-self::*[@xml:lang]"},
  {"[*|a=x]", "descendant-or-self::*[@a = 'x']"},
  {"div p", "descendant-or-self::div/descendant-or-self::*/p"},
  {"div > p", "descendant-or-self::div/p"},
  {"div + p", "descendant-or-self::div/following-sibling::*[(name() = 'p') and (position() = 1)]"},
  {"div ~ p", "descendant-or-self::div/following-sibling::p"},
  {"div>p+a~b", "descendant-or-self::div/p/following-sibling::*[(name() = 'a') and (position() = 1)]/following-sibling::b"},
  {"div p > a + b ~ c", "descendant-or-self::div/descendant-or-self::*/p/a/following-sibling::*[(name() = 'b') and (position() = 1)]/following-sibling::c"},
  {"a, b", "descendant-or-self::a | descendant-or-self::b"},
  {"a,b , c", "descendant-or-self::a | descendant-or-self::b | descendant-or-self::c"},
  {"a /* comment */ b", "descendant-or-self::a/descendant-or-self::*/b"},
  {":not(a)", "descendant-or-self::*[not(name() = 'a')]"},
  {"div:not(.x)", "descendant-or-self::div[not(@class and contains(concat(' ', normalize-space(@class), ' '), ' x '))]"},
  {"div:not(*)", "descendant-or-self::div[0]"},
  {":not(:first-child)", "descendant-or-self::*[not(count(preceding-sibling::*) = 0)]"},
  {":not([a=b])", "descendant-or-self::*[not(@a = 'b')]"},
  {":not(p:first-child)", "descendant-or-self::*[not((count(preceding-sibling::*) = 0) and (name() = 'p'))]"},
  {"*:not(a)", "descendant-or-self::*[not(name() = 'a')]"},
  {"div:has(p)", "descendant-or-self::div[descendant::p]"},
  {"div:has(> p)", "descendant-or-self::div[./p]"},
  {"div:has(+ p)", "descendant-or-self::div[following-sibling::*[(name() = 'p') and (position() = 1)]]"},
  {"div:has(~ p)", "descendant-or-self::div[following-sibling::p]"},
  {"div:has(*)", "descendant-or-self::div[descendant::*]"},
  {"div:has(p.x)", "descendant-or-self::div[descendant::p[@class and contains(concat(' ', normalize-space(@class), ' '), ' x ')]]"},
  {"li:nth-child(2n+1)", "descendant-or-self::li[count(preceding-sibling::*) mod 2 = 0]"},
  {"li:nth-child(-n+3)", "descendant-or-self::li[count(preceding-sibling::*) <= 2]"},
  {"li:nth-child(odd)", "descendant-or-self::li[count(preceding-sibling::*) mod 2 = 0]"},
  {"li:nth-child(even)", "descendant-or-self::li[(count(preceding-sibling::*) +1) mod 2 = 0]"},
  {"li:nth-child(3)", "descendant-or-self::li[count(preceding-sibling::*) = 2]"},
  {"li:nth-child(+3)", "descendant-or-self::li[count(preceding-sibling::*) = 2]"},
  {"li:nth-child(n)", "descendant-or-self::li"},
  {"li:nth-child( 2n + 1 )", "descendant-or-self::li[count(preceding-sibling::*) mod 2 = 0]"},
  {"li:nth-child(2n-1)", "descendant-or-self::li[count(preceding-sibling::*) mod 2 = 0]"},
  {"li:nth-child(-2n+5)", "descendant-or-self::li[(count(preceding-sibling::*) <= 4) and (count(preceding-sibling::*) mod -2 = 0)]"},
  {"li:nth-child(3n+7)", "descendant-or-self::li[(count(preceding-sibling::*) >= 6) and (count(preceding-sibling::*) mod 3 = 0)]"},
  {"li:nth-child(0n+0)", "descendant-or-self::li[count(preceding-sibling::*) = -1]"},
  {"li:nth-child(-n-1)", "descendant-or-self::li[0]"},
  {"li:nth-child(+3n-2)", "descendant-or-self::li[count(preceding-sibling::*) mod 3 = 0]"},
  {"li:nth-child(n+1)", "descendant-or-self::li"},
  {"li:nth-child(-3n-4)", "descendant-or-self::li[0]"},
  {"li:nth-child(-3n+10)", "descendant-or-self::li[(count(preceding-sibling::*) <= 9) and (count(preceding-sibling::*) mod -3 = 0)]"},
  {"li:nth-child(5n-12)", "descendant-or-self::li[(count(preceding-sibling::*) +3) mod 5 = 0]"},
  {"li:nth-child(- n+ 3)", "descendant-or-self::li[count(preceding-sibling::*) <= 2]"},
  {"li:nth-last-child(2)", "descendant-or-self::li[count(following-sibling::*) = 1]"},
  {"li:nth-last-child(3n+1)", "descendant-or-self::li[count(following-sibling::*) mod 3 = 0]"},
  {"li:nth-of-type(2n)", "descendant-or-self::li[(count(preceding-sibling::li) +1) mod 2 = 0]"},
  {"li:nth-last-of-type(-n+2)", "descendant-or-self::li[count(following-sibling::li) <= 1]"},
  {":first-child", "descendant-or-self::*[count(preceding-sibling::*) = 0]"},
  {":last-child", "descendant-or-self::*[count(following-sibling::*) = 0]"},
  {":only-child", "descendant-or-self::*[count(parent::*/child::*) = 1]"},
  {"p:first-of-type", "descendant-or-self::p[count(preceding-sibling::p) = 0]"},
  {"p:last-of-type", "descendant-or-self::p[count(following-sibling::p) = 0]"},
  {"p:only-of-type", "descendant-or-self::p[count(parent::*/child::p) = 1]"},
  {":empty", "descendant-or-self::*[not(*) and not(string-length())]"},
  {":root", "descendant-or-self::*[not(parent::*)]"},
  {":checked", "descendant-or-self::*[(@selected and name(.) = 'option') or (@checked and (name(.) = 'input' or name(.) = 'command')and (@type = 'checkbox' or @type = 'radio'))]"},
  {":link", "descendant-or-self::*[@href and (name(.) = 'a' or name(.) = 'link' or name(.) = 'area')]"},
  {":visited", "descendant-or-self::*[0]"},
  {":hover", "descendant-or-self::*[0]"},
  {":active", "descendant-or-self::*[0]"},
  {":focus", "descendant-or-self::*[0]"},
  {":target", "descendant-or-self::*[0]"},
  {":contains(\"text\")", "descendant-or-self::*[contains(., 'text')]"},
  {":contains(foo)", "descendant-or-self::*[contains(., 'foo')]"},
  {":contains(\"it's \\\"x\\\"\")", "descendant-or-self::*[contains(., concat('it',\"'\",'s \"x\"'))]"},
  {"p::text", "descendant-or-self::p/text()"},
  {"p::attr(href)", "descendant-or-self::p/@href"},
  {"p::attr(\"href\")", "descendant-or-self::p/@href"},
  {"::text", "descendant-or-self::text()"},
  {"*::text", "descendant-or-self::text()"},
  {"p ::text", "descendant-or-self::p/descendant-or-self::text()"},
  {"p > ::text", "descendant-or-self::p/*/text()"},
  {"a::attr(href)", "descendant-or-self::a/@href"},
  {"a ::attr(href)", "descendant-or-self::a/descendant-or-self::*/@href"},
  {"::attr(href)", "descendant-or-self::*/@href"},
  {"p::text, a::attr(href)", "descendant-or-self::p/text() | descendant-or-self::a/@href"},
  {"div:has(p)::text", "descendant-or-self::div[descendant::p]/text()"},
  {".a ::text", "descendant-or-self::*[@class and contains(concat(' ', normalize-space(@class), ' '), ' a ')]/descendant-or-self::text()"},
  {"li:nth-child(2) > a::attr(href)", "descendant-or-self::li[count(preceding-sibling::*) = 1]/a/@href"},
  {".\\31 23", "descendant-or-self::*[@class and contains(concat(' ', normalize-space(@class), ' '), ' 123 ')]"},
  {"\\31 23", "descendant-or-self::*[name() = '123']"},
  {"\\61 bc", "descendant-or-self::abc"},
  {".a\\.b", "descendant-or-self::*[@class and contains(concat(' ', normalize-space(@class), ' '), ' a.b ')]"},
  {"a\\ b", "descendant-or-self::*[name() = 'a b']"},
  {"[data-x=\"a\\\"b\"]", "descendant-or-self::*[@data-x = 'a\"b']"},
  {"ü", "descendant-or-self::*[name() = 'ü']"},
  {".ü", "descendant-or-self::*[@class and contains(concat(' ', normalize-space(@class), ' '), ' ü ')]"},
  {"p::TEXT", "descendant-or-self::p/text()"},
  {":FIRST-CHILD", "descendant-or-self::*[count(preceding-sibling::*) = 0]"},
  {"DIV:First-Child", "descendant-or-self::div[count(preceding-sibling::*) = 0]"},
  {":NOT(A)", "descendant-or-self::*[not(name() = 'a')]"},
  {":scope > div", "descendant-or-self::*[1]/div"},
  {":scope", "descendant-or-self::*[1]"},
  {"a, :scope > b", "descendant-or-self::a | descendant-or-self::*[1]/b"},
  {"p:lang(en)", "descendant-or-self::p[ancestor-or-self::*[@lang][1][starts-with(concat(translate(@lang, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), '-'), 'en-')]]"},
  {"p:lang(EN-us)", "descendant-or-self::p[ancestor-or-self::*[@lang][1][starts-with(concat(translate(@lang, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), '-'), 'en-us-')]]"},
  {":is(a, b)", "descendant-or-self::*[(name() = 'a') or (name() = 'b')]"},
  {":where(a.b, c)", "descendant-or-self::*[((@class and contains(concat(' ', normalize-space(@class), ' '), ' b ')) and (name() = 'a')) or (name() = 'c')]"},
  {":matches(a)", "descendant-or-self::*[name() = 'a']"},
  {"ns|a", "descendant-or-self::ns:a"},
  {"*|a", "descendant-or-self::a"},
  {"a:contains(\"x\") + b", "descendant-or-self::a[contains(., 'x')]/following-sibling::*[(name() = 'b') and (position() = 1)]"},
}

-- cssselect's :disabled and :enabled are multi-line strings; sluice writes them on one line.
local SAME_BUT_SPACES = {
  {":disabled", "descendant-or-self::*[\n        (\n            @disabled and\n            (\n                (name(.) = 'input' and @type != 'hidden') or\n                name(.) = 'button' or\n                name(.) = 'select' or\n                name(.) = 'textarea' or\n                name(.) = 'command' or\n                name(.) = 'fieldset' or\n                name(.) = 'optgroup' or\n                name(.) = 'option'\n            )\n        ) or (\n            (\n                (name(.) = 'input' and @type != 'hidden') or\n                name(.) = 'button' or\n                name(.) = 'select' or\n                name(.) = 'textarea'\n            )\n            and ancestor::fieldset[@disabled]\n        )\n        ]"},
  {":enabled", "descendant-or-self::*[\n        (\n            @href and (\n                name(.) = 'a' or\n                name(.) = 'link' or\n                name(.) = 'area'\n            )\n        ) or (\n            (\n                name(.) = 'command' or\n                name(.) = 'fieldset' or\n                name(.) = 'optgroup'\n            )\n            and not(@disabled)\n        ) or (\n            (\n                (name(.) = 'input' and @type != 'hidden') or\n                name(.) = 'button' or\n                name(.) = 'select' or\n                name(.) = 'textarea' or\n                name(.) = 'keygen'\n            )\n            and not (@disabled or ancestor::fieldset[@disabled])\n        ) or (\n            name(.) = 'option' and not(\n                @disabled or ancestor::optgroup[@disabled]\n            )\n        )\n        ]"},
}

-- Beyond cssselect 1.2 (which rejects these, or mistranslates the :has() forms marked *):
-- sluice's own outputs, each checked against lxml below.
local EXTENDED = {
  {"[a=b i]", "descendant-or-self::*[@a and translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = 'b']"},
  {"[a=\"B\" I]", "descendant-or-self::*[@a and translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = 'b']"},
  {"[a=b s]", "descendant-or-self::*[@a = 'b']"},
  {"[a~=B i]", "descendant-or-self::*[@a and contains(concat(' ', normalize-space(translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')), ' '), ' b ')]"},
  {"[a|=EN i]", "descendant-or-self::*[@a and (translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = 'en' or starts-with(translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), 'en-'))]"},
  {"[a^=X i]", "descendant-or-self::*[@a and starts-with(translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), 'x')]"},
  {"[a$=xYz i]", "descendant-or-self::*[@a and substring(translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), string-length(translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'))-2) = 'xyz']"},
  {"[a*=X i]", "descendant-or-self::*[@a and contains(translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), 'x')]"},
  {"[a!=X i]", "descendant-or-self::*[not(@a) or translate(@a, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') != 'x']"},
  {"li:nth-child(ODD)", "descendant-or-self::li[count(preceding-sibling::*) mod 2 = 0]"},
  {"li:nth-last-child(EVEN)", "descendant-or-self::li[(count(following-sibling::*) +1) mod 2 = 0]"},
  {"li:nth-child(2N+1)", "descendant-or-self::li[count(preceding-sibling::*) mod 2 = 0]"},
  {"div:not(a, b)", "descendant-or-self::div[not((name() = 'a') or (name() = 'b'))]"},
  {":not(div p)", "descendant-or-self::*[not((name() = 'p') and (ancestor::*[name() = 'div']))]"},
  {":not(div > p, a + b ~ c)", "descendant-or-self::*[not(((name() = 'p') and (parent::*[name() = 'div'])) or ((name() = 'c') and (preceding-sibling::*[(name() = 'b') and (preceding-sibling::*[1][name() = 'a'])])))]"},
  {":not(*, a)", "descendant-or-self::*[0]"},
  {":not(:not(a))", "descendant-or-self::*[not(not(name() = 'a'))]"},
  {":is(*, a)", "descendant-or-self::*"},
  {":is(div p)", "descendant-or-self::*[(name() = 'p') and (ancestor::*[name() = 'div'])]"},
  {":where(ul > li, ol > li)", "descendant-or-self::*[((name() = 'li') and (parent::*[name() = 'ul'])) or ((name() = 'li') and (parent::*[name() = 'ol']))]"},
  {"div.y:has(p.x)", "descendant-or-self::div[(@class and contains(concat(' ', normalize-space(@class), ' '), ' y ')) and (descendant::p[@class and contains(concat(' ', normalize-space(@class), ' '), ' x ')])]"},
  {"div:has(> p.x)", "descendant-or-self::div[./p[@class and contains(concat(' ', normalize-space(@class), ' '), ' x ')]]"},
  {"div:has(+ p.x)", "descendant-or-self::div[following-sibling::*[((@class and contains(concat(' ', normalize-space(@class), ' '), ' x ')) and (name() = 'p')) and (position() = 1)]]"},
  {"div:has(~ p.x)", "descendant-or-self::div[following-sibling::p[@class and contains(concat(' ', normalize-space(@class), ' '), ' x ')]]"},
  {"div:has(+ *)", "descendant-or-self::div[following-sibling::*[position() = 1]]"},
  {"div:has(#id)", "descendant-or-self::div[descendant::*[@id = 'id']]"},
  {"div:has(a b)", "descendant-or-self::div[descendant::a/descendant-or-self::*/b]"},
  {"div:has(> a > b, + c)", "descendant-or-self::div[(./a/b) or (following-sibling::*[(name() = 'c') and (position() = 1)])]"},
  {"div:has(a:has(b))", "descendant-or-self::div[descendant::a[descendant::b]]"},
  {"|a", "descendant-or-self::a"},
  -- Escapes of what XPath cannot hold are U+FFFD, as CSS makes U+0000 and surrogates.
  {"#\\2 x, .\\0, [a=\"\\fffe\"]", "descendant-or-self::*[@id = '\239\191\189x'] | descendant-or-self::*[@class and contains(concat(' ', normalize-space(@class), ' '), ' \239\191\189 ')] | descendant-or-self::*[@a = '\239\191\189']"},
  {"ns|*", "descendant-or-self::ns:*"},
}

-- Bad selectors: the whole message, so the format (README's) is checked too.
local BAD = {
  {"", 'expected a selector, got the end at position 1 in ""'},
  {"  ", 'expected a selector, got the end at position 3 in "  "'},
  {"div >", [[expected a selector after '>', got the end at position 6 in "div >"]]},
  {"a ~", [[expected a selector after '~', got the end at position 4 in "a ~"]]},
  {"a >> b", [[expected a selector after '>', got '>' at position 4 in "a >> b"]]},
  {"div,", [[expected a selector after ',', got the end at position 5 in "div,"]]},
  {",div", [[expected a selector, got ',' at position 1 in ",div"]]},
  {"div,,p", [[expected a selector after ',', got ',' at position 5 in "div,,p"]]},
  {"[a", [[unclosed '[' at position 3 in "[a"]]},
  {"[a=b i", [[unclosed '[' at position 7 in "[a=b i"]]},
  {"[a=", [[expected a value (an identifier or a quoted string) after '=', got the end at position 4 in "[a="]]},
  {"[a=1]", [[expected a value (an identifier or a quoted string) after '=', got '1' at position 4 in "[a=1]"]]},
  {"[a=b x]", [[expected ']', got 'x' at position 6 in "[a=b x]"]]},
  {"[a%=b]", [[expected an attribute operator or ']', got '%' at position 3 in "[a%=b]"]]},
  {"[*=x]", [[expected '|' after '*' in an attribute selector at position 3 in "[*=x]"]]},
  {'[a="x', [[unclosed string at position 4 in "[a=\"x"]]},
  {"[a='x\ny']", [[new line inside a string (escape it as \a) at position 6 in "[a='x\ny']"]]},
  {"a)", [[unexpected ')' at position 2 in "a)"]]},
  {"a(", [[unexpected '(' at position 2 in "a("]]},
  {"#", [[unexpected '#' at position 1 in "#"]]},
  {"a..b", [[expected a class name after '.' at position 3 in "a..b"]]},
  {":not(", [[expected a selector in :not(), got the end at position 6 in ":not("]]},
  {":not(a", [[unclosed '(' of :not() at position 7 in ":not(a"]]},
  {":not()", [[expected a selector in :not(), got ')' at position 6 in ":not()"]]},
  {":has()", [[expected a selector in :has(), got ')' at position 6 in ":has()"]]},
  {":has(>)", [[expected a selector after '>', got ')' at position 7 in ":has(>)"]]},
  {":is(a,)", [[expected a selector after ',', got ')' at position 7 in ":is(a,)"]]},
  {":contains(x", [[unclosed '(' of :contains() at position 12 in ":contains(x"]]},
  {":contains(a b)", [[:contains() takes one string or identifier at position 1 in ":contains(a b)"]]},
  {":contains(>)", [[unexpected '>' in :contains() at position 11 in ":contains(>)"]]},
  {"p::text span", [[the pseudo-element ::text must end the selector at position 9 in "p::text span"]]},
  {"a::text::text", [[the pseudo-element ::text must end the selector at position 8 in "a::text::text"]]},
  {"a::text.b", [[the pseudo-element ::text must end the selector at position 8 in "a::text.b"]]},
  {"div:not(::text)", [[pseudo-elements are not allowed inside :not() at position 15 in "div:not(::text)"]]},
  {"div:has(a::attr(href))", [[pseudo-elements are not allowed inside :has() at position 22 in "div:has(a::attr(href))"]]},
  {"p::foo", [[unknown pseudo-element ::foo at position 2 in "p::foo"]]},
  {"p::foo(x)", [[unknown pseudo-element ::foo() at position 2 in "p::foo(x)"]]},
  {"a:before", [[unknown pseudo-element ::before at position 2 in "a:before"]]},
  {"p::attr()", [[::attr() takes one attribute name at position 2 in "p::attr()"]]},
  {"p::attr(a, b)", [[unexpected ',' in ::attr() at position 10 in "p::attr(a, b)"]]},
  {":foo", [[unknown pseudo-class :foo at position 1 in ":foo"]]},
  {"a:FOO()", [[unknown pseudo-class :foo() at position 2 in "a:FOO()"]]},
  {":nth-of-type(2)", [[:nth-of-type() needs a type selector before it (as in parsel) at position 1 in ":nth-of-type(2)"]]},
  {"*:first-of-type", [[:first-of-type needs a type selector before it (as in parsel) at position 2 in "*:first-of-type"]]},
  {".x:only-of-type", [[:only-of-type needs a type selector before it (as in parsel) at position 3 in ".x:only-of-type"]]},
  {"li:nth-child(x)", [[expected an+b (odd, even, 3, 2n+1 ...) in :nth-child() at position 3 in "li:nth-child(x)"]]},
  {"li:nth-child(2n+1 of p)", [[expected an+b (odd, even, 3, 2n+1 ...) in :nth-child() at position 3 in "li:nth-child(2n+1 of p)"]]},
  {'li:nth-child("2")', [[expected an+b (odd, even, 3, 2n+1 ...) in :nth-child() at position 3 in "li:nth-child(\"2\")"]]},
  {"li:nth-child(n+-1)", [[expected an+b (odd, even, 3, 2n+1 ...) in :nth-child() at position 3 in "li:nth-child(n+-1)"]]},
  {"li:nth-child(99999999999n)", [[expected an+b (odd, even, 3, 2n+1 ...) in :nth-child() at position 3 in "li:nth-child(99999999999n)"]]},
  {"div :scope", [[:scope is only supported alone at the start of a selector at position 5 in "div :scope"]]},
  {"a:scope", [[:scope is only supported alone at the start of a selector at position 2 in "a:scope"]]},
  {":scope.x", [[:scope must stand alone in its compound selector at position 7 in ":scope.x"]]},
  {"a\\", [[unexpected '\' at position 2 in "a\\"]]},
  {"é >", [[expected a selector after '>', got the end at position 4 in "é >"]]},
  {"a\0b", [[a character XPath cannot hold (a control character, U+FFFE or U+FFFF) at position 2 in "a\x00b"]]},
  {"[a='\1']", [[a character XPath cannot hold (a control character, U+FFFE or U+FFFF) at position 5 in "[a='\x01']"]]},
  {"[a='\239\191\191']", "a character XPath cannot hold (a control character, U+FFFE or U+FFFF) at position 5 in \"[a='\239\191\191']\""},
  {"a\255", [[the selector is not valid UTF-8 at position 2 in "a\xff"]]},
  -- Nesting is bounded, and a long selector is quoted up to its 200th byte.
  {string.rep(":not(", 40) .. "a" .. string.rep(")", 40),
   'selectors nested too deeply at position 161 in "' .. string.rep(":not(", 40) .. '..."'},
}

---------------------------------------------------------------------------------------------
-- What the XPath selects: python3 with lxml evaluates sluice's XPath and a reference on DOC,
-- from the root element (as parsel's Selector does) and from each element with data-ctx (as
-- sel:css() on a selection does). The reference is parsel's XPath for the same selector
-- (ref = nil), for an equivalent selector cssselect supports (ref_css), or an XPath written
-- here (ref_xpath) where cssselect has no equivalent. Every case must select something in
-- some context (none = true: nothing in any), so no comparison is between two empty sets.

local DOC = [[<!DOCTYPE html>
<html lang="en-US"><head><title>T</title><link rel="stylesheet" href="/s.css"></head>
<body>
<div id="main" class="box  wide" data-ctx="1">
  <p class="x">first <a href="/a" hreflang="en-GB" title="Hello World">a1</a> text <b>bold</b></p>
  <p class="x y" lang="fr">second<span></span></p>
  <p>third <!-- c --> <a name="anchor">no href</a></p>
  <div class="inner y"><p class="x">deep</p><span class="y">s</span><p>deep2</p></div>
  <ul data-ctx="2">
    <li>1</li><li class="odd">2</li><li>3</li><li>4 <a href="/4">four</a></li><li>5</li>
    <li>6</li><li>7</li>
  </ul>
  <ol><li>only</li></ol>
  <em></em><section> </section><section></section>
</div>
<form data-ctx="3">
  <fieldset disabled><input type="text" name="f1"><legend>L</legend></fieldset>
  <input type="checkbox" checked name="c1"><input type="radio" name="r1" checked>
  <input type="hidden" disabled><input type="text" disabled name="t2"><input name="t3">
  <button>b</button><textarea></textarea>
  <select><optgroup disabled><option>o1</option></optgroup><option selected>o2</option></select>
</form>
<table><tr><td id="a:b">colon</td><td id="123">digits</td><td class="123 a.b">cls</td></tr></table>
<div id="attrs" data-x='a"b' data-q="it's" data-lang="en-us" data-v="Hello World" data-e=""
     title="UPPER lower" lang="DE-at"><p>in attrs</p></div>
<h1>Caf&eacute; &#252;</h1>
</body></html>
]]

local EVAL = [==[
import json, sys
from lxml import etree
from parsel.csstranslator import HTMLTranslator
spec = json.load(open(sys.argv[1]))
root = etree.fromstring(spec["doc"], parser=etree.HTMLParser())
tree = root.getroottree()
contexts = [root] + root.xpath("//*[@data-ctx]")
tr = HTMLTranslator()
def labels(ctx, xpath):
    out = []
    for r in ctx.xpath(xpath):
        if isinstance(r, etree._Element):
            out.append(tree.getpath(r))
        else:
            out.append(repr(str(r)) + " in " + tree.getpath(r.getparent()))
    return out
report = []
for case in spec["cases"]:
    ref = case.get("ref_xpath") or tr.css_to_xpath(case.get("ref_css") or case["css"])
    for i, ctx in enumerate(contexts):
        got, want = labels(ctx, case["xpath"]), labels(ctx, ref)
        if got != want:
            report.append("%s (context %d): got %r, want %r" % (case["css"], i, got, want))
        case["count"] = case.get("count", 0) + len(got)
print(json.dumps({"errors": report, "counts": [c.get("count", -1) for c in spec["cases"]]}))
]==]

-- Selectors cssselect supports (compared with parsel's own XPath) and the extensions.
local SEMANTIC = {
  {css = "p"}, {css = "P"}, {css = "*"}, {css = ".x"}, {css = ".y"}, {css = "#main"},
  {css = "p.x.y"}, {css = "div#main.box"}, {css = "[href]"}, {css = "[HREF]"},
  {css = "a[href='/a']"}, {css = "[title='Hello World']"}, {css = "[class~=wide]"},
  {css = "[class~='box wide']", none = true}, {css = "[hreflang|=en]"}, {css = "[lang|=fr]"},
  {css = "[href^='/']"}, {css = "[title$=World]"}, {css = "[title*='o W']"},
  {css = "[data-x='a\"b']"}, {css = "[data-q=\"it's\"]"}, {css = "[data-e='']"},
  {css = "[data-e^='']", none = true}, {css = "[data-e!=x]"}, {css = "[name!=t2]"},
  {css = "div p"}, {css = "div > p"}, {css = "p + p"}, {css = "p ~ div"},
  {css = "div p > a"}, {css = "li + li ~ li"}, {css = "p, li, h1"}, {css = "li, p"},
  {css = "div:not(.inner)"}, {css = "p:not(:first-child)"}, {css = ":not(*)", none = true},
  {css = "li:not([class])"}, {css = "div:has(p)"}, {css = "div:has(> p)"},
  {css = "p:has(+ p)"}, {css = "p:has(~ ul)"}, {css = "p:has(*)"},
  {css = "li:nth-child(2n+1)"}, {css = "li:nth-child(-n+3)"}, {css = "li:nth-child(odd)"},
  {css = "li:nth-child(even)"}, {css = "li:nth-child(3)"}, {css = "li:nth-child(n)"},
  {css = "li:nth-child( 3n + 2 )"}, {css = "li:nth-child(-2n+5)"}, {css = "li:nth-child(3n-1)"},
  {css = "li:nth-child(0n+0)", none = true}, {css = "li:nth-child(-n-1)", none = true}, {css = "li:nth-last-child(2)"},
  {css = "li:nth-last-child(3n)"}, {css = "p:nth-of-type(2)"}, {css = "p:nth-of-type(odd)"},
  {css = "p:nth-last-of-type(-n+2)"}, {css = "li:first-child"}, {css = "li:last-child"},
  {css = "li:only-child"}, {css = "p:first-of-type"}, {css = "p:last-of-type"},
  {css = "span:only-of-type"}, {css = ":empty"}, {css = ":root"}, {css = ":checked"},
  {css = ":disabled"}, {css = ":enabled"}, {css = ":link"}, {css = ":hover", none = true},
  {css = ":contains('deep')"}, {css = "p:contains(first)"}, {css = "p:lang(fr)"},
  {css = ":lang(en)"}, {css = "p:lang(DE)"}, {css = "p::text"}, {css = "p ::text"},
  {css = "p > ::text"}, {css = "a::attr(href)"}, {css = "a ::attr(href)"},
  {css = "::attr(class)"}, {css = "li::text, a::attr(href)"}, {css = "#a\\:b"},
  {css = "#\\31 23"}, {css = ".\\31 23"}, {css = ".a\\.b"}, {css = ":scope > p"},
  {css = ":scope"}, {css = ":is(p, span).y"}, {css = ":where(li.odd, h1)"},
  {css = "h1:contains('Caf\195\169')"},
  -- Extensions, with equivalents cssselect supports.
  {css = "li:nth-child(ODD)", ref_css = "li:nth-child(odd)"},
  {css = "li:nth-last-child(2N)", ref_css = "li:nth-last-child(2n)"},
  {css = "div:not(.inner, #attrs)", ref_css = "div:not(.inner):not(#attrs)"},
  {css = "li:not(:nth-child(odd), .odd)", ref_css = "li:not(:nth-child(odd)):not(.odd)"},
  {css = ":is(*, a)", ref_css = "*"},
  {css = ":not(*, a)", ref_css = ":not(*)", none = true},
  {css = "p:not(:not(.x))", ref_css = "p.x"},
  {css = "[data-v='Hello World' s]", ref_css = "[data-v='Hello World']"},
  -- Extensions without one.
  {css = "[data-v='hello world' i]", ref_xpath = "descendant-or-self::*[@id='attrs']"},
  {css = "[title^=hello i]", ref_xpath = "descendant-or-self::a[@title]"},
  {css = "[title~=upper i]", ref_xpath = "descendant-or-self::*[@id='attrs']"},
  {css = "[title$=LOWER I]", ref_xpath = "descendant-or-self::*[@id='attrs']"},
  {css = "[title*='r l' i]", ref_xpath = "descendant-or-self::*[@id='attrs']"},
  {css = "[hreflang|=EN i]", ref_xpath = "descendant-or-self::a[@hreflang]"},
  {css = "[data-lang|=EN i]", ref_xpath = "descendant-or-self::*[@id='attrs']"},
  {css = "[data-e=x i]", none = true, ref_xpath = "descendant-or-self::nothing"},
  {css = "input[name!=T2 i]", ref_xpath = "descendant-or-self::input[not(@name='t2')]"},
  {css = "p:not(.inner > p)",
   ref_xpath = "descendant-or-self::p[not(parent::div[contains(@class, 'inner')])]"},
  {css = ":not(div p)", ref_xpath = "descendant-or-self::*[not(self::p and ancestor::div)]"},
  {css = "li:not(li + li ~ li)",
   ref_xpath = "descendant-or-self::li[not(preceding-sibling::li[preceding-sibling::*[1][self::li]])]"},
  {css = ":is(div p)", ref_xpath = "descendant-or-self::p[ancestor::div]"},
  {css = ":where(ul > li, ol > li)", ref_xpath = "descendant-or-self::li[parent::ul or parent::ol]"},
  {css = "div:has(> p.x)",
   ref_xpath = "descendant-or-self::div[p[contains(concat(' ', @class, ' '), ' x ')]]"},
  {css = "div.y:has(p.x)",
   ref_xpath = "descendant-or-self::div[contains(concat(' ', @class, ' '), ' y ')]"
     .. "[.//p[contains(concat(' ', @class, ' '), ' x ')]]"},
  {css = "p:has(+ div.inner)",
   ref_xpath = "descendant-or-self::p[following-sibling::*[1][self::div][contains(@class, 'inner')]]"},
  {css = "p:has(~ .inner)", ref_xpath = "descendant-or-self::p[following-sibling::div[@class]]"},
  {css = "p:has(+ *)", ref_xpath = "descendant-or-self::p[following-sibling::*]"},
  {css = "*:has(#a\\:b)", ref_xpath = "descendant-or-self::*[.//*[@id='a:b']]"},
  {css = "div:has(li a)", ref_xpath = "descendant-or-self::div[.//li//a]"},
  {css = "div:has(> p > a[href])", ref_xpath = "descendant-or-self::div[p/a/@href]"},
  {css = "ul:has(> li.odd + li)", ref_xpath = "descendant-or-self::ul"},
  {css = "div:has(> ul, > table)", ref_xpath = "descendant-or-self::div[ul or table]"},
  {css = "div:has(p:has(> span))", ref_xpath = "descendant-or-self::div[.//p[span]]"},
  {css = "p:has(a)::text", ref_xpath = "descendant-or-self::p[.//a]/text()"},
  {css = "::attr(HREF)", ref_css = "::attr(href)"},
}

-- A python3 that has lxml and parsel, or nil.
local function find_python()
  for _, py in ipairs{"python3", "/usr/bin/python3"} do
    local out = H.sh(py .. " -c 'import lxml.etree, parsel; print(\"yes\")' 2>/dev/null")
    if out:find("yes") then return py end
  end
end

---------------------------------------------------------------------------------------------

local function message(sel)
  local ok, err = pcall(css.xpath, sel)
  assert(not ok, "no error for " .. sel)
  return err
end

describe("css.xpath", function()
  it("compiles every selector cssselect supports to parsel's XPath, to the character", function()
    for _, c in ipairs(SAME) do
      assert.are.equal(c[2], css.xpath(c[1]), "selector " .. c[1])
    end
  end)

  it("writes :disabled and :enabled as HTMLTranslator does, white space aside", function()
    for _, c in ipairs(SAME_BUT_SPACES) do
      assert.are.equal((c[2]:gsub("%s+", "")), (css.xpath(c[1]):gsub("%s+", "")))
    end
  end)

  it("compiles the extensions beyond cssselect", function()
    for _, c in ipairs(EXTENDED) do
      assert.are.equal(c[2], css.xpath(c[1]), "selector " .. c[1])
    end
  end)

  it("raises for a bad selector, quoting it and giving the position", function()
    for _, c in ipairs(BAD) do
      assert.are.equal("css: " .. c[2], message(c[1]))
    end
  end)

  it("counts positions in characters and quotes control characters", function()
    assert.are.equal([[css: unexpected ')' at position 4 in "ü\tb)"]], message("ü\tb)"))
  end)

  it("raises for a selector that is not a string", function()
    for _, v in ipairs{1, true, {}} do
      local ok, err = pcall(css.xpath, v)
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #1 to 'xpath' (string expected, got "
                             .. type(v) .. ")", 1, true), err)
    end
  end)

  it("gives the same string again from its cache, and stays right past the bound", function()
    local first = css.xpath("ul > li.odd")
    assert.are.equal(first, css.xpath("ul > li.odd"))
    for i = 1, 2000 do
      assert.are.equal("descendant-or-self::*[@id = 'n" .. i .. "']", css.xpath("#n" .. i))
    end
    assert.are.equal(first, css.xpath("ul > li.odd"))
    local long = string.rep("a ", 3000) .. "b"      -- too long to cache: compiled each time
    assert.are.equal(css.xpath(long), css.xpath(long))
    assert.is_false(pcall(css.xpath, "div >"))      -- errors are not cached as results
    assert.is_false(pcall(css.xpath, "div >"))
  end)

  it("compiles long compounds and long chains in linear time", function()
    local t0 = os.clock()
    local x = css.xpath(string.rep(".c", 5000))
    assert.are.equal(5000, select(2, x:gsub("normalize%-space", "")))
    local y = css.xpath(string.rep("a > ", 5000) .. "b")
    assert.are.equal(5000, select(2, y:gsub("/", "")))
    assert.truthy(os.clock() - t0 < 2, "took " .. (os.clock() - t0) .. " s")
  end)
end)

describe("css.xpath's XPath, evaluated by lxml", function()
  local py = find_python()

  it("selects what parsel selects, and what the extensions mean", function()
    if not py then
      return pending("python3 with lxml and parsel (python3-lxml, python3-parsel) is missing")
    end
    local cases = {}
    for i, c in ipairs(SEMANTIC) do
      cases[i] = {css = c.css, xpath = css.xpath(c.css), ref_css = c.ref_css,
                  ref_xpath = c.ref_xpath}
    end
    local input = H.tmpfile(cjson.encode{doc = DOC, cases = cases})
    local script = H.tmpfile(EVAL)
    local out = H.sh("timeout 60 " .. py .. " " .. script .. " " .. input .. " 2>&1")
    os.remove(input)
    os.remove(script)
    local ok, res = pcall(cjson.decode, out)
    assert(ok and type(res) == "table", "python failed: " .. out)
    assert(#res.errors == 0, #res.errors .. " difference(s):\n" .. table.concat(res.errors, "\n"))
    for i, c in ipairs(SEMANTIC) do
      if c.none then
        assert.are.equal(0, res.counts[i], c.css .. " selects nothing")
      else
        assert(res.counts[i] > 0, c.css .. " selects something in DOC")
      end
    end
  end)
end)
