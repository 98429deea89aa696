// @inference/runtime: the canonical wiring of the actor topology as a library
// (createRuntime), the configuration contract, and the cluster-node integration.
// The HTTP edge (@inference/gateway) is built on it.

export { createRuntime, type ClusterStatus, type Runtime, type RuntimeOptions } from './runtime.js';
export { BufferedStream, StreamBuffers } from './streamBuffers.js';
export type { RecordStore } from '@inference/storage';
export { type LoadProgress, createLocalReplica } from './localReplica.js';
export { type ReplicaRequest, type RuntimeFactory } from './replicaFactories.js';
export { type RunnerDefinition, customRunnerDecider, supervisedRuntime } from './supervisedRuntime.js';
export { DEFAULT_COMPLETION_ESTIMATE, estimateTokens } from './budgetEstimate.js';
export {
  ADMIN_KEY_ENV, type AdminKeyConfig, type ApiKeyConfig, DEFAULT_SERVER, type Env, type ParseOptions, type RuntimeConfig, adminKeyFromEnv, checkEnv,
  clusterSecret, envCredentials, etcdPassword, loadConfigFile, parseConfig, resolveKeys, secretPolicy, type ServerTlsConfig, tracesConfig,
} from './config.js';
export { SecretAllowList, type SecretsConfig } from './secretsPolicy.js';
export { type TlsFiles, type TlsMaterial, TlsReloader, loadTlsFiles, readTlsFile } from './tlsFiles.js';
export { TRACES_DEFAULTS, type TracesConfig, type TracesFileConfig, parseTracesBlock, resolveTraces } from './telemetry/tracesConfig.js';
export { ClusterBudgetShare } from './cluster/clusterBudget.js';
export { ClusterRateShare } from './cluster/clusterRate.js';
export {
  CLUSTER_DEFAULTS, type ClusterConfig, type ClusterFileConfig, type ClusterFlags, parseClusterBlock, parseHostPort, resolveCluster,
} from './cluster/clusterConfig.js';
export { type ClusterNode, type ClusterNodeOptions, startClusterNode } from './cluster/clusterNode.js';
export { SHARED_PREFIX, type SharedOp, type SharedPrefix, type SharedState } from './cluster/sharedState.js';
export { segmentOf } from './cluster/clusterKeys.js';
// The store of `serve --workers N` (docs/cluster.md, "Several cores of one machine").
export { type Coordination, IpcCoordination, type KvChannel, MemoryStore, freeLoopbackPort, serveKv } from '@inference/cluster';
