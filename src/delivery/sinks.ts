/**
 * Opens a destination's sink by its type: the one place that knows every transport.
 * A new destination type (a broker; Kafka would be one more) is a new Sink
 * implementation in its own file and a case here.
 *
 * A broker's client library is loaded only when a destination of its type is
 * configured, at its first use (LazySink): a webhook-only daemon never loads one.
 */
import type { DestinationConfig } from '../config/types.js';
import type { Sink, SinkCheck, SinkMessage, SinkResult } from './sink.js';
import { WebhookClient, WebhookSink } from './webhook.js';
import { describeError } from '../util/errors.js';

/** `key`: where the destination is in the config (`webhook`, `destinations[1]`), for its check's fixes. */
export function openSink(
  d: DestinationConfig,
  key: string,
  version: string,
  opts: { readonly keepResponseBytes?: number; readonly keepOkResponse?: () => boolean } = {},
): Sink {
  switch (d.type) {
    case 'webhook':
      return new WebhookSink(new WebhookClient(d.webhook, d.pool_size, version, opts), d.format, d.batch !== undefined, { config: d.webhook, key });
    case 'nats':
      return new LazySink(describeBroker(d), async () => (await import('./nats.js')).openNatsSink(d, key));
    case 'rabbitmq':
      return new LazySink(describeBroker(d), async () => (await import('./rabbitmq.js')).openRabbitMqSink(d, key));
    case 'redis':
      return new LazySink(describeBroker(d), async () => (await import('./redis.js')).openRedisSink(d, key));
    case 'mqtt':
      return new LazySink(describeBroker(d), async () => (await import('./mqtt.js')).openMqttSink(d, key));
  }
}

/** A broker URL as it may be logged: no user name, no password, no query (tokens). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

function describeBroker(d: DestinationConfig): string {
  const where = d.nats?.subject ?? d.rabbitmq?.exchange ?? d.redis?.stream ?? d.mqtt?.topic ?? '';
  return `${d.type} ${safeUrl(d.webhook.url)} ${where}`.trim();
}

/** A sink whose implementation (and its client library) is loaded at first use. */
export class LazySink implements Sink {
  private loading: Promise<Sink> | undefined;
  private closed = false;

  constructor(
    readonly description: string,
    private readonly load: () => Promise<Sink>,
  ) {}

  private sink(): Promise<Sink> {
    // A failed load (a client library missing from the installation) is tried again next time.
    this.loading ??= this.load().catch((err: unknown) => {
      this.loading = undefined;
      throw err;
    });
    return this.loading;
  }

  async send(messages: readonly SinkMessage[], signal?: AbortSignal): Promise<SinkResult[]> {
    if (this.closed) {
      const r: SinkResult = { kind: 'retry', error: 'CLOSED: the destination is shutting down', endpointFailure: false, durationMs: 0 };
      return messages.map(() => r);
    }
    let sink: Sink;
    try {
      sink = await this.sink();
    } catch (err) {
      const r: SinkResult = { kind: 'retry', error: this.loadProblem(err).detail, endpointFailure: true, durationMs: 0 };
      return messages.map(() => r);
    }
    return sink.send(messages, signal);
  }

  async check(): Promise<SinkCheck> {
    if (this.closed) return { ok: false, detail: 'the destination was closed', fix: 'check it from a new process (doctor)' };
    try {
      return await (await this.sink()).check();
    } catch (err) {
      return { ok: false, ...this.loadProblem(err) };
    }
  }

  /** A client library missing from the installation, or a destination its sink cannot open. */
  private loadProblem(err: unknown): { detail: string; fix: string } {
    const type = this.description.split(' ')[0] ?? 'broker';
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      return { detail: `cannot load the ${type} client library: ${describeError(err)}`, fix: 'reinstall app-db-listener with its dependencies (npm ci)' };
    }
    return { detail: `cannot open the ${type} destination: ${describeError(err)}`, fix: 'correct the destination as the message says' };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const loading = this.loading;
    if (loading) await (await loading.catch(() => undefined))?.close();
  }
}
