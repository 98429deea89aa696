// The /v1/models entry of one deployment: OpenAI's model object plus a `meta`
// object saying what serves it (runtime, serving replicas, and for local models
// the template source and context length), so a client can tell a model running
// on the documented fallback chat template from one with its own.

import type { DeploymentStatus } from '@inference/actors';

export interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  meta: {
    runtime: string;
    replicas: number;
    serving: number;
    template_source?: 'model' | 'override' | 'fallback';
    /** The override's file or built-in name, or `tokenizer.chat_template` (the model's own). */
    template?: string;
    /** Whether the template renders tools (tool calling works). */
    template_tools?: boolean;
    context_length?: number;
    backend?: string;
  };
}

export function modelEntry(d: DeploymentStatus): ModelEntry {
  const serving = d.replicas.filter((r) => r.state === 'serving');
  const meta: ModelEntry['meta'] = { runtime: d.spec.runtime, replicas: d.replicas.length, serving: serving.length };
  const details = serving.find((r) => r.details !== undefined)?.details;
  if (details?.templateSource !== undefined) meta.template_source = details.templateSource;
  if (details?.templateName !== undefined) meta.template = details.templateName;
  if (details?.templateTools !== undefined) meta.template_tools = details.templateTools;
  if (details?.contextLength !== undefined) meta.context_length = details.contextLength;
  if (details?.backend !== undefined) meta.backend = details.backend;
  return { id: d.spec.name, object: 'model', created: 0, owned_by: d.spec.runtime, meta };
}
