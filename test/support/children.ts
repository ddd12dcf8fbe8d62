/** Every spawned daemon still running, so a failed test never leaves one behind. */
import type { ChildProcess } from 'node:child_process';

export const spawned = new Set<ChildProcess>();

export function killAllSpawned(): void {
  for (const child of spawned) child.kill('SIGKILL');
  spawned.clear();
}
