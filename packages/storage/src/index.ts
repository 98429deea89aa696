export * from './store.js';
export * from './sqliteStore.js';
export * from './catalog.js';
export * from './records.js';
