/** Placeholder: the nats sink is being written. */
import type { DestinationConfig } from '../config/types.js';
import type { Sink } from './sink.js';

export function openNatsSink(d: DestinationConfig, key: string): Sink {
  throw new Error(`${key}: destinations of type ${d.type} are not available yet`);
}
