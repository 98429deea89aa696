export * from './kernel.js';
export * from './routing.js';
export * from './metricNames.js';
export * from './metricsActor.js';
export * from './dpCoordinatorActor.js';
export * from './requestActor.js';
export * from './deploymentManagerActor.js';
