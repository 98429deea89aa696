// The OpenAI Responses API: POST /v1/responses, GET and DELETE /v1/responses/{id},
// GET /v1/responses/{id}/input_items. A request is validated into the internal
// chat request and runs through the same request path as /v1/chat/completions and
// /v1/messages (one RequestRun: routing, budgets, metrics, fallbacks), on any
// deployment, whatever its runtime.
//
// Storage (`store`, default true): the response object, the conversation so far
// (previous items + this input + this output, instructions excluded, as OpenAI
// does not carry them over) and this request's input items are kept in a
// RecordStore (the catalog's storage, or etcd in a cluster), each output and input
// item also by its own id for `item_reference`. A stored response is visible only
// to the API key that created it. See docs/responses.md.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  type ChatMessage, Flow, InferenceError, type ResponseItem, type ResponseMeta, type ResponsesRequest, hexId, itemsToMessages,
  openAIErrorBody, parseResponsesRequest, renderResponse, retryAfterSeconds, toInferenceError,
} from '@inference/core';
import type { RecordStore } from '@inference/runtime';
import type { RequestJob } from '@inference/actors';
import type { Dispatch, StreamOptions } from '../anthropic/anthropicRoutes.js';
import { principalOf } from '../http/auth.js';
import { ResponsesStream } from './responsesStreaming.js';

interface StoredResponse {
  readonly owner: string | null;
  readonly response: ResponseItem;
  /** The whole conversation to continue from (without instructions). */
  readonly items: ResponseItem[];
  /** This request's input items, with ids. */
  readonly input: ResponseItem[];
}

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const ITEM_PREFIX: Readonly<Record<string, string>> = { message: 'msg', function_call: 'fc', function_call_output: 'fco', reasoning: 'rs' };

function sendError(reply: FastifyReply, e: InferenceError): FastifyReply {
  const ra = retryAfterSeconds(e);
  if (ra !== undefined) void reply.header('retry-after', String(ra));
  return reply.code(e.status).type('application/json').send(openAIErrorBody(e));
}

function notFound(id: string, param: string | null = null): InferenceError {
  return new InferenceError('not_found', `Response with id '${id.slice(0, 128)}' not found.`, { param });
}

function ownerOf(req: FastifyRequest): string | null {
  return principalOf(req)?.name ?? null;
}

function parseStored(text: string): StoredResponse {
  return JSON.parse(text) as StoredResponse;
}

export class ResponsesApi {
  constructor(
    private readonly dispatch: Dispatch,
    private readonly records: RecordStore,
    /** A streamed response's writer options (back-pressure and the stall bound, docs/flow-control.md). */
    private readonly streamOptions: StreamOptions = () => ({ flow: new Flow() }),
  ) {}

  private async load(id: string, owner: string | null, param: string | null = null): Promise<StoredResponse> {
    if (!ID.test(id)) throw notFound(id, param);
    const text = await this.records.get(`resp:${id}`);
    if (text === undefined) throw notFound(id, param);
    const stored = parseStored(text);
    if (stored.owner !== owner) throw notFound(id, param);
    return stored;
  }

  /** Replaces `item_reference`s by the items they name (stored with an earlier response). */
  private async resolve(input: ResponseItem[], owner: string | null): Promise<ResponseItem[]> {
    if (!input.some((i) => i.type === 'item_reference')) return input;
    return Promise.all(input.map(async (item, i) => {
      if (item.type !== 'item_reference') return item;
      const id = String(item.id);
      const text = ID.test(id) ? await this.records.get(`item:${id}`) : undefined;
      const found = text === undefined ? undefined : (JSON.parse(text) as { owner: string | null; item: ResponseItem });
      if (found?.owner !== owner) {
        throw new InferenceError('invalid_request', `input[${i}].id: item '${id.slice(0, 128)}' not found`, { param: `input[${i}].id` });
      }
      return found.item;
    }));
  }

  private async save(owner: string | null, response: ResponseItem, history: readonly ResponseItem[], input: ResponseItem[]): Promise<void> {
    const output = (response.output ?? []) as ResponseItem[];
    const stored: StoredResponse = { owner, response, items: [...history, ...input, ...output], input };
    // Items first: a response is only ever visible with the items it refers to.
    for (const item of [...input, ...output]) {
      if (typeof item.id === 'string' && ID.test(item.id)) await this.records.put(`item:${item.id}`, JSON.stringify({ owner, item }));
    }
    await this.records.put(`resp:${String(response.id)}`, JSON.stringify(stored));
  }

