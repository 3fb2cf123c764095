# Checks the items of a crawl_extract crawl (crawl_extract.sh runs it after each crawl,
# unmeasured, beside crawl_check.py's check of the URLs): every product page of the
# catalogue gave one item with its 5 fields, whose prices add up to what testsite.lua's
# M.product says (PRICE_CENTS), and every other page its 5 fields.
#
# usage: python3 crawl_extract_check.py RECORDS PRODUCTS PRICE_CENTS
# Prints "items=<n> products=<n> price_cents=<sum>"; exits 1 on a mismatch, saying what.
import json
import re
import sys


def main():
    path, products, cents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    items = got_products = total = 0
    errors = []
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        if r.get("status") != 200:
            continue
        its = r.get("items") or []
        if len(its) != 1:
            errors.append("%s: %d items" % (r["url"], len(its)))
            continue
        it = its[0]
        items += 1
        if "/catalogue/product/" in r["url"]:
            got_products += 1
            ok = (isinstance(it.get("name"), str) and it["name"] and
                  re.fullmatch(r"\d+\.\d\d", it.get("price") or "") and
                  isinstance(it.get("stock"), int) and
                  isinstance(it.get("tags"), list) and len(it["tags"]) >= 1 and
                  re.fullmatch(r"SL-\d+-\d{5}", it.get("sku") or ""))
            if ok:
                total += int(it["price"].replace(".", ""))
        else:
            ok = (isinstance(it.get("title"), str) and isinstance(it.get("h1"), str) and
                  isinstance(it.get("links"), (int, float)) and isinstance(it.get("paragraphs"), int))
        if not ok:
            errors.append("%s: bad item %r" % (r["url"], it))
    if got_products != products:
        errors.append("%d product items, wanted %d" % (got_products, products))
    if total != cents:
        errors.append("prices add up to %d cents, wanted %d" % (total, cents))
    print("items=%d products=%d price_cents=%d" % (items, got_products, total))
    for e in errors[:10]:
        print("  " + e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
