// Real certificates for TLS tests, made at test time with the openssl command
// line: a CA per name, and leaf certificates it signs (P-256 keys, a day of
// validity, serverAuth + clientAuth, SANs for loopback by default). Each Pki
// lives in its own temporary directory; `destroy()` removes it.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export class Pki {
  private constructor(readonly dir: string) {}

  static create(): Pki {
    return new Pki(mkdtempSync(join(tmpdir(), 'pki-')));
  }

  /** A self-signed CA; returns its certificate file (the key stays beside it). */
  ca(name: string): string {
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ], this.dir);
    return join(this.dir, `${name}.pem`);
  }

  /** A leaf certificate signed by CA `ca` (made by ca()); SANs default to loopback. */
  leaf(ca: string, name: string, san = 'DNS:localhost,IP:127.0.0.1'): CertFiles {
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], this.dir);
    openssl([
      'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-days', '1',
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-out', `${name}.pem`, '-extfile', ext,
    ], this.dir);
    return { certFile: join(this.dir, `${name}.pem`), keyFile: join(this.dir, `${name}.key`) };
  }

  /** Copies a leaf's files over `to` (what a certificate rotation does). */
  static install(from: CertFiles, to: CertFiles): void {
    copyFileSync(from.keyFile, to.keyFile);
    copyFileSync(from.certFile, to.certFile);
  }

  static read(path: string): Buffer {
    return readFileSync(path);
  }

  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
