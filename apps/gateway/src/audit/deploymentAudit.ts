// What the audit trail records of a deployment: its spec as the admin API shows
// it (cluster-wide in a cluster), or null where there is none. A spec names the
// environment variable of an upstream key (`apiKeyEnv`), never its value.

import { InferenceError } from '@inference/core';
import type { Runtime } from '@inference/runtime';

export async function specBefore(rt: Pick<Runtime, 'get'>, name: string): Promise<unknown> {
  try {
    return (await rt.get(name)).spec;
  } catch (e) {
    if (e instanceof InferenceError && e.kind === 'not_found') return null;
    throw e;
  }
}
