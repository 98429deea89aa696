// Public surface of @inference/cluster: the Coordination contract, its two
// implementations, and the key layout.

export * from './types.js';
export { PREFIX, electionPrefix } from './keys.js';
export { leaderOf } from './election.js';
export {
  InMemoryCoordination, EtcdCoordination, IpcCoordination, parseClusterUrl, rootOf, type CloseOptions, type EtcdCoordinationOptions,
} from './coordination.js';
export { MemoryStore } from './memoryKv.js';
export { IpcKvClient, serveKv, type KvChannel } from './ipcKv.js';
export { freeLoopbackPort } from './loopbackPort.js';
