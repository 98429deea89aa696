// The standalone CLI: built from source, started as a real process on port 0, steered
// over /_mock, stopped with SIGTERM.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

let child: ChildProcess | undefined;

/** Whether dist/cli.js is missing or older than some non-test source file. */
function distIsStale(): boolean {
  let built: number;
  try {
    built = statSync(cli).mtimeMs;
  } catch {
    return true;
  }
  const src = fileURLToPath(new URL('.', import.meta.url));
  return readdirSync(src).some((name) => name.endsWith('.ts') && !name.endsWith('.test.ts') && statSync(`${src}/${name}`).mtimeMs > built);
}

beforeAll(() => {
  // Build when needed so the test exercises the current source, not a stale dist/.
  if (!distIsStale()) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: packageDir, stdio: 'inherit' });
}, 60_000);

afterAll(() => {
  child?.kill('SIGKILL');
});

async function start(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  child = proc;
  let out = '';
  proc.stdout?.setEncoding('utf8');
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const match = /^listening (\S+)\n/m.exec(out);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    proc.once('exit', (code) => {
      reject(new Error(`cli exited with ${code}`));
    });
  });
  return { proc, url };
}

describe('mock-upstream CLI', () => {
  it('prints the /v1 url, serves, honours --api-key and --rpm, exits on SIGTERM', async () => {
    const { proc, url } = await start(['--port', '0', '--api-key', 'cli-key', '--rpm', '2']);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const models = (key: string): Promise<Response> => fetch(`${url}/models`, { headers: { authorization: `Bearer ${key}` } });
    expect((await models('nope')).status).toBe(401);
    expect((await models('cli-key')).status).toBe(200);
    expect((await models('cli-key')).status).toBe(200);
    expect((await models('cli-key')).status).toBe(429);

    const origin = new URL(url).origin;
    await fetch(`${origin}/_mock/config`, { method: 'POST', body: JSON.stringify({ rpm: null }) });
    await fetch(`${origin}/_mock/script`, { method: 'POST', body: JSON.stringify([{ status: 503 }]) });
    expect((await models('cli-key')).status).toBe(503);
    expect((await models('cli-key')).status).toBe(200);
    const stats = JSON.parse(await (await fetch(`${origin}/_mock/stats`)).text());
    expect(stats).toMatchObject({ requests: 6, rateLimited: 1 });

    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
  });

  it('rejects a bad flag with exit code 2', async () => {
    const proc = spawn(process.execPath, [cli, '--port', 'abc'], { stdio: 'ignore' });
    const [code] = await once(proc, 'exit');
    expect(code).toBe(2);
  });
});
