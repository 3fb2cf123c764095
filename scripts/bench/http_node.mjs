// Peer for fetch_many.lua: N GETs with Node's built-in fetch (undici), at most LIMIT at once
// through p-limit over a lazy loop (run.sh installs p-limit under scripts/bench/node_modules).
// usage: node http_node.mjs N [LIMIT=100] [URL=http://127.0.0.1:8080/{}]
// Prints "ok=<n> failed=<n> status_200=<n> body_bytes=<n> elapsed=<s> rps=<requests/s>",
// like http_aiohttp.py. p-limit queues every call it is given, so the loop below only hands
// it a job once one of LIMIT slots is free: like limited_as_completed, memory stays O(LIMIT).
import pLimit from 'p-limit';

const N = Number(process.argv[2]);
const LIMIT = process.argv.length > 3 ? Number(process.argv[3]) : 100;
const URL_T = process.argv.length > 4 ? process.argv[4] : 'http://127.0.0.1:8080/{}';

const statuses = new Map();
const errors = new Map();
let bodyBytes = 0;

async function fetchOne(i) {
  const res = await fetch(URL_T.replace('{}', String(i)));
  const body = await res.arrayBuffer();
  return [res.status, body.byteLength];
}

function count(map, key) { map.set(key, (map.get(key) || 0) + 1); }

async function main() {
  const limit = pLimit(LIMIT);
  const t0 = process.hrtime.bigint();
  let free = LIMIT;
  let wake = null;
  const inflight = new Set();
  for (let i = 0; i < N; i++) {
    if (free === 0) await new Promise((r) => { wake = r; });
    free--;
    const p = limit(() => fetchOne(i)).then(
      ([status, size]) => { count(statuses, status); bodyBytes += size; },
      (e) => { count(errors, String((e.cause && (e.cause.code || e.cause.message)) || e.name).replace(/\W+/g, '_')); },
    ).finally(() => {
      inflight.delete(p);
      free++;
      if (wake) { const w = wake; wake = null; w(); }
    });
    inflight.add(p);
  }
  await Promise.all(inflight);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  let ok = 0;
  for (const c of statuses.values()) ok += c;
  let failed = 0;
  for (const c of errors.values()) failed += c;
  const words = [`ok=${ok}`, `failed=${failed}`];
  for (const [s, c] of [...statuses].sort()) words.push(`status_${s}=${c}`);
  for (const [e, c] of [...errors].sort()) words.push(`error_${e}=${c}`);
  words.push(`body_bytes=${bodyBytes}`, `elapsed=${elapsed.toFixed(3)}`, `rps=${(N / elapsed).toFixed(0)}`);
  console.log(words.join(' '));
}

main();
