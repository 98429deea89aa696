// A TCP port on the loopback interface that was free a moment ago: the kernel picks
// one for a listener that closes at once. Another process may take it before the
// caller binds it; callers that start a server should prefer port 0 where they can.
// Used for the forwarding listeners of `serve --workers` and for test etcd servers.

import { createServer } from 'node:net';

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => { resolve(port); });
    });
  });
}
