export * from './sse.js';
export * from './session.js';
export * from './upstreamErrors.js';
export * from './remoteEngineCoreActor.js';
export * as openaiProvider from './providers/openai.js';
