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
  if (config.database.type === 'postgres') {
    const m = await import('../postgres/backfill.js');
    const store = new m.PgBackfillStore(config);
    await store.checkInstalled().catch(async (err: unknown) => {
      await store.close();
      throw err;
    });
    return { store, isTransient: m.isTransientPgError };
  }
  const m = await import('../mysql/backfill.js');
  const store = new m.MySqlBackfillStore(config);
  await store.checkInstalled().catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  return { store, isTransient: m.isTransientMySqlError };
}

export { runBackfill, type RunOutcome } from './runner.js';
export { Pacer, progressLine, progressOf, runRate, formatDuration, type Progress } from './pacing.js';
export type { BackfillListing, BackfillRecord, BackfillSpec, BackfillStore, BackfillTable } from './types.js';
