import { describe, expect, it } from 'vitest';
import { hexId } from './ids.js';

describe('hexId', () => {
  it('gives 32 hex characters, distinct across many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = hexId();
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(5000);
  });
});
