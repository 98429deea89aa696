// Entry of the inventory probe: a short-lived child process that loads the addon,
// writes its device inventory as one JSON line on stdout and exits. The gateway
// learns the GPUs without loading native code itself (inventory.ts runs this).
// Exit 0 with {"inventory":...} or {"reason":...}; never anything else on stdout.

import { tryLoadAddon } from './native.js';

const load = tryLoadAddon();
let line: string;
if (load.addon === null) {
  line = JSON.stringify({ reason: load.reason });
} else {
  try {
    line = JSON.stringify({ inventory: load.addon.inventory(), addonPath: load.path });
  } catch (e) {
    line = JSON.stringify({ reason: `inventory failed: ${e instanceof Error ? e.message : String(e)}` });
  }
}
process.stdout.write(`${line}\n`, () => process.exit(0));