  async create(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const parsed: ResponsesRequest = parseResponsesRequest(req.body);
    const owner = ownerOf(req);
    const history = parsed.previousResponseId === undefined ? [] : (await this.load(parsed.previousResponseId, owner, 'previous_response_id')).items;
    const input = (await this.resolve(parsed.input, owner)).map((item) =>
      item.id === undefined ? { ...item, id: `${ITEM_PREFIX[item.type] ?? 'item'}_${hexId()}` } : item,
    );
    const messages: ChatMessage[] = itemsToMessages([...history, ...input]);
    if (messages.length === 0) throw new InferenceError('invalid_request', 'input: must contain at least one message', { param: 'input' });
    const chat = {
      ...parsed.chat,
      messages:
        parsed.instructions === undefined || parsed.instructions === '' ? messages : [{ role: 'system' as const, content: parsed.instructions }, ...messages],
    };
    const meta: ResponseMeta = { id: `resp_${hexId()}`, createdAt: Math.floor(Date.now() / 1000), model: parsed.model, echo: parsed.echo };
    const res = reply.raw;
    const whenGone = (cancel: () => void): void => {
      res.on('close', () => {
        if (!res.writableFinished) cancel();
      });
    };
    if (!parsed.stream) {
      const out = await this.dispatch(req, { kind: 'generate', endpoint: 'responses', req: chat, sink: () => undefined }, whenGone);
      if (out.kind !== 'generate') throw new InferenceError('internal', 'internal error');
      meta.model = out.deployment;
      const response = renderResponse(meta, out.tokens.choices[0], out.tokens.usage);
      if (parsed.store) await this.save(owner, response, history, input);
      return reply.type('application/json').send(response);
    }
    const options = this.streamOptions();
    const stream = new ResponsesStream(res, req.id, meta, options);
    try {
      const job: RequestJob = { kind: 'generate', endpoint: 'responses', req: chat, sink: stream.push, onDeployment: stream.setModel, flow: options.flow };
      const out = await this.dispatch(req, job, whenGone);
      if (out.kind !== 'generate') throw new InferenceError('internal', 'internal error');
      reply.hijack();
      const response = stream.end(out.tokens);
      if (parsed.store) {
        await this.save(owner, response, history, input).catch((e: unknown) => {
          req.log.warn({ err: toInferenceError(e).message }, 'responses: not stored');
        });
      }
    } catch (e) {
      const err = toInferenceError(e);
      if (!stream.headersSent) return sendError(reply, err);
      reply.hijack();
      stream.fail(err);
    }
    return reply;
  }

  async get(req: FastifyRequest<{ Params: { id: string } }>): Promise<ResponseItem> {
    return (await this.load(req.params.id, ownerOf(req))).response;
  }

  async remove(req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> {
    const id = req.params.id;
    const stored = await this.load(id, ownerOf(req));
    await this.records.delete(`resp:${id}`);
    for (const item of stored.input) if (typeof item.id === 'string' && ID.test(item.id)) await this.records.delete(`item:${item.id}`);
    for (const item of (stored.response.output ?? []) as ResponseItem[]) {
      if (typeof item.id === 'string' && ID.test(item.id)) await this.records.delete(`item:${item.id}`);
    }
    return { id, object: 'response', deleted: true };
  }

  async inputItems(req: FastifyRequest<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>): Promise<unknown> {
    const stored = await this.load(req.params.id, ownerOf(req));
    const q = req.query;
    const order = q.order ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw new InferenceError('invalid_request', "order: must be 'asc' or 'desc'", { param: 'order' });
    const limit = q.limit === undefined ? 20 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new InferenceError('invalid_request', 'limit: must be an integer between 1 and 100', { param: 'limit' });
    }
    let items = order === 'asc' ? [...stored.input] : [...stored.input].reverse();
    if (q.after !== undefined) {
      const at = items.findIndex((i) => i.id === q.after);
      if (at < 0) throw new InferenceError('invalid_request', `after: item '${q.after.slice(0, 128)}' is not in this list`, { param: 'after' });
      items = items.slice(at + 1);
    }
    const page = items.slice(0, limit);
    return { object: 'list', data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: items.length > page.length };
  }
}

export function registerResponsesRoutes(app: FastifyInstance, api: ResponsesApi): void {
  app.post('/v1/responses', (req, reply) => api.create(req, reply));
  app.get<{ Params: { id: string } }>('/v1/responses/:id', (req) => api.get(req));
  app.delete<{ Params: { id: string } }>('/v1/responses/:id', (req) => api.remove(req));
  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>('/v1/responses/:id/input_items', (req) => api.inputItems(req));
}
