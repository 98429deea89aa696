// Small field readers for untrusted request bodies. Each returns a typed value or throws
// InputError naming the field, so the endpoint parsers read as a list of fields and the
// 400 they produce says which parameter was wrong, the way the real APIs do.

import { InputError } from './errors.js';

export type JsonObject = Readonly<Record<string, unknown>>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function requireObject(value: unknown, param: string): JsonObject {
  if (!isObject(value)) throw new InputError(`'${param}' must be an object.`, param);
  return value;
}

export function requireString(body: JsonObject, key: string): string {
  const value = body[key];
  if (typeof value !== 'string') throw new InputError(`'${key}' is a required string.`, key);
  return value;
}

export function optionalBoolean(body: JsonObject, key: string): boolean {
  const value = body[key];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new InputError(`'${key}' must be a boolean.`, key);
  return value;
}

export function optionalInt(body: JsonObject, key: string, min: number, max: number): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InputError(`'${key}' must be an integer between ${min} and ${max}.`, key);
  }
  return value;
}

export function requireArray(body: JsonObject, key: string): readonly unknown[] {
  const value = body[key];
  if (!Array.isArray(value)) throw new InputError(`'${key}' is a required array.`, key);
  return value;
}

/** `stop` / `stop_sequences`: a string or a list of strings; empty strings are dropped. */
export function optionalStrings(body: JsonObject, key: string, max: number): readonly string[] {
  const value = body[key];
  if (value === undefined || value === null) return [];
  const list: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [0];
  if (list.length > max) throw new InputError(`'${key}' accepts at most ${max} sequences.`, key);
  const out: string[] = [];
  for (const item of list) {
    if (typeof item !== 'string') throw new InputError(`'${key}' must be a string or an array of strings.`, key);
    if (item.length > 0) out.push(item);
  }
  return out;
}

/**
 * The text of a message `content`: a string, or an array of parts whose `text` (and, for
 * tool results, nested `content`) strings are concatenated with spaces.
 */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (typeof part === 'string') text += ` ${part}`;
    else if (isObject(part)) {
      if (typeof part.text === 'string') text += ` ${part.text}`;
      else if (part.content !== undefined) text += ` ${contentText(part.content)}`;
    }
  }
  return text;
}
