/**
 * Turns the daemon's events into log lines. Per-delivery lines are at info, as
 * the original logged each notification; outages are logged once when they start
 * and once when they end, never once per event.
 */
import type { Logger } from 'pino';
import type { DaemonEventBus } from './events.js';

export function logDaemonEvents(bus: DaemonEventBus, log: Logger): void {
  bus.on('delivery:succeeded', ({ event, status, durationMs, latencyMs }) => {
    if (!log.isLevelEnabled('info')) return;
    log.info(
      { event_id: event.eventId, attempt: event.attempts, status, duration_ms: Math.round(durationMs), latency_ms: Math.round(latencyMs) },
      `Webhook delivered: ${event.op} on table ${event.table}`,
    );
  });
  bus.on('delivery:failed', ({ event, status, error, retryInMs, counted }) => {
    log.warn(
      { event_id: event.eventId, attempt: event.attempts, status, error, retry_in_ms: Math.round(retryInMs), counted },
      `Webhook failed: ${event.op} on table ${event.table}, will retry`,
    );
  });
  bus.on('delivery:dead', ({ event, status, error }) => {
    log.error(
      { event_id: event.eventId, attempt: event.attempts, status, error },
      `Webhook gave up: ${event.op} on table ${event.table} moved to dead letters`,
    );
  });
  bus.on('endpoint:down', ({ consecutiveFailures, lastError }) => {
    log.error(
      { consecutive_failures: consecutiveFailures, error: lastError },
      'Webhook endpoint is down: delivery paused, probing with one event at a growing interval; retries are not consumed',
    );
  });
  bus.on('endpoint:up', ({ downForMs }) => {
    log.info({ down_for_ms: Math.round(downForMs) }, 'Webhook endpoint is back: delivery resumed');
  });
  bus.on('listen:connected', ({ reconnect }) => {
    if (reconnect) log.info('LISTEN connection re-established');
    else log.debug('LISTEN connection established');
  });
  bus.on('listen:lost', ({ error, retryInMs }) => {
    log.warn({ error, retry_in_ms: Math.round(retryInMs) }, 'LISTEN connection lost; polling continues meanwhile');
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
