/**
 * The effective configuration as the console shows it: every secret replaced. What
 * counts as a secret: the database password (and a URL's user information), webhook
 * signing secrets, every header value (headers carry tokens, and the config loader
 * hides them too), http.token, broker URLs' credentials, and any key whose name says
 * password, secret or token.
 */
import type { Config } from '../config/types.js';
import { redactText, redactUrl } from '../observability/redact.js';

export const REDACTED = '[redacted]';
const SENSITIVE_KEY = /password|secret|token/i;

export function redactConfig(config: Config): unknown {
  return walk(config, []);
}

function walk(value: unknown, path: readonly string[]): unknown {
  const key = path[path.length - 1] ?? '';
  if (path.length >= 2 && path[path.length - 2] === 'headers') return REDACTED;
  if (SENSITIVE_KEY.test(key) && value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0)) {
    return Array.isArray(value) ? value.map(() => REDACTED) : REDACTED;
  }
  if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, String(i)]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = walk(v, [...path, k]);
    return out;
  }
  if (typeof value === 'string') return redactText(redactUrl(value));
  return value;
}

/** Every literal secret of the config, for tests and for masking text a receiver wrote. */
export function configSecrets(config: Config): string[] {
  const out = new Set<string>();
  const add = (s: string | undefined) => {
    if (s !== undefined && s.length >= 6) out.add(s);
  };
  add(config.database.password);
  add(config.http.token);
  for (const d of config.destinations) {
    for (const s of d.webhook.secrets) {
      add(s);
      add(s.replace(/^whsec_/, ''));
    }
    for (const v of Object.values(d.webhook.headers)) add(v);
    try {
      const url = new URL(d.webhook.url);
      add(decodeURIComponent(url.password));
    } catch {
      // Not a URL: nothing to add.
    }
  }
  return [...out];
}
