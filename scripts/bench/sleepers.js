// Peer for sleepers.lua: N async functions asleep at once on a 1 s setTimeout promise
// (each returns 1), awaited with Promise.all; run.sh compares peak RSS with N=0.
// usage: node sleepers.js [N=100000] [SECONDS=1]    prints "sum=<N> elapsed=<seconds>"
'use strict';

const N = process.argv.length > 2 ? Number(process.argv[2]) : 100000;
const SECONDS = process.argv.length > 3 ? Number(process.argv[3]) : 1;

async function sleeper() {
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  return 1;
}

async function main() {
  const t0 = process.hrtime.bigint();
  const tasks = new Array(N);
  for (let i = 0; i < N; i++) tasks[i] = sleeper();
  const results = await Promise.all(tasks);
  let sum = 0;
  for (const v of results) sum += v;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`sum=${sum} elapsed=${elapsed.toFixed(3)}`);
}

main();
