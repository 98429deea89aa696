export { serve, type Server, type ServeOptions } from './serve.js';
export { createRuntime, type Runtime, type RuntimeOptions } from '@inference/runtime';
export { parseConfig, loadConfigFile, checkEnv, type RuntimeConfig } from '@inference/runtime';
