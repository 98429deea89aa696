import { describe, expect, it } from 'vitest';
import { probeGpuInventory } from './inventory.js';

describe('probeGpuInventory', () => {
  it('reads the addon inventory in a child process (CPU build: no GPUs)', async () => {
    const inv = await probeGpuInventory();
    // This checkout builds the addon for CPU; a CUDA build would list its GPUs.
    expect(inv.source).toMatch(/^addon inventory \((cpu|cuda) backend\)$/);
    for (const g of inv.gpus) expect(g.totalMiB).toBeGreaterThan(0);
  });

  it('answers no GPUs with the reason when the addon is absent', async () => {
    const inv = await probeGpuInventory({ env: { ...process.env, INFERENCE_NATIVE_ADDON: '/nonexistent/addon.node' } });
    expect(inv).toEqual({ gpus: [], source: 'native addon not built' });
  });
});
