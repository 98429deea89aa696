// The admin HTTP client behind `inference deploy | get | list | scale | remove`:
// one method per admin call against a running server. Every failure becomes a
// CliError with a message for the operator: the server's taxonomy message (with
// its type and HTTP status), a refused or failed connection, or a reply that is
// not the server's JSON. Nothing here touches the process (exit codes, output).

import type { DeploymentStatus } from '@inference/actors';

export class CliError extends Error {}

export interface AdminClientOptions {
  readonly server: string;
  readonly adminKey?: string;
  readonly timeoutMs?: number;
}

/** The network error under fetch's 'fetch failed': its code (ECONNREFUSED, ...) or message. */
function cause(e: unknown): { code?: string; message?: string } {
  const c = e instanceof Error ? (e as Error & { cause?: unknown }).cause : undefined;
  if (typeof c !== 'object' || c === null) return {};
  const code = 'code' in c && typeof c.code === 'string' ? c.code : undefined;
  const message = c instanceof Error ? c.message : undefined;
  return { ...(code === undefined ? {} : { code }), ...(message === undefined ? {} : { message }) };
}

export class AdminClient {
  private readonly base: string;

  constructor(private readonly options: AdminClientOptions) {
    let url: URL;
    try {
      url = new URL(options.server);
    } catch {
      throw new CliError(`--server: expected a URL like http://127.0.0.1:8080, got '${options.server}'`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`--server: expected an http(s) URL, got '${options.server}'`);
    this.base = url.href.replace(/\/+$/, '');
  }

  list(): Promise<DeploymentStatus[]> {
    return this.call<{ deployments: DeploymentStatus[] }>('GET', '/admin/deployments').then((r) => r.deployments);
  }

  get(name: string): Promise<DeploymentStatus> {
    return this.call('GET', `/admin/deployments/${encodeURIComponent(name)}`);
  }

  apply(name: string, spec: Record<string, unknown>): Promise<DeploymentStatus> {
    return this.call('PUT', `/admin/deployments/${encodeURIComponent(name)}`, spec);
  }

  scale(name: string, replicas: number): Promise<DeploymentStatus> {
    return this.call('POST', `/admin/deployments/${encodeURIComponent(name)}/scale`, { replicas });
  }

  async remove(name: string): Promise<void> {
    await this.call('DELETE', `/admin/deployments/${encodeURIComponent(name)}`);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.adminKey !== undefined) headers.authorization = `Bearer ${this.options.adminKey}`;
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method, headers, signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      const { code, message } = cause(e);
      if (code === 'ECONNREFUSED') throw new CliError(`cannot connect to ${this.base}: connection refused (is \`inference serve\` running there? see --server)`);
      if (e instanceof Error && e.name === 'TimeoutError') throw new CliError(`${this.base} did not answer ${method} ${path} in time`);
      throw new CliError(`cannot reach ${this.base}: ${code ?? message ?? (e instanceof Error ? e.message : String(e))}`);
    }
    const text = await res.text();
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new CliError(`${method} ${path}: HTTP ${res.status} with a body that is not JSON (is ${this.base} an inference server?)`);
    }
    if (!res.ok) {
      const err = typeof doc === 'object' && doc !== null ? (doc as { error?: { message?: unknown; type?: unknown } }).error : undefined;
      const message = typeof err?.message === 'string' ? err.message : `HTTP ${res.status}`;
      const type = typeof err?.type === 'string' ? err.type : 'error';
      throw new CliError(`server: ${message} (${type}, HTTP ${res.status})`);
    }
    return doc as T;
  }
}
