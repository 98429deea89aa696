// The desired spec of each deployment, readable synchronously by the request
// path (budgets, fallbacks) and the runtime's `spec(name)`. The
// DeploymentManagerActor is its only writer, so it is the catalog's one source
// of truth, not a copy kept beside it.

import type { DeploymentSpec } from '@inference/core';

export class SpecTable {
  private readonly specs = new Map<string, DeploymentSpec>();

  get(name: string): DeploymentSpec | undefined {
    return this.specs.get(name);
  }

  names(): string[] {
    return [...this.specs.keys()];
  }

  /** Written by the DeploymentManagerActor only. */
  set(spec: DeploymentSpec): void {
    this.specs.set(spec.name, spec);
  }

  /** Written by the DeploymentManagerActor only. */
  delete(name: string): void {
    this.specs.delete(name);
  }
}
