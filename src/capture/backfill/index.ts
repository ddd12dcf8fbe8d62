/** Opens the backfills of the configured database; only its driver is loaded. */
import type { Config } from '../../config/types.js';
import type { BackfillStore } from './types.js';

export interface OpenedBackfills {
  readonly store: BackfillStore;
  /** Whether an error of this database passes (a batch is tried again) or fails the backfill. */
  readonly isTransient: (err: unknown) => boolean;
}

/** Connects and checks that this version's schema (the backfills table) is installed. */
export async function openBackfills(config: Config): Promise<OpenedBackfills> {
  const opened: OpenedBackfills =
    config.database.type === 'postgres'
      ? await import('../postgres/backfill.js').then((m) => ({ store: new m.PgBackfillStore(config), isTransient: m.isTransientPgError }))
      : await import('../mysql/backfill.js').then((m) => ({ store: new m.MySqlBackfillStore(config), isTransient: m.isTransientMySqlError }));
  try {
    await opened.store.checkInstalled();
  } catch (err) {
    await opened.store.close();
    throw err;
  }
  return opened;
}

export { runBackfill, type RunOutcome } from './runner.js';
export { Pacer, progressLine, progressOf, runRate, formatDuration, type Progress } from './pacing.js';
export type { BackfillListing, BackfillRecord, BackfillSpec, BackfillStore, BackfillTable } from './types.js';
