/**
 * A seeded fuzzer over a valid config: delete keys, swap types, random text
 * (unicode, control characters, `${…}`), random and huge numbers, deep nesting,
 * huge values, duplicated keys, broken indentation, alias bombs. Whatever comes
 * out, `parseConfig` returns a Config or throws a ConfigError, never anything
 * else; a few dozen of the rejected ones through the built CLI exit 2 with an
 * `error:` line and no stack trace.
 *
 * The seed is printed at the start and in every failure: ADL_FUZZ_SEED=<n>
 * replays a run.
 */
import { randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { spawnCli, writeTempConfig } from '../support/daemon.js';
import { STACK_FRAME } from '../support/fault.js';
import { waitUntil } from '../support/wait.js';

const SEED = Number(process.env.ADL_FUZZ_SEED ?? randomInt(1, 2 ** 31));
const ROUNDS = 600;
const CLI_CASES = 24;
const PASSWORD = 'fuzz-Pa55-sentinel';

/** mulberry32: small, fast, good enough to pick mutations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Tree = Record<string, unknown>;

const VALID: Tree = {
  database: {
    type: 'postgres',
    host: '127.0.0.1',
    port: 5432,
    user: 'postgres',
    password: PASSWORD,
    database: 'adl_fuzz_none',
    tables: ['orders', 'billing.invoices'],
    sslmode: 'disable',
  },
  listener: { modes: 'insert,update', poll_interval: 0.5, schema: 'adl_fuzz', auto_install: true, retention: 0 },
  webhook: {
    url: 'http://127.0.0.1:9/hook',
    timeout: 5,
    retry_count: 3,
    retry_delay: 0.5,
    retry_max_delay: 10,
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    headers: { 'X-Tenant': '${FUZZ_TENANT}' },
  },
  logging: { level: 'info', format: 'text' },
  worker: { pool_size: 4, shutdown_timeout: 5 },
  http: { listen: 'off' },
};

const ENV = { FUZZ_TENANT: 'acme', FUZZ_PORT: '5433', FUZZ_EMPTY: '' };

class Mutator {
  constructor(private readonly random: () => number) {}

  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  text(): string {
    const pieces = [
      '',
      ' ',
      'é',
      'Zoé',
      '日本語',
      '🦄',
      '\u0000',
      '\u202e',
      '\t',
      '\n',
      '"',
      "'",
      '\\',
      ':',
      '- ',
      '#',
      '${FUZZ_TENANT}',
      '${NOT_SET_ANYWHERE}',
      '${',
      '${FUZZ_EMPTY:-dflt}',
      '$${x}',
      'http://',
      'https://user:pw@h/x',
      'postgres://u:p@h:0/db',
      'mysql://',
      'whsec_',
      '%ZZ',
      'null',
      '~',
      'true',
      'off',
      '0x1F',
      '1e400',
      'NaN',
      '-0',
      '&a',
      '*a',
      '!!str',
      '[',
      '{',
    ];
    let out = '';
    for (let i = this.int(5); i >= 0; i--) out += this.pick(pieces);
    return out;
  }

  number(): unknown {
    return this.pick([0, -1, 1, 2.5, -2.5, 65535, 65536, 1e21, Number.MAX_SAFE_INTEGER + 2, 1e-9, '1e400', '-0', '0x10', '.5', '5.', '1_000']);
  }

  /** A value of any shape, some of them huge or deep. */
  value(): unknown {
    switch (this.int(10)) {
      case 0:
        return this.text();
      case 1:
        return this.number();
      case 2:
        return this.pick([true, false, null]);
      case 3:
        return [this.text(), this.number()];
      case 4:
        return { [this.text() || 'k']: this.text() };
      case 5: {
        let deep: unknown = this.text();
        for (let i = 0; i < 40 + this.int(100); i++) deep = this.int(2) === 0 ? [deep] : { d: deep };
        return deep;
      }
      case 6:
        return 'x'.repeat(20_000 + this.int(80_000));
      case 7:
        return Array.from({ length: 200 + this.int(1500) }, (_, i) => `t${i}`);
      case 8:
        return {};
      default:
        return [];
    }
  }

  /** A structural mutation of the tree (which it edits in place). */
  mutateTree(tree: Tree): void {
    const sections = Object.keys(tree);
    const section = this.pick(sections.length > 0 ? sections : ['database']);
    const node = tree[section];
    switch (this.int(7)) {
      case 0: // delete a section
        delete tree[section];
        return;
      case 1: // the section becomes something else
        tree[section] = this.value();
        return;
      case 2: // an unknown section or key
        if (this.int(2) === 0) tree[this.text() || 'extra'] = this.value();
        else if (isTree(node)) node[this.text() || 'extra'] = this.value();
        return;
      default: {
        if (!isTree(node)) return;
        const keys = Object.keys(node);
        if (keys.length === 0) return;
        const key = this.pick(keys);
        if (this.int(4) === 0) delete node[key];
        else node[key] = this.value();
      }
    }
  }

  /** A mutation of the YAML text. */
  mutateText(text: string): string {
    const lines = text.split('\n');
    const at = this.int(lines.length);
    switch (this.int(9)) {
      case 0: // a duplicated key
        lines.splice(at, 0, lines[at] ?? '');
        break;
      case 1: // broken indentation
        lines[at] = ' '.repeat(this.int(5)) + (lines[at] ?? '').trimStart();
        break;
      case 2: // a tab
        lines[at] = '\t' + (lines[at] ?? '');
        break;
      case 3: // random characters in a line
        lines[at] = (lines[at] ?? '') + this.pick([':', ': :', ' - x', ' [', ' {', ' &a', ' *b', ' !!binary', ' |', ' >', ' #', ' "', " '", '\u0000']);
        break;
      case 4: // truncated file
        return text.slice(0, this.int(text.length));
      case 5: // an alias bomb
        return 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' +
          Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`).join('\n') +
          '\n' + text;
      case 6: // a line removed
        lines.splice(at, 1);
        break;
      case 7: // a byte order mark or CRLF line ends
        return this.int(2) === 0 ? '\uFEFF' + text : text.replaceAll('\n', '\r\n');
      default: // a merge key
        lines.splice(at, 0, '<<: *nowhere');
    }
    return lines.join('\n');
  }

  /** One fuzzed config text, and whether only values (not the password line) were touched. */
  config(): { text: string; textLevel: boolean } {
    const tree = structuredClone(VALID);
    const n = 1 + this.int(3);
    for (let i = 0; i < n; i++) this.mutateTree(tree);
    let text = stringify(tree, { aliasDuplicateObjects: false, lineWidth: 0 });
    const textLevel = this.int(3) === 0;
    if (textLevel) text = this.mutateText(text);
    return { text, textLevel };
  }
}

function isTree(value: unknown): value is Tree {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

type Outcome = { kind: 'config' } | { kind: 'config-error'; error: ConfigError } | { kind: 'other'; error: unknown };

function outcomeOf(text: string): Outcome {
  try {
    const { config } = parseConfig(text, ENV, 'fuzz.yaml');
    if (!Object.isFrozen(config) || config.database.tables.length === 0) return { kind: 'other', error: new Error('config not frozen or without tables') };
    return { kind: 'config' };
  } catch (error) {
    return error instanceof ConfigError ? { kind: 'config-error', error } : { kind: 'other', error };
  }
}

const replay = `ADL_FUZZ_SEED=${SEED}`;

describe(`config fuzzing (seed ${SEED}; replay with ${replay})`, () => {
  console.log(`config fuzz seed: ${SEED} (${replay})`);

  it('the valid config is valid (the fuzzer starts from something that works)', () => {
    expect(outcomeOf(stringify(VALID)).kind).toBe('config');
    expect(isDeepStrictEqual(structuredClone(VALID), VALID)).toBe(true);
  });

  it(`${ROUNDS} mutations: parseConfig returns a Config or throws a ConfigError, never anything else`, () => {
    const mutator = new Mutator(prng(SEED));
    const counts = { config: 0, 'config-error': 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const { text, textLevel } = mutator.config();
      const outcome = outcomeOf(text);
      if (outcome.kind === 'other') {
        const err = outcome.error;
        throw new Error(
          `${replay}, round ${round}: parseConfig threw ${err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err)}\n--- config:\n${text.slice(0, 2000)}`,
        );
      }
      counts[outcome.kind]++;
      if (outcome.kind === 'config-error') {
        const { error } = outcome;
        expect(error.issues.length, `${replay}, round ${round}`).toBeGreaterThan(0);
        expect(error.message, `${replay}, round ${round}`).not.toMatch(STACK_FRAME);
        if (!textLevel) expect(error.message, `${replay}, round ${round}: the password leaked`).not.toContain(PASSWORD);
      }
    }
    // Both outcomes happen: the fuzzer neither only breaks nor only keeps configs.
    expect(counts['config-error'], replay).toBeGreaterThan(ROUNDS / 4);
    expect(counts.config, replay).toBeGreaterThan(0);
  });

  it(`${CLI_CASES} rejected mutations through the CLI: exit 2, an error line, no stack trace (over 10 s: one process each)`, async () => {
    const mutator = new Mutator(prng(SEED ^ 0x5eed));
    const rejected: string[] = [];
    while (rejected.length < CLI_CASES) {
      const { text } = mutator.config();
      if (outcomeOf(text).kind === 'config-error') rejected.push(text);
    }
    const env: NodeJS.ProcessEnv = { ...process.env, ...ENV };
    delete env.NOT_SET_ANYWHERE;
    // Two at a time: each is a Node process start on a 2-core machine.
    for (let i = 0; i < rejected.length; i += 2) {
      await Promise.all(
        rejected.slice(i, i + 2).map(async (text, j) => {
          const configPath = writeTempConfig(text);
          const d = spawnCli(['run', '--config', configPath], configPath, { env });
          await waitUntil(() => d.child.exitCode !== null || d.child.signalCode !== null, 20_000, () => `the CLI to exit (${replay}, case ${i + j}): ${d.output()}`);
          await d.closed;
          const why = `${replay}, CLI case ${i + j}, config ${configPath}:\n${d.output()}`;
          expect(d.child.exitCode, why).toBe(2);
          expect(d.stderr(), why).toMatch(/^error: /);
          expect(d.output(), why).not.toMatch(STACK_FRAME);
          expect(d.stdout(), why).toBe('');
        }),
      );
    }
  });
});
