// Coordination tests start real etcd servers and wait on real leases: run files
// one at a time and give each test room on a loaded machine.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { fileParallelism: false, testTimeout: 120_000, hookTimeout: 60_000 },
});
