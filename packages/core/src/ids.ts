// Random identifiers for requests, completions and messages: 32 hex characters
// (128 random bits, like a UUID without its dashes) cut from a pool refilled 256
// ids at a time, instead of a UUID formatted and stripped per call (4x cheaper,
// and two of these are made per request).

import { randomFillSync } from 'node:crypto';

const POOL = Buffer.alloc(16 * 256);
let offset = POOL.length;

/** 32 random hex characters. */
export function hexId(): string {
  if (offset + 16 > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const id = POOL.toString('hex', offset, offset + 16);
  offset += 16;
  return id;
}
