/** CA certificates named in the config (database.sslrootcert, webhook.ca_file), read at start. */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { AppError } from './errors.js';

const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';

/**
 * The PEM text of `file`, which `setting` names. Fails at start with a clear error when the file
 * cannot be read or holds no certificate: Node would silently ignore such a `ca` and every
 * connection would then fail verification with a message that does not point here.
 */
export function readCaFile(file: string, setting: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AppError('CA_FILE', `cannot read ${setting} ${JSON.stringify(file)}: ${(err as Error).message}`, {
      cause: err,
      hint: `${setting} must name a readable PEM file holding the CA certificate that signed the server's certificate`,
    });
  }
  if (!text.includes(PEM_CERTIFICATE)) {
    throw new AppError('CA_FILE', `${setting} ${JSON.stringify(file)} holds no PEM certificate (no "${PEM_CERTIFICATE}" line)`, {
      hint: `${setting} must hold the CA certificate in PEM form; convert a DER file with: openssl x509 -inform der -in FILE -out FILE.pem`,
    });
  }
  return text;
}

/**
 * What a TLS client trusts when a CA file is added: Node's bundled CAs, the file in
 * NODE_EXTRA_CA_CERTS, and `caFile`. Giving Node a `ca` option replaces both of the first, so
 * they are put back here: a CA file adds trust, it never removes any.
 */
export function withDefaultCas(caFile: string, setting: string, env: NodeJS.ProcessEnv = process.env): string[] {
  return [...rootCertificates, ...extraCas(env), readCaFile(caFile, setting)];
}

/** NODE_EXTRA_CA_CERTS, if set and readable (Node itself warns at start when it is not). */
function extraCas(env: NodeJS.ProcessEnv): string[] {
  const file = env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [readFileSync(file, 'utf8')];
  } catch {
    return [];
  }
}

/** Node's codes for a server certificate that no trusted CA signed. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
]);

type CertificateProblem = 'untrusted' | 'hostname' | 'expired';

/**
 * Which certificate problem a failed TLS connection had, from Node's error code, or from the
 * message when a driver replaced the code with its own (mysql2 sets HANDSHAKE_SSL_ERROR).
 */
export function certificateProblem(err: unknown): CertificateProblem | undefined {
  const { code, message } = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : '';
  if (typeof code === 'string' && UNTRUSTED.has(code)) return 'untrusted';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'hostname';
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return 'expired';
  if (/self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate/i.test(text)) return 'untrusted';
  if (/does not match certificate's altnames/i.test(text)) return 'hostname';
  if (/certificate (has expired|is not yet valid)/i.test(text)) return 'expired';
  return undefined;
}

/** What to do about a failed TLS verification of the database server, or undefined when `err` is not one. */
export function databaseCertificateHint(err: unknown, db: { host: string; sslrootcert?: string | undefined }): string | undefined {
  switch (certificateProblem(err)) {
    case 'untrusted': {
      const trusted = db.sslrootcert !== undefined ? `the CA in ${JSON.stringify(db.sslrootcert)}` : 'the system CAs (database.sslrootcert is not set)';
      return `the server's certificate is not signed by ${trusted}: set database.sslrootcert to the PEM file of the CA that signed it, or use sslmode "require" to encrypt without verifying`;
    }
    case 'hostname':
      return `the server's certificate is not issued for database.host ${JSON.stringify(db.host)}: connect by a name or address the certificate lists (its subjectAltName), or use sslmode "verify-ca" to verify the CA only`;
    case 'expired':
      return "the server's certificate is outside its validity dates: renew it on the server (or check this host's clock)";
    case undefined:
      return undefined;
  }
}
