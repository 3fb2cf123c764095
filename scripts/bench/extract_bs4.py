# The extract benchmark's BeautifulSoup side (extract.sh): the same pages as extract.lua with
# BeautifulSoup 4 on lxml's parser (Debian's python3-bs4, python3-lxml), CSS queries only.
#
# usage: python3 extract_bs4.py QUERIES PAGES [OUT]     (as extract.lua; same output)
# BeautifulSoup has no XPath: the XPath queries are skipped (their lines are not written),
# and "queries=" counts the CSS ones it ran. Its CSS (soup.select, soupsieve) has no
# pseudo-elements, so parsel's are done here on the selected elements, as parsel defines
# them: "::attr(name)" the attribute's value where it is present; "::text" the element's
# own text children, " ::text" (after a space) every text node below it; a selection
# without them gives each element's HTML (str(tag)). ":contains()" is soupsieve's
# ":-soup-contains()". The clock (time.process_time) covers parsing and querying.
import re
import warnings

from bs4 import BeautifulSoup, NavigableString
from bs4.element import Comment, Doctype, ProcessingInstruction, Declaration, CData

from extract_common import run

warnings.simplefilter("ignore")   # soupsieve's notice that :contains is now :-soup-contains
NOT_TEXT = (Comment, Doctype, ProcessingInstruction, Declaration, CData)


def is_text(node):
    return isinstance(node, NavigableString) and not isinstance(node, NOT_TEXT)


def compile_query(q):
    """(selector for soup.select, how to turn each element into values)"""
    m = re.match(r"^(.*?)::attr\(([^)]+)\)$", q)
    if m:
        name = m.group(2)

        def attr(el):
            v = el.get(name)
            if v is None:
                return []
            return [" ".join(v) if isinstance(v, list) else v]
        return m.group(1), attr
    if q.endswith(" ::text"):
        return q[:-len(" ::text")], lambda el: [str(t) for t in el.descendants if is_text(t)]
    if q.endswith("::text"):
        return q[:-len("::text")], lambda el: [str(t) for t in el.children if is_text(t)]
    return q, lambda el: [str(el)]


def prepare(queries):
    """The CSS queries, each as (number, selector for soup.select, values of an element)."""
    prepared = []
    for qi, kind, q in queries:
        if kind == "css":
            sel, values = compile_query(q)
            prepared.append((qi, sel.replace(":contains(", ":-soup-contains("), values))
    return prepared


def answers(body, queries):
    soup = BeautifulSoup(body, "lxml")
    for qi, sel, values in queries:
        found = []
        for el in soup.select(sel):
            found.extend(values(el))
        yield qi, found
    soup.decompose()


if __name__ == "__main__":
    run(prepare, answers)
