// A corpus of invalid requests with the status and error.param each must get,
// run by bad-requests.test.ts against a gateway whose one deployment is `gpt`
// (OpenAI runtime, mock upstream). `body` is sent as JSON unless it is a string.
// Anthropic-route entries have no param on the wire (Anthropic's error shape has
// none); their `param` is checked against the message prefix instead.

export interface CorpusEntry {
  readonly name: string;
  readonly method?: 'POST' | 'PUT';
  readonly path: string;
  readonly body: unknown;
  readonly contentType?: string;
  readonly status: number;
  readonly param: string | null;
}

const M = [{ role: 'user', content: 'hi' }];
const chat = (extra: Record<string, unknown>): Record<string, unknown> => ({ model: 'gpt', messages: M, ...extra });

export const CORPUS: readonly CorpusEntry[] = [
  // Chat completions
  { name: 'chat: messages not an array of objects', path: '/v1/chat/completions', body: chat({ messages: ['hi'] }), status: 400, param: 'messages[0]' },
  { name: 'chat: content part of an unknown type', path: '/v1/chat/completions', body: chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: 'x' }] }] }), status: 400, param: 'messages[0].content[0].type' },
  { name: 'chat: tool message without tool_call_id', path: '/v1/chat/completions', body: chat({ messages: [{ role: 'tool', content: 'x' }] }), status: 400, param: 'messages[0].tool_call_id' },
  { name: 'chat: tool call arguments not a string', path: '/v1/chat/completions', body: chat({ messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'a', function: { name: 'f', arguments: {} } }] }] }), status: 400, param: 'messages[0].tool_calls[0].function.arguments' },
  { name: 'chat: max_completion_tokens 0', path: '/v1/chat/completions', body: chat({ max_completion_tokens: 0 }), status: 400, param: 'max_completion_tokens' },
  { name: 'chat: max_tokens as a numeric string', path: '/v1/chat/completions', body: chat({ max_tokens: '10' }), status: 400, param: 'max_tokens' },
  { name: 'chat: temperature above 2', path: '/v1/chat/completions', body: chat({ temperature: 2.5 }), status: 400, param: 'temperature' },
  { name: 'chat: top_p negative', path: '/v1/chat/completions', body: chat({ top_p: -0.1 }), status: 400, param: 'top_p' },
  { name: 'chat: seed not an integer', path: '/v1/chat/completions', body: chat({ seed: 1.5 }), status: 400, param: 'seed' },
  { name: 'chat: n of 0', path: '/v1/chat/completions', body: chat({ n: 0 }), status: 400, param: 'n' },
  { name: 'chat: n above 16', path: '/v1/chat/completions', body: chat({ n: 17 }), status: 400, param: 'n' },
  { name: 'chat: stop as a number', path: '/v1/chat/completions', body: chat({ stop: 5 }), status: 400, param: 'stop' },
  { name: 'chat: an empty stop string in an array', path: '/v1/chat/completions', body: chat({ stop: ['a', ''] }), status: 400, param: 'stop[1]' },
  { name: 'chat: five stop sequences', path: '/v1/chat/completions', body: chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), status: 400, param: 'stop' },
  { name: 'chat: stream as a string', path: '/v1/chat/completions', body: chat({ stream: 'true' }), status: 400, param: 'stream' },
  { name: 'chat: include_usage not a boolean', path: '/v1/chat/completions', body: chat({ stream: true, stream_options: { include_usage: 1 } }), status: 400, param: 'stream_options.include_usage' },
  { name: 'chat: tools not an array', path: '/v1/chat/completions', body: chat({ tools: {} }), status: 400, param: 'tools' },
  { name: 'chat: tool of another type', path: '/v1/chat/completions', body: chat({ tools: [{ type: 'retrieval' }] }), status: 400, param: 'tools[0].type' },
  { name: 'chat: tool without a name', path: '/v1/chat/completions', body: chat({ tools: [{ type: 'function', function: { name: '' } }] }), status: 400, param: 'tools[0].function.name' },
  { name: 'chat: response_format as a string', path: '/v1/chat/completions', body: chat({ response_format: 'json' }), status: 400, param: 'response_format' },
  { name: 'chat: response_format of an unknown type', path: '/v1/chat/completions', body: chat({ response_format: { type: 'xml' } }), status: 400, param: 'response_format.type' },
  { name: 'chat: json_schema without its schema block', path: '/v1/chat/completions', body: chat({ response_format: { type: 'json_schema' } }), status: 400, param: 'response_format.json_schema' },
  { name: 'chat: json_schema without a name', path: '/v1/chat/completions', body: chat({ response_format: { type: 'json_schema', json_schema: { schema: {} } } }), status: 400, param: 'response_format.json_schema.name' },
  { name: 'chat: logprobs not a boolean', path: '/v1/chat/completions', body: chat({ logprobs: 1 }), status: 400, param: 'logprobs' },
  { name: 'chat: top_logprobs without logprobs', path: '/v1/chat/completions', body: chat({ top_logprobs: 5 }), status: 400, param: 'top_logprobs' },
  { name: 'chat: logit_bias key not a token id', path: '/v1/chat/completions', body: chat({ logit_bias: { hello: 1 } }), status: 400, param: 'logit_bias' },
  { name: 'chat: logit_bias value out of range', path: '/v1/chat/completions', body: chat({ logit_bias: { 12: -101 } }), status: 400, param: 'logit_bias.12' },
  { name: 'chat: top_logprobs out of range', path: '/v1/chat/completions', body: chat({ top_logprobs: 21 }), status: 400, param: 'top_logprobs' },
  { name: 'chat: user not a string', path: '/v1/chat/completions', body: chat({ user: 42 }), status: 400, param: 'user' },
  { name: 'chat: an empty model', path: '/v1/chat/completions', body: chat({ model: '' }), status: 400, param: 'model' },
  { name: 'chat: null body', path: '/v1/chat/completions', body: 'null', status: 400, param: null },
  { name: 'chat: an empty body', path: '/v1/chat/completions', body: '', status: 400, param: null },
  { name: 'chat: trailing garbage after JSON', path: '/v1/chat/completions', body: '{"model":"gpt"} x', status: 400, param: null },
  { name: 'chat: __proto__ key', path: '/v1/chat/completions', body: '{"__proto__":{"admin":true},"model":"gpt","messages":[{"role":"user","content":"x"}]}', status: 400, param: null },
  { name: 'chat: text/plain body', path: '/v1/chat/completions', body: JSON.stringify(chat({})), contentType: 'text/plain', status: 415, param: null },
  // Completions
  { name: 'completions: prompt missing', path: '/v1/completions', body: { model: 'gpt' }, status: 400, param: 'prompt' },
  { name: 'completions: prompt of several strings', path: '/v1/completions', body: { model: 'gpt', prompt: ['a', 'b'] }, status: 400, param: 'prompt' },
  { name: 'completions: prompt of tokens', path: '/v1/completions', body: { model: 'gpt', prompt: [1, 2] }, status: 400, param: 'prompt' },
  { name: 'completions: logprobs negative', path: '/v1/completions', body: { model: 'gpt', prompt: 'x', logprobs: -1 }, status: 400, param: 'logprobs' },
  { name: 'completions: logprobs above 5', path: '/v1/completions', body: { model: 'gpt', prompt: 'x', logprobs: 6 }, status: 400, param: 'logprobs' },
  { name: 'completions: an unknown model', path: '/v1/completions', body: { model: 'nope', prompt: 'x' }, status: 404, param: 'model' },
  // Embeddings
  { name: 'embeddings: input missing', path: '/v1/embeddings', body: { model: 'gpt' }, status: 400, param: 'input' },
  { name: 'embeddings: empty input list', path: '/v1/embeddings', body: { model: 'gpt', input: [] }, status: 400, param: 'input' },
  { name: 'embeddings: input of numbers', path: '/v1/embeddings', body: { model: 'gpt', input: [1] }, status: 400, param: 'input' },
  { name: 'embeddings: bad encoding_format', path: '/v1/embeddings', body: { model: 'gpt', input: 'x', encoding_format: 'hex' }, status: 400, param: 'encoding_format' },
  { name: 'embeddings: dimensions 0', path: '/v1/embeddings', body: { model: 'gpt', input: 'x', dimensions: 0 }, status: 400, param: 'dimensions' },
  { name: 'embeddings: model missing', path: '/v1/embeddings', body: { input: 'x' }, status: 400, param: 'model' },
  // Admin
  { name: 'admin put: unknown runtime', method: 'PUT', path: '/admin/deployments/c1', body: { runtime: 'tgi', model: 'm' }, status: 400, param: 'runtime' },
  { name: 'admin put: unknown key', method: 'PUT', path: '/admin/deployments/c1', body: { runtime: 'openai', endpoint: 'http://127.0.0.1:9/v1', model: 'm', colour: 'red' }, status: 400, param: 'colour' },
  { name: 'admin put: endpoint not a URL', method: 'PUT', path: '/admin/deployments/c1', body: { runtime: 'openai', endpoint: 'localhost', model: 'm' }, status: 400, param: 'endpoint' },
  { name: 'admin put: replicas negative', method: 'PUT', path: '/admin/deployments/c1', body: { runtime: 'openai', endpoint: 'http://127.0.0.1:9/v1', model: 'm', replicas: -1 }, status: 400, param: 'replicas' },
  { name: 'admin put: name differs from the path', method: 'PUT', path: '/admin/deployments/c1', body: { name: 'c2', runtime: 'openai', endpoint: 'http://127.0.0.1:9/v1', model: 'm' }, status: 400, param: 'name' },
  { name: 'admin put: body an array', method: 'PUT', path: '/admin/deployments/c1', body: [], status: 400, param: null },
  { name: 'admin put: malformed URL', method: 'PUT', path: '/admin/deployments/%E0%A4%A', body: {}, status: 400, param: null },
  { name: 'admin scale: replicas missing', path: '/admin/deployments/gpt/scale', body: {}, status: 400, param: 'replicas' },
  { name: 'admin scale: replicas fractional', path: '/admin/deployments/gpt/scale', body: { replicas: 1.5 }, status: 400, param: 'replicas' },
  { name: 'admin scale: replicas huge', path: '/admin/deployments/gpt/scale', body: { replicas: 1e9 }, status: 400, param: 'replicas' },
  { name: 'admin scale: an extra key', path: '/admin/deployments/gpt/scale', body: { replicas: 1, force: true }, status: 400, param: 'force' },
  { name: 'admin scale: unknown deployment', path: '/admin/deployments/none/scale', body: { replicas: 1 }, status: 404, param: 'name' },
  // Anthropic Messages (param checked against the message's leading path)
  { name: 'messages: max_tokens missing', path: '/v1/messages', body: { model: 'gpt', messages: M }, status: 400, param: 'max_tokens' },
  { name: 'messages: a system role in messages', path: '/v1/messages', body: { model: 'gpt', max_tokens: 5, messages: [{ role: 'system', content: 'x' }] }, status: 400, param: 'messages[0].role' },
  { name: 'messages: stop_sequences not strings', path: '/v1/messages', body: { model: 'gpt', max_tokens: 5, messages: M, stop_sequences: [1] }, status: 400, param: 'stop_sequences[0]' },
  { name: 'messages: tool_result without tool_use_id', path: '/v1/messages', body: { model: 'gpt', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_result', content: 'x' }] }] }, status: 400, param: 'messages[0].content[0].tool_use_id' },
  { name: 'messages: form body', path: '/v1/messages', body: 'model=gpt', contentType: 'application/x-www-form-urlencoded', status: 415, param: null },
];
