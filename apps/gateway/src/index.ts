export { serve, type Server, type ServeOptions } from './serve.js';
export { ApiGatewayActor, type GatewayMsg, type GatewayOptions } from './apiGatewayActor.js';
export {
  createRuntime, type ReplicaRequest, type RunnerDefinition, type Runtime, type RuntimeFactory, type RuntimeOptions, supervisedRuntime,
} from '@inference/runtime';
export { parseConfig, loadConfigFile, checkEnv, type ParseOptions, type RuntimeConfig } from '@inference/runtime';
