import { expect, it } from 'vitest';
import { main } from './custom-runner.js';

it('the custom-runner example serves a streamed answer from a registered runtime', async () => {
  const lines: string[] = [];
  const text = await main((l) => lines.push(l));
  expect(text).toBe('hello from my own runner');
  expect(lines.at(-1)).toMatch(/=serving, .*=serving$/);
});
