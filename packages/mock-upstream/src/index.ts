// Public surface of @inference/mock-upstream: an OpenAI- and Anthropic-compatible fake
// upstream with per-request fault injection, for tests and as the benchmark baseline.

export { startMockUpstream, type MockUpstream, type MockUpstreamOptions } from './upstream.js';
export { ERROR_STATUSES, parseBehavior, parseScript, BehaviorError, type Behavior, type MockErrorStatus } from './behavior.js';
export type { MockStats } from './stats.js';
export { MOCK_CA_PATH, MOCK_CERT_PATH, MOCK_KEY_PATH, mockCaPem } from './fixtures.js';
export { DEFAULT_COMPLETION_WORDS, SENTENCE_WORDS } from './text.js';
export { DEFAULT_EMBEDDING_DIMENSIONS, embed } from './embedding.js';
export { DEFAULT_MODELS } from './pipeline.js';
export { parseSse, parseOpenAiStream, type SseEvent } from './sse.js';
