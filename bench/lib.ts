/** Helpers shared by the benchmark scripts: flags, the receiver process, memory readings. */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** `--name value` from the command line, or `dflt`. */
export function flag(name: string, dflt: string): string {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

export type ReceiverMessage = { type: string; port?: number; count?: number; received?: Array<[number, number]> };

/** Sends `type` to the receiver process and resolves with its answer of the same type. */
export function ask(child: ChildProcess, type: string): Promise<ReceiverMessage> {
  return new Promise((resolve) => {
    const on = (m: ReceiverMessage) => {
      if (m.type === type) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
    child.send({ type });
  });
}

/** Peak resident memory of a running process, in MB (Linux). */
export function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
