// Deterministic "model output": the pangram "The quick brown fox jumps over the lazy dog."
// repeated, one word per token. Invariants: word i is always the same string, the text of
// n words is the concatenation of the first n pieces, and a token count is a word count,
// so tests can predict every byte and usage number. Everything for outputs up to
// PRECOMPUTED_WORDS is built once at load and shared (generations are immutable and
// cached), which keeps the non-fault path to string concatenation.

export const SENTENCE_WORDS: readonly string[] = ['The', 'quick', 'brown', 'fox', 'jumps', 'over', 'the', 'lazy', 'dog.'];

/** Words generated when neither the request nor the behavior bounds the output. */
export const DEFAULT_COMPLETION_WORDS = 16;

const PRECOMPUTED_WORDS = 4096;

/** `finish`: `stop` = natural end, `length` = cut by max_tokens, `stop_sequence` = a stop string matched. */
export type FinishKind = 'stop' | 'length' | 'stop_sequence';

export interface Generation {
  /** The text split as streamed: one piece per word, each after the first with a leading space. */
  readonly pieces: readonly string[];
  /** `JSON.stringify` of each piece, ready to splice into a chunk. */
  readonly piecesJson: readonly string[];
  readonly text: string;
  readonly finish: FinishKind;
  /** The stop sequence that ended the text, if any. */
  readonly stopSequence: string | null;
}

export interface GenerationLimits {
  /** The request's `max_tokens` / `max_completion_tokens`, when given. */
  readonly maxTokens: number | undefined;
  /** The behavior's `tokens`, when given. */
  readonly behaviorTokens: number | undefined;
}

function pieceAt(i: number): string {
  const word = SENTENCE_WORDS[i % SENTENCE_WORDS.length] ?? '';
  return i === 0 ? word : ` ${word}`;
}

const PIECES: string[] = [];
const PIECES_JSON: string[] = [];
/** END_OFFSETS[i] = length of the text made of pieces 0..i. */
const END_OFFSETS: number[] = [];
let FULL_TEXT = '';
for (let i = 0; i < PRECOMPUTED_WORDS; i++) {
  const piece = pieceAt(i);
  PIECES.push(piece);
  PIECES_JSON.push(JSON.stringify(piece));
  FULL_TEXT += piece;
  END_OFFSETS.push(FULL_TEXT.length);
}

const cache = new Map<number, Generation>();

function plain(words: number, finish: 'stop' | 'length'): Generation {
  const key = words * 2 + (finish === 'length' ? 1 : 0);
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let generation: Generation;
  if (words <= PRECOMPUTED_WORDS) {
    generation = {
      pieces: PIECES.slice(0, words),
      piecesJson: PIECES_JSON.slice(0, words),
      text: FULL_TEXT.slice(0, words === 0 ? 0 : END_OFFSETS[words - 1]),
      finish,
      stopSequence: null,
    };
    cache.set(key, generation);
  } else {
    const pieces: string[] = [];
    for (let i = 0; i < words; i++) pieces.push(pieceAt(i));
    generation = { pieces, piecesJson: pieces.map((p) => JSON.stringify(p)), text: pieces.join(''), finish, stopSequence: null };
  }
  return generation;
}

/**
 * How many words to emit and why the output ends. With `max_tokens` the output is exactly
 * that long (finish `length`) unless the behavior asks for fewer words (finish `stop`);
 * without it the behavior's count or the default applies (finish `stop`).
 */
export function outputLength(limits: GenerationLimits): { readonly words: number; readonly finish: 'stop' | 'length' } {
  const { maxTokens, behaviorTokens } = limits;
  if (maxTokens !== undefined) {
    if (behaviorTokens !== undefined && behaviorTokens < maxTokens) return { words: behaviorTokens, finish: 'stop' };
    return { words: maxTokens, finish: 'length' };
  }
  return { words: behaviorTokens ?? DEFAULT_COMPLETION_WORDS, finish: 'stop' };
}

/** The output for these limits, cut before the earliest occurrence of any stop string. */
export function generate(limits: GenerationLimits, stop: readonly string[]): Generation {
  const { words, finish } = outputLength(limits);
  const full = plain(words, finish);
  if (stop.length === 0) return full;
  let cut = -1;
  let matched: string | null = null;
  for (const s of stop) {
    const at = full.text.indexOf(s);
    if (at !== -1 && (cut === -1 || at < cut)) {
      cut = at;
      matched = s;
    }
  }
  if (cut === -1) return full;
  const pieces: string[] = [];
  let offset = 0;
  for (const piece of full.pieces) {
    if (offset >= cut) break;
    const end = offset + piece.length;
    pieces.push(end <= cut ? piece : piece.slice(0, cut - offset));
    offset = end;
  }
  return {
    pieces,
    piecesJson: pieces.map((p) => JSON.stringify(p)),
    text: full.text.slice(0, cut),
    finish: 'stop_sequence',
    stopSequence: matched,
  };
}

/** Whitespace-separated words in `text`: the mock's prompt-token count. */
export function countWords(text: string): number {
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || c === 10 || c === 9 || c === 13;
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return words;
}
