// Helpers for tests of managed deployments: admin calls, polling, a continuous
// streaming load that records every failure, and a sampler of replica states
// taken from admin GET (each answer is one consistent snapshot of the manager).

import type OpenAI from 'openai';

export interface ReplicaStatusJson {
  id: string;
  state: string;
  reason?: string;
  revision: number;
  load: { outstanding: number; queued: number; capacity: number };
  placement?: { gpus: number[]; threads: number; warning?: string };
}

export interface Status {
  spec: { name: string; replicas: number };
  state: string;
  reason?: string;
  desired: number;
  serving: number;
  revision: number;
  replicas: ReplicaStatusJson[];
}

export async function admin<T = unknown>(url: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Polls until `probe` returns a value (not undefined/false); generous deadlines, no fixed sleeps. */
export async function waitFor<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `concurrency` workers, each streaming one chat completion after another until stopped. */
export class StreamLoad {
  completed = 0;
  readonly failures: string[] = [];
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(private readonly client: OpenAI, private readonly model: string, private readonly concurrency: number, private readonly maxTokens: number, private readonly check: (text: string, finish: string | null) => string | undefined = defaultCheck) {}

  start(): void {
    this.running = true;
    this.workers = Array.from({ length: this.concurrency }, () => this.worker());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  private async worker(): Promise<void> {
    while (this.running) {
      try {
        const stream = await this.client.chat.completions.create({ model: this.model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: this.maxTokens, stream: true });
        let text = '';
        let finish: string | null = null;
        for await (const c of stream) {
          text += c.choices[0]?.delta.content ?? '';
          finish = c.choices[0]?.finish_reason ?? finish;
        }
        const bad = this.check(text, finish);
        if (bad !== undefined) this.failures.push(bad);
        else this.completed++;
      } catch (e) {
        this.failures.push(e instanceof Error ? e.message : String(e));
      }
    }
  }
}

function defaultCheck(text: string, finish: string | null): string | undefined {
  if (finish !== 'length') return `finish_reason ${String(finish)}`;
  return text.length === 0 ? 'empty completion' : undefined;
}

export interface Sample {
  at: number;
  replicas: { id: string; state: string; revision: number }[];
}

export interface Sampler {
  readonly samples: Sample[];
  /** Replica ids seen with in-flight requests. */
  readonly busy: Set<string>;
  stop(): void;
}

/** Polls admin GET of a deployment until stopped, keeping every answer (bounded). */
export function sampleStates(url: string, name: string, max = 50_000): Sampler {
  const samples: Sample[] = [];
  const busy = new Set<string>();
  let running = true;
  void (async () => {
    while (running && samples.length < max) {
      try {
        const s = await admin<Status>(url, 'GET', `/admin/deployments/${name}`);
        samples.push({ at: Date.now(), replicas: s.replicas.map((r) => ({ id: r.id, state: r.state, revision: r.revision })) });
        for (const r of s.replicas) if (r.load.outstanding > 0) busy.add(r.id);
      } catch {
        // The deployment may be gone between samples; the test asserts on what it saw.
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return { samples, busy, stop: () => { running = false; } };
}

export const servingIn = (s: Sample): number => s.replicas.filter((r) => r.state === 'serving').length;
