/**
 * Notes when each table last had an event delivered, for `status`. A best-effort
 * write apart from the outcomes: at most one per table per interval, one at a
 * time, and a failure (a missing privilege, a lost connection) costs only this
 * figure, never an outcome.
 */
import type { Completion } from './types.js';

export type TouchLastDelivery = (schema: string, table: string) => Promise<void>;

export class LastDeliveryRecorder {
  private readonly touchedAt = new Map<string, number>();
  private writing = false;

  constructor(
    private readonly touch: TouchLastDelivery,
    private readonly intervalMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Call after a batch of outcomes was written. */
  note(batch: readonly Completion[]): void {
    if (this.writing) return;
    const due: Array<[string, string]> = [];
    const seen = new Set<string>();
    for (const c of batch) {
      if (c.kind !== 'delivered' || c.schema === undefined || c.table === undefined) continue;
      const key = `${c.schema}\u0000${c.table}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (this.now() - (this.touchedAt.get(key) ?? -Infinity) < this.intervalMs) continue;
      this.touchedAt.set(key, this.now());
      due.push([c.schema, c.table]);
    }
    if (due.length === 0) return;
    this.writing = true;
    void (async () => {
      for (const [schema, table] of due) await this.touch(schema, table).catch(() => undefined);
    })().finally(() => {
      this.writing = false;
    });
  }
}
