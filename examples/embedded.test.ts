import { expect, it } from 'vitest';
import { main } from './embedded.js';

it('the embedded example serves a streamed answer through the library entry point', async () => {
  const lines: string[] = [];
  const text = await main((l) => lines.push(l));
  expect(text).toBe('The quick brown fox jumps over');
  expect(lines[0]).toMatch(/^serving on http:\/\/127\.0\.0\.1:\d+$/);
  expect(lines.at(-1)).toMatch(/=serving, .*=serving$/);
});
