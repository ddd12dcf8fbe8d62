/**
 * Is the webhook endpoint reachable? One HEAD request, never an event: any HTTP
 * answer (even 404 or 405) means the receiver is there; a refused connection, a
 * timeout, a DNS or TLS failure is a problem. The webhook sink's check (doctor).
 */
import type { WebhookConfig } from '../config/types.js';
import { withDefaultCas } from '../util/certificates.js';
import { errorCode } from './policy.js';
import type { SinkCheck } from './sink.js';

/** The longest the check waits for the endpoint, whatever webhook.timeout says. */
export const WEBHOOK_CHECK_MAX_MS = 10_000;

/** `key`: where the destination is in the config (`webhook`, `destinations[1]`), for the fixes. */
export async function checkWebhookEndpoint(cfg: WebhookConfig, key: string): Promise<SinkCheck> {
  const url = new URL(cfg.url);
  // Credentials are not needed to see whether something answers, and never shown.
  url.username = '';
  url.password = '';
  url.hash = '';
  const shown = url.href;
  const timeoutMs = Math.min(WEBHOOK_CHECK_MAX_MS, Math.max(1, Math.round(cfg.timeout * 1000)));
  let ca: string[] | undefined;
  if (cfg.ca_file !== undefined) {
    try {
      ca = withDefaultCas(cfg.ca_file, `${key}.ca_file`);
    } catch (err) {
      return { ok: false, detail: oneLine(err), fix: `point ${key}.ca_file at a readable PEM file of CA certificates` };
    }
  }
  // The whole of undici, loaded only when a check runs (see http-pool.ts).
  const { Agent, request } = await import('undici');
  const agent = new Agent({
    connectTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    ...(ca ? { connect: { ca } } : {}),
  });
  try {
    const res = await request(url, {
      method: 'HEAD',
      dispatcher: agent,
      headers: { 'user-agent': 'app-db-listener doctor' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body.dump();
    return { ok: true, detail: `${shown} answered HTTP ${res.statusCode} to a HEAD request (no event was sent)` };
  } catch (err) {
    const code = errorCode(err);
    const why = code === 'TIMEOUT' || /timeout/i.test(code) ? `no answer within ${timeoutMs / 1000} s` : `${code}: ${oneLine(err)}`;
    return {
      ok: false,
      detail: `${shown} is not reachable (${why})`,
      fix: `check ${key}.url, that the receiver is running and that this host can reach it (firewall, DNS${url.protocol === 'https:' ? `, TLS: ${key}.ca_file` : ''}); try: curl -I ${shown}`,
    };
  } finally {
    await agent.close().catch(() => undefined);
  }
}

function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').trim();
}
