// Whether a request gets a tool call instead of text, and which one. Shared by the OpenAI
// and Anthropic endpoints (they differ only in how tools and tool_choice are spelled).
// Rule: a forced choice (OpenAI `required` / a named function, Anthropic `any` / `tool`)
// always calls; `auto` calls when the last user message mentions "weather" and no tool
// result came after it (a tool loop then ends in text); `none` never.
// Arguments are synthesised from the tool's JSON schema, deterministically.

import { isObject } from './fields.js';

export interface ToolDef {
  readonly name: string;
  /** The JSON schema of the arguments (`parameters` / `input_schema`). */
  readonly schema: unknown;
}

export type ToolMode =
  | { readonly kind: 'auto' }
  | { readonly kind: 'none' }
  | { readonly kind: 'any' }
  | { readonly kind: 'named'; readonly name: string };

export interface ToolCallPlan {
  readonly name: string;
  readonly input: Readonly<Record<string, unknown>>;
  readonly argumentsJson: string;
  /** `argumentsJson` in the pieces it is streamed as (concatenation = argumentsJson). */
  readonly pieces: readonly string[];
}

const PIECE_CHARS = 8;

function valueFor(key: string, schema: unknown): unknown {
  if (!isObject(schema)) return 'mock';
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  switch (schema.type) {
    case 'string': {
      const lower = key.toLowerCase();
      return lower.includes('location') || lower.includes('city') ? 'Paris' : 'mock';
    }
    case 'number':
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object':
      return {};
    default:
      return null;
  }
}

function argumentsFor(schema: unknown): Record<string, unknown> {
  if (!isObject(schema) || !isObject(schema.properties)) return { location: 'Paris', unit: 'celsius' };
  const input: Record<string, unknown> = {};
  for (const [key, property] of Object.entries(schema.properties)) input[key] = valueFor(key, property);
  return input;
}

function split(text: string): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += PIECE_CHARS) pieces.push(text.slice(i, i + PIECE_CHARS));
  return pieces;
}

/** The tool call this request receives, or undefined for a text answer. */
export function planToolCall(tools: readonly ToolDef[], mode: ToolMode, lastUserText: string): ToolCallPlan | undefined {
  if (tools.length === 0) return undefined;
  let tool: ToolDef | undefined;
  switch (mode.kind) {
    case 'none':
      return undefined;
    case 'named':
      tool = tools.find((t) => t.name === mode.name) ?? { name: mode.name, schema: undefined };
      break;
    case 'auto':
      if (!lastUserText.toLowerCase().includes('weather')) return undefined;
      tool = tools.find((t) => t.name.toLowerCase().includes('weather')) ?? tools[0];
      break;
    case 'any':
      tool = tools.find((t) => t.name.toLowerCase().includes('weather')) ?? tools[0];
      break;
    default: {
      const never: never = mode;
      throw new Error(`unknown tool mode ${JSON.stringify(never)}`);
    }
  }
  if (tool === undefined) return undefined;
  const input = argumentsFor(tool.schema);
  const argumentsJson = JSON.stringify(input);
  return { name: tool.name, input, argumentsJson, pieces: split(argumentsJson) };
}
