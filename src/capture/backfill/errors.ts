/** What a backfill tells a person when it cannot go on: the same words on every database. */
import { AppError, describeError } from '../../util/errors.js';

type Table = { readonly schema: string; readonly name: string };
const shown = (t: Table) => `${t.schema}.${t.name}`;

export function existsError(schema: string, table: string, destination: string | undefined): AppError {
  return new AppError('BACKFILL_EXISTS', `an unfinished backfill of ${schema}.${table}${destination === undefined ? '' : ` for destination ${destination}`} is already recorded`, {
    hint: 'continue it with --resume, or cancel it with --cancel',
  });
}

/** `example`: a condition in the database's dialect. */
export function whereError(condition: string, table: Table, err: unknown, example: string): AppError {
  return new AppError('BACKFILL_WHERE', `--where ${JSON.stringify(condition)} is not a condition on ${shown(table)}: ${describeError(err)}`, {
    hint: `write an SQL boolean expression over the table's columns, e.g. --where ${JSON.stringify(example)}`,
    cause: err,
  });
}

/** Why `key` cannot be read by (--key), or undefined when it can. */
export function keyProblem(table: Table, key: readonly string[], facts: { missing: readonly string[]; unique: boolean; nullable: readonly string[] }): AppError | undefined {
  if (facts.missing.length > 0) return new AppError('BACKFILL_KEY', `--key: table ${shown(table)} has no column ${facts.missing.map((m) => JSON.stringify(m)).join(', ')}`);
  if (!facts.unique) {
    return new AppError('BACKFILL_KEY', `--key: (${key.join(', ')}) is not a unique key of ${shown(table)}: no unique index has exactly these columns`, {
      hint: 'give the columns of a primary key or unique index',
    });
  }
  if (facts.nullable.length > 0) {
    return new AppError('BACKFILL_KEY', `--key: column ${facts.nullable.join(', ')} of ${shown(table)} may be NULL, and rows with a NULL key would be skipped`, {
      hint: 'give NOT NULL columns',
    });
  }
  return undefined;
}

/** How long a backfill tries to take its lease again after a lost connection, before it gives up. */
export const LEASE_RETAKE_MS = 120_000;

/**
 * The lease could not be taken again on a new session: the server may still hold the
 * lost one (until it notices it is gone), so it is tried again (BACKFILL_LEASE_BUSY,
 * transient) for LEASE_RETAKE_MS; then another process runs the backfill (BACKFILL_LEASE_LOST).
 */
export function leaseRetakeError(id: string, sinceMs: number): AppError {
  return Date.now() - sinceMs < LEASE_RETAKE_MS
    ? new AppError('BACKFILL_LEASE_BUSY', `backfill ${id}: its lease is still held, probably by the lost connection's session; trying again`)
    : new AppError('BACKFILL_LEASE_LOST', `backfill ${id} is run by another process (its lease was taken while this one's connection was lost)`);
}
