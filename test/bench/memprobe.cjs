// Preloaded into a measured process (node --expose-gc --require memprobe.cjs) by
// the memory benchmarks. On SIGUSR2 it collects garbage (twice, so that what a
// finalizer released goes too), then writes process.memoryUsage() as JSON to
// $MEMPROBE_OUT; when $MEMPROBE_SNAPSHOT names a file prefix it also writes a
// heap snapshot to <prefix>-<n>.heapsnapshot first. The file appears whole
// (written aside, then renamed), so a reader polling for it never sees half.
'use strict';
const { renameSync, writeFileSync } = require('node:fs');
const v8 = require('node:v8');

let n = 0;
process.on('SIGUSR2', () => {
  n++;
  const gc = globalThis.gc;
  if (typeof gc === 'function') { gc(); gc(); }
  const prefix = process.env.MEMPROBE_SNAPSHOT;
  let snapshot;
  if (prefix !== undefined && prefix !== '') snapshot = v8.writeHeapSnapshot(`${prefix}-${n}.heapsnapshot`);
  if (typeof gc === 'function') gc();
  const out = process.env.MEMPROBE_OUT;
  if (out === undefined) return;
  const m = process.memoryUsage();
  const h = v8.getHeapStatistics();
  writeFileSync(`${out}.tmp`, JSON.stringify({ n, gc: typeof gc === 'function', ...m, mallocedMemory: h.malloced_memory, snapshot }));
  renameSync(`${out}.tmp`, out);
});
