/**
 * Turns the daemon's events into log lines. Per-delivery lines are at info, as
 * the original logged each notification; outages are logged once when they start
 * and once when they end, never once per event.
 */
import type { Logger } from 'pino';
import type { DaemonEventBus } from './events.js';

/** How often a destination's filter errors are logged at most. */
const FILTER_ERROR_LOG_MS = 10_000;

/** How a destination's transport is named in log lines: the original's "Webhook …" for webhooks. */
const TRANSPORT_LABEL: Record<string, { delivery: string; endpoint: string }> = {
  webhook: { delivery: 'Webhook', endpoint: 'Webhook endpoint' },
  nats: { delivery: 'NATS', endpoint: 'NATS server' },
  rabbitmq: { delivery: 'RabbitMQ', endpoint: 'RabbitMQ broker' },
  redis: { delivery: 'Redis', endpoint: 'Redis server' },
  mqtt: { delivery: 'MQTT', endpoint: 'MQTT broker' },
};

/** `types`: each destination's type, by name (a destination not in it is a webhook). */
export function logDaemonEvents(bus: DaemonEventBus, log: Logger, types: ReadonlyMap<string, string> = new Map()): void {
  const label = (destination: string) => TRANSPORT_LABEL[types.get(destination) ?? 'webhook'] ?? TRANSPORT_LABEL.webhook!;
  bus.on('delivery:succeeded', ({ event, status, durationMs, latencyMs }) => {
    if (!log.isLevelEnabled('info')) return;
    log.info(
      { destination: event.destination, event_id: event.eventId, attempt: event.attempts, status, duration_ms: Math.round(durationMs), latency_ms: Math.round(latencyMs) },
      `${label(event.destination).delivery} delivered: ${event.op} on table ${event.table}`,
    );
  });
  bus.on('delivery:failed', ({ event, status, error, retryInMs, counted }) => {
    log.warn(
      { destination: event.destination, event_id: event.eventId, attempt: event.attempts, status, error, retry_in_ms: Math.round(retryInMs), counted },
      `${label(event.destination).delivery} failed: ${event.op} on table ${event.table}, will retry`,
    );
  });
  bus.on('delivery:dead', ({ event, status, error }) => {
    log.error(
      { destination: event.destination, event_id: event.eventId, attempt: event.attempts, status, error },
      `${label(event.destination).delivery} gave up: ${event.op} on table ${event.table} moved to dead letters`,
    );
  });
  // A filter failing on rows is reported, at most once per destination every
  // FILTER_ERROR_LOG_MS with the count since, never once per event.
  const filterErrors = new Map<string, { at: number; suppressed: number }>();
  bus.on('delivery:filtered', ({ event, error }) => {
    if (error === undefined) return;
    const seen = filterErrors.get(event.destination);
    const now = Date.now();
    if (seen && now - seen.at < FILTER_ERROR_LOG_MS) {
      seen.suppressed++;
      return;
    }
    filterErrors.set(event.destination, { at: now, suppressed: 0 });
    log.warn(
      { destination: event.destination, event_id: event.eventId, error, ...(seen?.suppressed ? { more_since_last_report: seen.suppressed } : {}) },
      `Filter of destination ${event.destination} failed on a row of table ${event.table}: the event is not sent there (treated as not matching)`,
    );
  });
  bus.on('endpoint:down', ({ destination, consecutiveFailures, lastError }) => {
    log.error(
      { destination, consecutive_failures: consecutiveFailures, error: lastError },
      `${label(destination).endpoint} is down (destination ${destination}): its delivery paused, probing with one event at a growing interval; retries are not consumed`,
    );
  });
  bus.on('endpoint:up', ({ destination, downForMs }) => {
    log.info({ destination, down_for_ms: Math.round(downForMs) }, `${label(destination).endpoint} is back (destination ${destination}): delivery resumed`);
  });
  bus.on('listen:connected', ({ reconnect }) => {
    if (reconnect) log.info('LISTEN connection re-established');
    else log.debug('LISTEN connection established');
  });
  bus.on('listen:lost', ({ error, retryInMs }) => {
    log.warn({ error, retry_in_ms: Math.round(retryInMs) }, 'LISTEN connection lost; polling continues meanwhile');
  });
  bus.on('capture:connected', ({ slot }) => {
    log.info({ slot }, slot.startsWith('binlog ') ? 'Reading the binary log (log capture)' : 'Reading the replication slot (log capture)');
  });
  bus.on('capture:lost', ({ error, retryInMs }) => {
    log.warn({ error, retry_in_ms: Math.round(retryInMs) }, 'Replication connection lost; resuming from the last journaled position');
  });
  bus.on('journal:error', ({ operation, error, retryInMs }) => {
    log.error({ error, retry_in_ms: Math.round(retryInMs) }, `Database error during ${operation}; will retry`);
  });
  bus.on('journal:recovered', ({ operation }) => {
    log.info(`Database available again for ${operation}`);
  });
  bus.on('install:step', ({ description }) => log.info(`Installed: ${description}`));
  bus.on('install:warning', ({ message }) => log.warn(message));
}
