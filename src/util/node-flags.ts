import { readFileSync } from 'node:fs';

/**
 * The Node.js flags on the first line of a script (`#!/usr/bin/env -S node FLAGS`): the
 * flags the CLI is deployed with. The benchmark and the tests start it with the same.
 */
export function shebangNodeFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node(?:\s+(.*))?$/.exec(first);
  return m?.[1] ? m[1].trim().split(/\s+/) : [];
}
