// Deterministic embeddings: a unit vector seeded by the FNV-1a hash of the input, so the
// same input always embeds to the same vector and different inputs (almost surely) differ.

/** Dimensions returned when the request does not ask for `dimensions`. */
export const DEFAULT_EMBEDDING_DIMENSIONS = 8;

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** `dimensions` floats in [-1, 1] with Euclidean norm 1, derived only from `input`. */
export function embed(input: string, dimensions: number = DEFAULT_EMBEDDING_DIMENSIONS): number[] {
  // mulberry32: a tiny PRNG whose whole state is the 32-bit seed.
  let state = fnv1a(input);
  const vector: number[] = [];
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const value = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
    vector.push(value);
    norm += value * value;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  // Round through float32 so the float and base64 encodings carry the same numbers.
  return vector.map((v) => Math.fround(v * scale));
}

/** OpenAI's `encoding_format: 'base64'`: little-endian float32 bytes, base64-encoded. */
export function toBase64(vector: readonly number[]): string {
  const floats = new Float32Array(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString('base64');
}
