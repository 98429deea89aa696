// The real `inference` CLI as a child process: `inference serve` with a config
// file written to a temp dir, its URL read from the "serving ... on URL" line,
// its output kept, and its exit awaited.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'apps', 'gateway', 'dist', 'cli.js');
export const MODEL = join(ROOT, 'models', 'stories260K.gguf');

export interface CliServer {
  readonly child: ChildProcess;
  readonly url: string;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  kill(): void;
  /** SIGTERM (the server drains and flushes its logs), then waits for the exit. */
  stop(): Promise<void>;
}

/** Writes `config` (JSON is YAML) to a temp file and returns its path. */
export function writeConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'inference-cli-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** Spawns `inference serve ARGS` and resolves once it prints the URL it serves on. */
export async function startCli(args: string[], env: NodeJS.ProcessEnv = process.env, startMs = 120_000): Promise<CliServer> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => { out += d; });
  child.stderr.on('data', (d: string) => { out += d; });
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code); }); });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`inference serve did not start:\n${out}`)); }, startMs);
    const check = (): void => {
      const m = /serving .* on (https?:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`inference serve exited with ${String(code)} before serving:\n${out}`));
    });
  });
  return {
    child,
    url,
    output: () => out,
    exited,
    kill: () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
