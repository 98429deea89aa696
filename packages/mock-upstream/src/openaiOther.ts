// The OpenAI endpoints besides chat: legacy text completions (streamed and not),
// embeddings (float or base64, deterministic per input) and the model list. Same
// conventions as chat: a token is a word, usage is exact, ids are per request.

import { DEFAULT_EMBEDDING_DIMENSIONS, embed, toBase64 } from './embedding.js';
import { InputError } from './errors.js';
import { isObject, optionalBoolean, optionalInt, optionalStrings, requireObject, requireString } from './fields.js';
import { openaiUsageJson, SSE_DONE, type RenderContext, type Rendered } from './render.js';
import { checkLogitBias, completionLogprobsJson, parseCompletionLogprobs } from './logprobs.js';
import { countWords, generate } from './text.js';

/** Inputs of `prompt` / `input`: strings, or token arrays (counted one token per number). */
interface TextInputs {
  readonly texts: readonly string[];
  readonly tokens: number;
}

function isTokenArray(value: unknown): value is readonly number[] {
  return Array.isArray(value) && value.every((t) => typeof t === 'number');
}

function parseInputs(value: unknown, param: string): TextInputs {
  if (typeof value === 'string') return { texts: [value], tokens: countWords(value) };
  if (isTokenArray(value) && value.length > 0) return { texts: [value.join(',')], tokens: value.length };
  if (Array.isArray(value) && value.length > 0) {
    const texts: string[] = [];
    let tokens = 0;
    for (const item of value) {
      if (typeof item === 'string') {
        texts.push(item);
        tokens += countWords(item);
      } else if (isTokenArray(item)) {
        texts.push(item.join(','));
        tokens += item.length;
      } else {
        throw new InputError(`'${param}' must be a string, an array of strings, or token arrays.`, param);
      }
    }
    return { texts, tokens };
  }
  throw new InputError(`'${param}' must be a non-empty string, an array of strings, or token arrays.`, param);
}

/** POST /v1/completions. Choice index = prompt index * n + sample index, as OpenAI numbers them. */
export function completions(raw: unknown, ctx: RenderContext): Rendered {
  const body = requireObject(raw, 'body');
  const model = requireString(body, 'model');
  const prompts = parseInputs(body.prompt, 'prompt');
  const n = optionalInt(body, 'n', 1, 128) ?? 1;
  const stream = optionalBoolean(body, 'stream');
  const includeUsage = stream && isObject(body.stream_options) && body.stream_options.include_usage === true;
  const generation = generate(
    { maxTokens: optionalInt(body, 'max_tokens', 0, 1_000_000), behaviorTokens: ctx.behaviorTokens },
    optionalStrings(body, 'stop', 4),
  );
  const choices = prompts.texts.length * n;
  checkLogitBias(body);
  const logprobs = parseCompletionLogprobs(body);
  const usage = openaiUsageJson(prompts.tokens, generation.pieces.length * choices);
  const reason = generation.finish === 'length' ? 'length' : 'stop';
  const id = `cmpl-${ctx.id}`;
  const modelJson = JSON.stringify(model);

  if (!stream) {
    const list = [];
    const lp: unknown = logprobs === undefined ? null : JSON.parse(completionLogprobsJson(generation.pieces, logprobs));
    for (let index = 0; index < choices; index++) list.push({ text: generation.text, index, logprobs: lp, finish_reason: reason });
    return {
      kind: 'json',
      body:
        `{"id":"${id}","object":"text_completion","created":${ctx.created},"model":${modelJson},` +
        `"choices":${JSON.stringify(list)},"usage":${usage},"system_fingerprint":"fp_mock"}`,
    };
  }

  const head = `data: {"id":"${id}","object":"text_completion","created":${ctx.created},"model":${modelJson},"system_fingerprint":"fp_mock","choices":[`;
  const tail = includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
  const events: string[] = [];
  let offset = 0;
  generation.piecesJson.forEach((pieceJson, w) => {
    const piece = generation.pieces[w] ?? '';
    const lp = logprobs === undefined ? 'null' : completionLogprobsJson([piece], logprobs, w, offset);
    offset += piece.length;
    for (let i = 0; i < choices; i++) events.push(`${head}{"text":${pieceJson},"index":${i},"logprobs":${lp},"finish_reason":null}${tail}`);
  });
  for (let i = 0; i < choices; i++) events.push(`${head}{"text":"","index":${i},"logprobs":null,"finish_reason":"${reason}"}${tail}`);
  if (includeUsage) events.push(`${head}],"usage":${usage}}\n\n`);
  events.push(SSE_DONE);
  return { kind: 'sse', events };
}

/** POST /v1/embeddings. */
export function embeddings(raw: unknown, _ctx: RenderContext): Rendered {
  const body = requireObject(raw, 'body');
  const model = requireString(body, 'model');
  const inputs = parseInputs(body.input, 'input');
  const dimensions = optionalInt(body, 'dimensions', 1, 4096) ?? DEFAULT_EMBEDDING_DIMENSIONS;
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') throw new InputError("'encoding_format' must be 'float' or 'base64'.", 'encoding_format');
  const data = inputs.texts.map((text, index) => {
    const vector = embed(text, dimensions);
    return { object: 'embedding', index, embedding: format === 'base64' ? toBase64(vector) : vector };
  });
  return {
    kind: 'json',
    body: JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: inputs.tokens, total_tokens: inputs.tokens } }),
  };
}

/** Fixed "created" of every listed model: the mock has no clock-dependent output here. */
const MODEL_CREATED = 1_700_000_000;

/** GET /v1/models (OpenAI shape); the body is built once. */
export function openaiModelList(models: readonly string[]): string {
  return JSON.stringify({ object: 'list', data: models.map((id) => ({ id, object: 'model', created: MODEL_CREATED, owned_by: 'mock-upstream' })) });
}

/** GET /v1/models/{id} (OpenAI shape). */
export function openaiModel(id: string): string {
  return JSON.stringify({ id, object: 'model', created: MODEL_CREATED, owned_by: 'mock-upstream' });
}

/** GET /v1/models as Anthropic lists them (`anthropic-version` header present). */
export function anthropicModelList(models: readonly string[]): string {
  const data = models.map((id) => ({ type: 'model', id, display_name: id, created_at: new Date(MODEL_CREATED * 1000).toISOString() }));
  return JSON.stringify({ data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null });
}
