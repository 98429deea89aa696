// TLS material from files (PEM): a certificate chain, its key and an optional CA
// bundle, loaded and checked together (a key that does not match its
// certificate, or a file that is not PEM, is an error naming the config key),
// and reloaded without a restart: on reload() (SIGHUP) and when a file in their
// directories changes (a watch, debounced, which also catches the symlink swap
// of a mounted Kubernetes secret). A reload that fails keeps the material in
// use and reports why; listeners see only material that loaded. Errors and
// reports name files and OpenSSL's reason, never file contents.

import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { invalid, join } from '@inference/core';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle: verifies the peer's certificate (client certificates on a server). */
  readonly caFile?: string | undefined;
}

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

/** Milliseconds a burst of file events settles before a reload. */
const SETTLE_MS = 200;

/** Reads one PEM file; an error names the config key and the file, never the contents. */
export function readTlsFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : 'unreadable';
    invalid(key, `cannot read ${path} (${code})`);
  }
}

/** Reads and checks the files; an error names the config key (`where.certFile`, ...). */
export function loadTlsFiles(files: TlsFiles, where: string, caKey = 'caFile'): TlsMaterial {
  const cert = readTlsFile(files.certFile, join(where, 'certFile'));
  const key = readTlsFile(files.keyFile, join(where, 'keyFile'));
  const ca = files.caFile === undefined ? undefined : readTlsFile(files.caFile, join(where, caKey));
  try {
    createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }) });
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0] ?? '' : 'unknown';
    invalid(where, `the certificate, key${ca === undefined ? '' : ' and CA'} do not load together: ${reason}`);
  }
  return { cert, key, ...(ca === undefined ? {} : { ca }) };
}

function same(a: TlsMaterial, b: TlsMaterial): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca === undefined ? b.ca === undefined : b.ca !== undefined && a.ca.equals(b.ca));
}

/** The material in use, reloaded on demand and on file changes. */
export class TlsReloader {
  private material: TlsMaterial;
  private readonly listeners: ((m: TlsMaterial) => void)[] = [];
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly files: TlsFiles,
    /** The config key the files come from (errors and reports name it). */
    private readonly where: string,
    private readonly log: (message: string) => void,
    private readonly caKey = 'caFile',
  ) {
    this.material = loadTlsFiles(files, where, caKey);
  }

  get current(): TlsMaterial {
    return this.material;
  }

  /** Called with new material after each reload that changed it. */
  onChange(listener: (m: TlsMaterial) => void): void {
    this.listeners.push(listener);
  }

  /** Re-reads the files; true when new material is in use. A failure keeps the old one. */
  reload(): boolean {
    let next: TlsMaterial;
    try {
      next = loadTlsFiles(this.files, this.where, this.caKey);
    } catch (e) {
      this.log(`${this.where}: reload failed, the previous certificate stays in use: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
    if (same(next, this.material)) return false;
    this.material = next;
    for (const l of this.listeners) l(next);
    this.log(`${this.where}: certificate reloaded`);
    return true;
  }

  /** Watches the files' directories; a change reloads after the events settle. */
  watch(): void {
    const paths = [this.files.certFile, this.files.keyFile, ...(this.files.caFile === undefined ? [] : [this.files.caFile])].map((p) => resolve(p));
    for (const dir of new Set(paths.map((p) => dirname(p)))) {
      try {
        const w = watch(dir, { persistent: false }, () => { this.schedule(); });
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch (e) {
        this.log(`${this.where}: cannot watch ${dir} (${e instanceof Error ? e.message : String(e)}); reload with SIGHUP`);
      }
    }
  }

  private schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reload();
    }, SETTLE_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
  }
}
