// Coalesced socket writes for streamed responses. An upstream read or an engine
// step often yields several chunks in the same tick; each `res.write` would be its
// own syscall. The first write of a tick corks the response and the next tick
// uncorks it, so everything written in between leaves in one writev.
// `res.end()` flushes whatever is corked, so an end in the same tick loses nothing.

import type { ServerResponse } from 'node:http';

const corked = new WeakSet<ServerResponse>();

function uncork(res: ServerResponse): void {
  corked.delete(res);
  res.uncork();
}

export function writeCoalesced(res: ServerResponse, data: string): void {
  if (!corked.has(res)) {
    corked.add(res);
    res.cork();
    process.nextTick(uncork, res);
  }
  res.write(data);
}
