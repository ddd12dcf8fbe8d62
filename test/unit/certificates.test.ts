import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { certificateProblem, databaseCertificateHint, readCaFile, withDefaultCas } from '../../src/util/certificates.js';

const dir = mkdtempSync(join(tmpdir(), 'adl-certs-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('certificateProblem', () => {
  it.each([
    [withCode('SELF_SIGNED_CERT_IN_CHAIN'), 'untrusted'],
    [withCode('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'untrusted'],
    [withCode('ERR_TLS_CERT_ALTNAME_INVALID'), 'hostname'],
    [withCode('CERT_HAS_EXPIRED'), 'expired'],
    // mysql2 replaces Node's code with its own: the message tells.
    [withCode('HANDSHAKE_SSL_ERROR', 'self-signed certificate in certificate chain'), 'untrusted'],
    [withCode('HANDSHAKE_SSL_ERROR', "Hostname/IP does not match certificate's altnames: IP: 10.0.0.5 is not in the cert's list"), 'hostname'],
    [withCode('HANDSHAKE_SSL_ERROR', 'certificate has expired'), 'expired'],
    [withCode('ECONNREFUSED'), undefined],
    ['not an error', undefined],
  ])('%s -> %s', (err, expected) => {
    expect(certificateProblem(err)).toBe(expected);
  });

  it('the hint names database.sslrootcert, or says that it is not set', () => {
    const err = withCode('SELF_SIGNED_CERT_IN_CHAIN');
    expect(databaseCertificateHint(err, { host: 'db', sslrootcert: '/etc/ca.pem' })).toContain('the CA in "/etc/ca.pem"');
    expect(databaseCertificateHint(err, { host: 'db' })).toContain('database.sslrootcert is not set');
    expect(databaseCertificateHint(withCode('ECONNRESET'), { host: 'db' })).toBeUndefined();
  });
});

describe('CA files', () => {
  it('reads a PEM file, and names the setting when the file is missing or holds no certificate', () => {
    expect(readCaFile(file('ca.pem', pem), 'webhook.ca_file')).toBe(pem);
    expect(() => readCaFile(join(dir, 'missing.pem'), 'webhook.ca_file')).toThrow(/cannot read webhook.ca_file/);
    expect(() => readCaFile(file('key.pem', '-----BEGIN PRIVATE KEY-----\n'), 'database.sslrootcert')).toThrow(
      /database.sslrootcert ".*key.pem" holds no PEM certificate/,
    );
  });

  it('a CA file adds to the bundled CAs and NODE_EXTRA_CA_CERTS, in that order', () => {
    const extra = file('extra.pem', pem.replace('MIIB', 'EXTRA'));
    const cas = withDefaultCas(file('own.pem', pem), 'webhook.ca_file', { NODE_EXTRA_CA_CERTS: extra });
    expect(cas).toEqual([...rootCertificates, pem.replace('MIIB', 'EXTRA'), pem]);
    expect(withDefaultCas(file('own.pem', pem), 'webhook.ca_file', {})).toHaveLength(rootCertificates.length + 1);
  });
});
