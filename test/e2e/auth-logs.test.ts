// Keys never reach the logs: the real `inference serve` CLI with request logging
// on, requests carrying valid and invalid API and admin keys (Bearer and
// x-api-key), then every byte it wrote to stdout and stderr is searched for them.
// The lean front of the generate routes logs the requests it takes as Fastify does.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockUpstream, startMockUpstream } from '@inference/mock-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliServer, startCli } from '../support/cli.js';

const KEYS = { LOG_TEAM_KEY: 'sk-log-team-3b9f1e27c4', LOG_ADMIN_KEY: 'adm-log-ops-8d2a6c0f55' };
const WRONG = 'sk-wrong-key-a41c9e77d0';

let mock: MockUpstream;
let dir: string;
let server: CliServer | undefined;

beforeAll(async () => {
  mock = await startMockUpstream({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'inference-e2e-authlogs-'));
});
afterAll(async () => {
  server?.kill();
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('request logs', () => {
  it('carry no key, valid or not, whichever header brought it', async () => {
    const config = join(dir, 'inference.yaml');
    writeFileSync(config, [
      'auth:',
      '  apiKeys: [{ name: team, keyEnv: LOG_TEAM_KEY }]',
      '  adminKeys: [{ name: ops, keyEnv: LOG_ADMIN_KEY }]',
      'deployments:',
      `  - { name: gpt, runtime: openai, endpoint: "${mock.url}", model: gpt-4o-mini }`,
      '',
    ].join('\n'));
    server = await startCli(['--config', config, '--port', '0', '--host', '127.0.0.1'], { ...process.env, ...KEYS });
    const url = server.url;
    const chat = (headers: Record<string, string>, path = '/v1/chat/completions'): Promise<Response> => fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'log-probe', ...headers },
      body: JSON.stringify(path === '/v1/messages' ? { model: 'gpt', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] } : { model: 'gpt', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] }),
    });
    expect((await chat({ authorization: `Bearer ${KEYS.LOG_TEAM_KEY}` })).status).toBe(200);
    // Taken by the lean front of the generate routes, which logs it as Fastify logs the rest.
    expect((await chat({ authorization: `Bearer ${KEYS.LOG_TEAM_KEY}`, 'x-request-id': 'lane-probe' })).status).toBe(200);
    expect((await chat({ authorization: `Bearer ${WRONG}` })).status).toBe(401);
    expect((await chat({ 'x-api-key': KEYS.LOG_TEAM_KEY }, '/v1/messages')).status).toBe(200);
    expect((await chat({ 'x-api-key': WRONG }, '/v1/messages')).status).toBe(401);
    expect((await fetch(`${url}/admin/deployments`, { headers: { authorization: `Bearer ${KEYS.LOG_ADMIN_KEY}`, 'x-request-id': 'log-probe' } })).status).toBe(200);
    expect((await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${WRONG}`, 'x-request-id': 'log-probe' } })).status).toBe(401);
    await server.stop();
    const output = server.output();
    // Logging was on: the requests are in the log, by id.
    expect(output.split('log-probe').length - 1).toBeGreaterThanOrEqual(6);
    for (const secret of [KEYS.LOG_TEAM_KEY, KEYS.LOG_ADMIN_KEY, WRONG]) expect(output).not.toContain(secret);
    const lane = output.split('\n').filter((l) => l.includes('"reqId":"lane-probe"')).map((l) => JSON.parse(l) as { msg: string; req?: { url: string } });
    expect(lane.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
    expect(lane[0]?.req?.url).toBe('/v1/chat/completions');
  });
});
