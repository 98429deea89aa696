// The packages as users install them: each public package is packed with
// `pnpm pack` (workspace versions become real ones), the tarballs are installed
// with npm into a fresh folder outside the workspace (install scripts off: no
// C++ is compiled), and the examples run there: the embedded example and a
// runtime of one's own remote-only, and a local GGUF deployment on the native
// engine found through INFERENCE_NATIVE_ADDON. Third-party dependencies come from
// the npm cache or the registry.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PUBLIC = ['core', 'actors', 'supervision', 'engine-remote', 'engine-local', 'storage', 'cluster', 'runtime'].map((p) => join('packages', p));
const GATEWAY = join('apps', 'gateway');
// Not a dependency of any public package: installed here because the embedded example uses it.
const MOCK = join('packages', 'mock-upstream');
const ADDON = join(ROOT, 'build', 'Release', 'inference_native.node');
const MODEL = join(ROOT, 'models', 'stories260K.gguf');

let dir = '';
const tarballs = new Map<string, string>();

function nameOf(pkgDir: string): string {
  return (JSON.parse(readFileSync(join(ROOT, pkgDir, 'package.json'), 'utf8')) as { name: string }).name;
}

async function pack(pkgDir: string): Promise<void> {
  const { stdout } = await run('pnpm', ['pack', '--pack-destination', join(dir, 'tarballs')], { cwd: join(ROOT, pkgDir) });
  const file = stdout.trim().split('\n').at(-1) ?? '';
  expect(file).toMatch(/\.tgz$/);
  tarballs.set(nameOf(pkgDir), file);
}

async function listing(name: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', tarballs.get(name) ?? '']);
  return stdout.trim().split('\n');
}

interface Manifest {
  dependencies?: Record<string, string>;
  private?: boolean;
  main?: string;
  types?: string;
  exports?: Record<string, unknown>;
}

async function manifest(name: string): Promise<Manifest> {
  const { stdout } = await run('tar', ['-xzOf', tarballs.get(name) ?? '', 'package/package.json']);
  return JSON.parse(stdout) as Manifest;
}

/** Every file the manifest points to (main, types, each condition of each export), as tarball paths. */
function entryPoints(m: Manifest): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(`package/${v.replace(/^\.\//, '')}`);
    else if (typeof v === 'object' && v !== null) for (const x of Object.values(v)) walk(x);
  };
  walk([m.main, m.types, m.exports].filter((v) => v !== undefined));
  return out;
}

/** An example, as plain JavaScript (the installed app has no TypeScript toolchain). */
function example(file: string): string {
  const source = readFileSync(join(ROOT, 'examples', file), 'utf8');
  return ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
}

async function node(script: string, env: Record<string, string> = {}): Promise<string> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'INFERENCE_NATIVE_ADDON'));
  const { stdout } = await run(process.execPath, [script], { cwd: join(dir, 'app'), env: { ...clean, ...env }, timeout: 120_000 });
  return stdout;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inference-pack-'));
  await Promise.all([...PUBLIC, GATEWAY, MOCK].map((p) => pack(p)));
  const deps = Object.fromEntries([...tarballs].map(([name, file]) => [name, `file:${file}`]));
  const openai = (JSON.parse(readFileSync(join(ROOT, 'examples', 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies['openai'] ?? '';
  const app = join(dir, 'app');
  await run('mkdir', ['-p', app]);
  // overrides: the packages' own dependencies on each other resolve to these tarballs, not the registry.
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { ...deps, openai }, overrides: deps }, null, 2));
  await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, timeout: 170_000 });
  for (const name of ['embedded', 'custom-runner']) {
    writeFileSync(join(app, `${name}.mjs`), example(`${name}.ts`));
    writeFileSync(join(app, `run-${name}.mjs`), `import { main } from './${name}.mjs';\nawait main();\n`);
  }
}, 180_000);

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('packed packages', () => {
  it('are public, with exports and types, and ship neither tests nor test helpers', async () => {
    for (const p of [...PUBLIC, GATEWAY]) {
      const name = nameOf(p);
      const m = await manifest(name);
      expect(m.private, name).toBeUndefined();
      expect(Object.keys(m.exports ?? {}), name).toEqual(['.']);
      expect(Object.values(m.dependencies ?? {}).filter((v) => v.startsWith('workspace:')), name).toEqual([]);
      expect(Object.keys(m.dependencies ?? {}), name).not.toContain('@inference/mock-upstream');
      const files = await listing(name);
      // A wrong path in main, types or exports breaks imports (or only the types: nothing at run time shows that).
      expect(entryPoints(m).filter((f) => !files.includes(f)), name).toEqual([]);
      expect(files, name).toContain('package/README.md');
      expect(files, name).toContain('package/dist/index.d.ts');
      expect(files.filter((f) => /\.test\.|\.suite\.|testing\/|etcdServer/.test(f)), name).toEqual([]);
    }
  });

  it('install outside the workspace without compiling C++ and run the embedded example remote-only', async () => {
    expect(existsSync(join(dir, 'app', 'node_modules', '@inference', 'engine-local', 'build'))).toBe(false);
    const out = await node('run-embedded.mjs');
    expect(out).toContain('answer: The quick brown fox jumps over');
    expect(out).toMatch(/replicas: .*=serving, .*=serving/);
  });

  it('serve a runtime of one\'s own', async () => {
    const out = await node('run-custom-runner.mjs');
    expect(out).toContain('answer: hello from my own runner');
  });

  it.runIf(existsSync(ADDON) && existsSync(MODEL))('serve a local GGUF model on the native engine found through INFERENCE_NATIVE_ADDON', async () => {
    writeFileSync(join(dir, 'app', 'local.mjs'), `
import { parseConfig, serve } from '@inference/gateway';
const config = parseConfig({ server: { port: 0 }, deployments: [
  { name: 'stories', runtime: 'llama', model: ${JSON.stringify(MODEL)}, engine: { contextSize: 512, maxSequences: 2, threads: 1 } },
] });
const server = await serve(config);
try {
  const status = await server.runtime.settled();
  console.log('state:', status[0].replicas.map((r) => r.state + (r.reason ? ' ' + r.reason : '')).join(', '));
  const res = await fetch(server.url + '/v1/completions', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'stories', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }),
  });
  const body = await res.json();
  console.log('status:', res.status, 'tokens:', body.usage?.completion_tokens, 'text:', JSON.stringify(body.choices?.[0]?.text));
} finally {
  await server.close();
}
`);
    const out = await node('local.mjs', { INFERENCE_NATIVE_ADDON: ADDON });
    expect(out).toContain('state: serving');
    expect(out).toMatch(/status: 200 tokens: [1-8] text: "/);
  });
});
