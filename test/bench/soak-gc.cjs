// Preloaded into the sampled node of the accelerated soak (node --expose-gc
// --require soak-gc.cjs; test/bench/soak-accelerated.mjs). On SIGUSR2 it runs a
// full collection and writes `<n> <heapUsed bytes>` to $SOAK_GC_OUT (written
// aside, then renamed, so a reader never sees half a line): the live heap, free
// of the collector's sawtooth (docs/benchmarks.md, "Accelerated soak").
'use strict';
const { renameSync, writeFileSync } = require('node:fs');

let n = 0;
process.on('SIGUSR2', () => {
  n++;
  const gc = globalThis.gc;
  if (typeof gc === 'function') gc();
  const out = process.env.SOAK_GC_OUT;
  if (out === undefined || out === '') return;
  writeFileSync(`${out}.tmp`, `${String(n)} ${String(process.memoryUsage().heapUsed)}`);
  renameSync(`${out}.tmp`, out);
});
