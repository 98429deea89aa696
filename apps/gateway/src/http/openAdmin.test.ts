import { describe, expect, it } from 'vitest';
import { InferenceError } from '@inference/core';
import { checkOpenAdmin, isLoopbackHost } from './openAdmin.js';

describe('open admin guard', () => {
  it('knows loopback addresses from the rest', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '', '10.0.0.1', '192.168.1.2', 'example.com', '::ffff:10.0.0.1', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('refuses keyless admin on a reachable address unless allowed, naming the key', () => {
    let err: unknown;
    try {
      checkOpenAdmin('0.0.0.0', 0, false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InferenceError);
    expect((err as InferenceError).param).toBe('server.allowOpenAdmin');
    expect((err as InferenceError).message).toMatch(/without auth\.adminKeys on 0\.0\.0\.0.*--allow-open-admin/);
    expect(() => { checkOpenAdmin('0.0.0.0', 1, false); }).not.toThrow();
    expect(() => { checkOpenAdmin('0.0.0.0', 0, true); }).not.toThrow();
    expect(() => { checkOpenAdmin('127.0.0.1', 0, false); }).not.toThrow();
  });
});
