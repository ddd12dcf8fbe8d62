/**
 * Counting what a receiver got against what the database committed: lost events,
 * duplicates and per-row order violations. Used by the ordering and fault tests.
 */
import type { ReceivedRequest } from './receiver.js';

export interface Tally {
  readonly delivered: number;
  readonly distinct: number;
  readonly duplicates: number;
  readonly lost: string[];
  /** Rows whose first deliveries did not arrive in commit order. */
  readonly orderViolations: string[];
}

/**
 * `expected` maps a row key to the values of a per-row counter column in commit
 * order (e.g. 1, 2, 3 for three updates). `pick` extracts key and value from a body.
 */
export function tally(
  events: readonly ReceivedRequest[],
  expected: ReadonlyMap<string, readonly number[]>,
  pick: (body: Record<string, unknown>) => { key: string; value: number } | undefined,
): Tally {
  const seenIds = new Set<string>();
  const perKey = new Map<string, number[]>();
  let duplicates = 0;
  let delivered = 0;
  for (const e of events) {
    const body = JSON.parse(e.body) as Record<string, unknown>;
    const p = pick(body);
    if (!p) continue;
    delivered++;
    const id = String(body.id);
    if (seenIds.has(id)) {
      duplicates++;
      continue;
    }
    seenIds.add(id);
    const list = perKey.get(p.key) ?? [];
    list.push(p.value);
    perKey.set(p.key, list);
  }
  const lost: string[] = [];
  const orderViolations: string[] = [];
  for (const [key, values] of expected) {
    const got = perKey.get(key) ?? [];
    const missing = values.filter((v) => !got.includes(v));
    if (missing.length > 0) lost.push(`${key}: ${missing.length} missing (${missing.slice(0, 5).join(', ')}…)`);
    for (let i = 1; i < got.length; i++) {
      if (got[i]! < got[i - 1]!) {
        orderViolations.push(`${key}: ${got[i - 1]} before ${got[i]}`);
        break;
      }
    }
  }
  return { delivered, distinct: seenIds.size, duplicates, lost, orderViolations };
}
