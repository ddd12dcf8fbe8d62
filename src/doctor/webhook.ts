/**
 * Every destination's check, through its sink (src/delivery/sinks.ts): for a
 * webhook, one HEAD request; for a broker, a connection and its login (and the
 * stream or exchange it needs); never an event. Named by the destination's type.
 */
import type { DestinationConfig } from '../config/types.js';
import { openSink } from '../delivery/sinks.js';
import type { Sink } from '../delivery/sink.js';
import { VERSION } from '../version.js';
import { check, type DoctorCheck } from './report.js';

/**
 * `key`: where the destination is in the config (`webhook`, `destinations[1]`), for
 * the fixes; `name`: the destination's name, shown when there are several.
 */
export async function checkDestination(d: DestinationConfig, key: string, name?: string): Promise<DoctorCheck> {
  const who = name === undefined ? '' : `destination ${name}: `;
  let sink: Sink;
  try {
    sink = openSink(d, key, VERSION);
  } catch (err) {
    return check(d.type, 'problem', who + (err instanceof Error ? err.message : String(err)), `edit ${key} as the message says`);
  }
  try {
    const r = await sink.check();
    return r.ok ? check(d.type, 'ok', who + r.detail) : check(d.type, 'problem', who + r.detail, r.fix);
  } finally {
    await sink.close().catch(() => undefined);
  }
}
