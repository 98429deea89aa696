// Paths of the TLS test fixture: a self-signed certificate for `localhost` and 127.0.0.1
// (valid ten years) and its key. Being self-signed, the certificate is its own CA: a
// client trusts the mock by passing MOCK_CA_PATH's contents as `ca`. Resolved relative to
// this module, which sits one level below the package root both as src/ and as dist/.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const MOCK_CERT_PATH: string = fileURLToPath(new URL('../fixtures/localhost-cert.pem', import.meta.url));
export const MOCK_KEY_PATH: string = fileURLToPath(new URL('../fixtures/localhost-key.pem', import.meta.url));
/** The CA to trust for the mock's TLS mode (the self-signed certificate itself). */
export const MOCK_CA_PATH: string = MOCK_CERT_PATH;

/** The PEM text of the CA, for `ca:` options of node:tls / node:https / node:http2 / undici. */
export function mockCaPem(): string {
  return readFileSync(MOCK_CA_PATH, 'utf8');
}
