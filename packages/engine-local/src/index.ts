export * from './localEngineCore.js';
export { EngineHost, type EngineHostOptions } from './hostClient.js';
export { HOST_EXIT_REASONS, type HostExit, type HostExitReason } from './hostExit.js';
export { findAddon, tryLoadAddon } from './native.js';
export { type GpuInventory, probeGpuInventory } from './inventory.js';
