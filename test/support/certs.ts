/**
 * A throw-away public key infrastructure for TLS tests, made with the openssl binary in a
 * temporary directory: a test CA, a server certificate it signs for `localhost` and
 * `127.0.0.1`, and a second, unrelated CA that trusts nothing of ours.
 *
 *   const pki = makeTestPki();            // undefined when openssl is missing
 *   https.createServer({ key: pki.serverKey, cert: pki.serverCert }, …);
 *   // config: sslrootcert / ca_file = pki.caFile (trusted) or pki.otherCaFile (not)
 *   pki.cleanup();
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasOpenssl } from './tls.js';

export interface TestPki {
  readonly dir: string;
  /** The CA that signed the server certificate (PEM file and text). */
  readonly caFile: string;
  readonly caCert: string;
  /** A CA that signed nothing here: trusting only it must fail verification. */
  readonly otherCaFile: string;
  /** The server certificate (SAN DNS:localhost, IP:127.0.0.1) and its key, files and text. */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Removes `dir`. */
  cleanup(): void;
}

/** The names the server certificate is issued for. */
export const SERVER_NAMES = ['localhost', '127.0.0.1'] as const;

export function makeTestPki(): TestPki | undefined {
  if (!hasOpenssl()) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'adl-pki-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  // EC keys: generated in milliseconds, unlike RSA.
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  for (const ca of ['ca', 'other-ca']) {
    openssl(
      'req', '-x509', ...newKey, '-days', '2', '-subj', `/CN=app-db-listener test ${ca}`,
      '-keyout', file(`${ca}.key`), '-out', file(`${ca}.pem`),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    );
  }

  writeFileSync(
    file('server.ext'),
    [
      `subjectAltName = DNS:${SERVER_NAMES[0]}, IP:${SERVER_NAMES[1]}`,
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
    ].join('\n') + '\n',
  );
  openssl('req', ...newKey, '-subj', '/CN=localhost', '-keyout', file('server.key'), '-out', file('server.csr'));
  openssl(
    'x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', file('server.ext'), '-out', file('server.pem'),
  );

  return {
    dir,
    caFile: file('ca.pem'),
    caCert: readFileSync(file('ca.pem'), 'utf8'),
    otherCaFile: file('other-ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    serverCert: readFileSync(file('server.pem'), 'utf8'),
    serverKey: readFileSync(file('server.key'), 'utf8'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
