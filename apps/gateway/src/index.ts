export { serve, type Server, type ServeOptions } from './serve.js';
export { createRuntime, type Runtime, type RuntimeOptions } from './runtime.js';
export { parseConfig, loadConfigFile, checkEnv, type RuntimeConfig } from './config.js';
