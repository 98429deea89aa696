// The client span of one upstream HTTP call (docs/tracing.md): method, server
// address and path (never the query, headers or body: those may carry keys or
// prompts), the provider, and the answer's status. Made only when the request
// runs under a span; the call's headers then carry its W3C trace context.

import type { DeploymentSpec, TraceSpan } from '@inference/core';

export function upstreamSpan(
  parent: TraceSpan, spec: DeploymentSpec, path: string, provider: string, headers: Record<string, string>,
): { span: TraceSpan; headers: Record<string, string> } {
  let address: string | undefined;
  let port: number | undefined;
  let base = '';
  try {
    const u = new URL(spec.endpoint ?? '');
    address = u.hostname;
    port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
    base = u.pathname.replace(/\/+$/, '');
  } catch {
    // No parsable endpoint: the span goes without an address.
  }
  const span = parent.child(`POST ${base}${path}`, {
    'http.request.method': 'POST',
    'server.address': address,
    'server.port': port,
    'url.path': `${base}${path}`,
    'gen_ai.provider.name': provider,
    'inference.deployment': spec.name,
  }, 'client');
  const withContext = { ...headers };
  span.inject(withContext);
  return { span, headers: withContext };
}
