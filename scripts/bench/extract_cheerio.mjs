// The extract benchmark's cheerio side (extract.sh): the same pages as extract.lua with
// cheerio 1 (npm, installed under scripts/bench/node_modules), CSS queries only.
//
// usage: node extract_cheerio.mjs QUERIES PAGES [OUT]     (as extract.lua; same output)
// cheerio has no XPath: the XPath queries are skipped (their lines are not written), and
// "queries=" counts the CSS ones it ran. Its CSS (css-select) has no pseudo-elements, so
// parsel's are done here on the selected elements, as parsel defines them (see
// extract_bs4.py). cheerio.load parses with parse5, the HTML5 algorithm, not libxml2's:
// its trees differ from lxml's in places (e.g. <tbody> inserted), so some answers do too.
// The clock (process.cpuUsage) covers decoding, parsing and querying.
import { readFileSync, openSync, writeSync, closeSync } from "node:fs";
import * as cheerio from "cheerio";

const [qpath, lpath, outpath] = process.argv.slice(2);
const esc = (s) => s.replace(/[\\\t\n\r]/g, (c) => ({ "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c]);

function compile(q) {
  let m = q.match(/^(.*?)::attr\(([^)]+)\)$/);
  if (m) {
    const name = m[2];
    return [m[1], ($, el) => { const v = $(el).attr(name); return v === undefined ? [] : [v]; }];
  }
  const isText = (n) => n.type === "text";
  if (q.endsWith(" ::text")) {
    const walk = (n, acc) => { for (const c of n.children || []) { if (isText(c)) acc.push(c.data); else if (c.type === "tag" || c.type === "script" || c.type === "style") walk(c, acc); } return acc; };
    return [q.slice(0, -" ::text".length), ($, el) => walk(el, [])];
  }
  if (q.endsWith("::text")) {
    return [q.slice(0, -"::text".length), ($, el) => el.children.filter(isText).map((c) => c.data)];
  }
  return [q, ($, el) => [$.html(el)]];
}

const queries = [];
readFileSync(qpath, "utf8").split("\n").filter((l) => /^(css|xpath)\t/.test(l)).forEach((l, i) => {
  const [kind, q] = l.split("\t");
  if (kind === "css") queries.push([i + 1, ...compile(q)]);
});
const bodies = readFileSync(lpath, "utf8").split("\n").filter(Boolean).map((p) => readFileSync(p));
const out = outpath ? openSync(outpath, "w") : null;
let results = 0;
const t0 = process.cpuUsage();
bodies.forEach((body, i) => {
  const $ = cheerio.load(body.toString("utf8"));
  for (const [qi, sel, values] of queries) {
    const found = [];
    $(sel).each((_, el) => { for (const v of values($, el)) found.push(v); });
    results += found.length;
    if (out !== null) writeSync(out, [i + 1, qi, ...found.map(esc)].join("\t") + "\n");
  }
});
const t = process.cpuUsage(t0);
if (out !== null) closeSync(out);
const version = JSON.parse(readFileSync(new URL("./node_modules/cheerio/package.json", import.meta.url))).version;
console.log(`pages=${bodies.length} queries=${queries.length} results=${results} cpu=${((t.user + t.system) / 1e6).toFixed(3)} cheerio=${version}`);
