export * from './localEngineCore.js';
export { EngineHost, type EngineHostOptions } from './hostClient.js';
export { findAddon, tryLoadAddon } from './native.js';
export { type GpuInventory, probeGpuInventory } from './inventory.js';
