/** How the CLI reports errors: one readable message, a hint, never a stack trace. */
import { AppError, describeError } from '../util/errors.js';

export const EXIT = { ok: 0, runtime: 1, usage: 2, config: 2, forced: 130 } as const;

export function printError(err: unknown): void {
  if (err instanceof AppError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    return;
  }
  process.stderr.write(`error: ${describeError(err)}\n`);
}
