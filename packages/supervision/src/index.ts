export * from './strategy.js';
export * from './workerActor.js';
