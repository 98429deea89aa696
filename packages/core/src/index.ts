export * from './errors.js';
export * from './types.js';
export * from './cancel.js';
export * from './deployment.js';
export * from './wire/openai.js';
export * from './wire/anthropic.js';
export * from './wire/anthropicRender.js';
export * from './validate.js';
