/**
 * Opens a destination's sink by its type: the one place that knows every transport.
 * A new destination type (a broker) is a new Sink implementation and a case here.
 */
import type { DestinationConfig } from '../config/types.js';
import type { Sink } from './sink.js';
import { WebhookClient, WebhookSink } from './webhook.js';

/** `key`: where the destination is in the config (`webhook`, `destinations[1]`), for its check's fixes. */
export function openSink(d: DestinationConfig, key: string, version: string): Sink {
  switch (d.type) {
    case 'webhook':
      return new WebhookSink(new WebhookClient(d.webhook, d.pool_size, version), d.format, d.batch !== undefined, { config: d.webhook, key });
  }
}
