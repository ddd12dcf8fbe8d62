import { describe, expect, it } from 'vitest';
import { compileColumnReader, compileColumnSelector, type ColumnsSelection } from '../../src/delivery/columns.js';
import { AppError } from '../../src/util/errors.js';

// As PostgreSQL's jsonb::text writes a row: ", " and ": ", numbers as stored.
const ROW =
  '{"id": 9007199254740993, "status": "paid", "total": 12.50, "card_token": "tok_\\"secret\\"", ' +
  '"meta": {"a": [1, 2, {"b": "}]"}], "c": null}, "note": "Zoé 日本 😀 \\u00e9 \\\\"}';

function select(selection: ColumnsSelection | undefined, row: string | null, keys: readonly string[] = ['id']): string | null {
  return compileColumnSelector(selection, keys).select(row);
}

describe('compileColumnSelector', () => {
  it.each<[string, ColumnsSelection | undefined, readonly string[], string]>([
    [
      'include keeps the named columns, in the row order',
      { include: ['total', 'status'] },
      [],
      '{"status": "paid", "total": 12.50}',
    ],
    [
      'include keeps the key column without naming it',
      { include: ['total'] },
      ['id'],
      '{"id": 9007199254740993, "total": 12.50}',
    ],
    [
      'exclude drops the named columns',
      { exclude: ['card_token', 'meta'] },
      [],
      '{"id": 9007199254740993, "status": "paid", "total": 12.50, "note": "Zoé 日本 😀 \\u00e9 \\\\"}',
    ],
    [
      'exclude never drops a key column',
      { exclude: ['id', 'card_token', 'meta', 'note', 'status', 'total'] },
      ['id'],
      '{"id": 9007199254740993}',
    ],
    [
      'include of a composite key and one column',
      { include: ['meta'] },
      ['status', 'id'],
      '{"id": 9007199254740993, "status": "paid", "meta": {"a": [1, 2, {"b": "}]"}], "c": null}}',
    ],
    ['include of nothing but unknown names, without keys, is {}', { include: ['nope'] }, [], '{}'],
  ])('%s', (_name, selection, keys, expected) => {
    const out = select(selection, ROW, keys);
    expect(out).toBe(expected);
    expect(() => JSON.parse(out as string) as unknown).not.toThrow();
  });

  it('copies values byte for byte: bigint, numeric, nested JSON, escapes, unicode', () => {
    const out = select({ include: ['total', 'meta', 'card_token', 'note'] }, ROW) as string;
    expect(out).toContain('"id": 9007199254740993');
    expect(out).toContain('"total": 12.50');
    expect(out).toContain('"card_token": "tok_\\"secret\\""');
    expect(out).toContain('"meta": {"a": [1, 2, {"b": "}]"}], "c": null}');
    expect(out).toContain('"note": "Zoé 日本 😀 \\u00e9 \\\\"');
    // A parse round trip would have lost them: the check above is meaningful.
    expect(JSON.stringify(JSON.parse(out))).not.toContain('9007199254740993');
    expect(JSON.stringify(JSON.parse(out))).not.toContain('12.50');
  });

  it('keeps the separators of a compact row (json, row_to_json) and of a spaced one', () => {
    expect(select({ exclude: ['b'] }, '{"a":1,"b":2,"c":3}', [])).toBe('{"a":1,"c":3}');
    expect(select({ exclude: ['a'] }, '{"a":1,"b":2,"c":3}', [])).toBe('{"b":2,"c":3}');
    expect(select({ exclude: ['c'] }, '{"a":1,"b":2,"c":3}', [])).toBe('{"a":1,"b":2}');
    expect(select({ exclude: ['a'] }, ' {\n  "a" : 1 ,\n  "b" : [ ] \n} ', [])).toBe(' {\n  "b" : [ ] \n} ');
  });

  it('compares decoded names: quotes, backslashes, \\u escapes, unicode', () => {
    const row = '{"say \\"hi\\"": 1, "back\\\\slash": 2, "caf\\u00e9": 3, "日本": 4, "\\ud83d\\ude00": 5, "plain": 6}';
    const out = select({ include: ['say "hi"', 'back\\slash', 'café', '日本', '😀'] }, row, []);
    expect(out).toBe('{"say \\"hi\\"": 1, "back\\\\slash": 2, "caf\\u00e9": 3, "日本": 4, "\\ud83d\\ude00": 5}');
    // The escaped spelling of a name is not its name.
    expect(select({ include: ['caf\\u00e9'] }, row, [])).toBe('{}');
    expect(select({ exclude: ['café'] }, row, [])).not.toContain('caf');
  });

  it('an empty object stays as it is', () => {
    expect(select({ include: ['a'] }, '{}', ['id'])).toBe('{}');
    expect(select({ exclude: ['a'] }, ' { } ', [])).toBe(' { } ');
  });

  it('a null row stays null', () => {
    expect(select({ include: ['a'] }, null)).toBeNull();
    expect(select(undefined, null)).toBeNull();
  });

  it('returns the very input when nothing is dropped', () => {
    const row = '{"id": 1, "status": "x"}';
    expect(select({ include: ['status'] }, row)).toBe(row);
    expect(select({ exclude: ['other'] }, row)).toBe(row);
  });

  it('keepsAll: no selection, or only key columns excluded, skips the scan entirely', () => {
    expect(compileColumnSelector(undefined, ['id']).keepsAll).toBe(true);
    expect(compileColumnSelector({ exclude: ['id'] }, ['id']).keepsAll).toBe(true);
    expect(compileColumnSelector({ exclude: ['x'] }, ['id']).keepsAll).toBe(false);
    expect(compileColumnSelector({ include: ['id'] }, ['id']).keepsAll).toBe(false);
    // Not scanned, so not checked either: the text is passed on as it is.
    expect(compileColumnSelector(undefined, []).select('not json')).toBe('not json');
  });

  it('refuses include and exclude together', () => {
    expect(() => compileColumnSelector({ include: ['a'], exclude: ['b'] }, [])).toThrow(/include or exclude, not both/);
  });

  it.each([
    ['', 'expected "{"'],
    ['[1, 2]', 'expected "{"'],
    ['{"a": 1', 'expected "," or "}" after a member at offset 7'],
    ['{"a" 1}', 'expected ":"'],
    ['{a: 1}', 'expected a member name'],
    ['{"a": 1,}', 'expected a member name'],
    ['{"a": }', 'expected a value'],
    ['{"a": 01}', 'expected "," or "}"'],
    ['{"a": 1.}', 'digits expected after "."'],
    ['{"a": 1e}', 'digits expected in the exponent'],
    ['{"a": -}', 'invalid number'],
    ['{"a": tru}', 'expected a value'],
    ['{"a": "x}', 'unterminated string'],
    ['{"a": "\\x"}', 'invalid escape'],
    ['{"a": "\\u12g4"}', 'invalid \\u escape'],
    ['{"a": "tab\there"}', 'unescaped control character'],
    ['{"a": [1, 2}', 'expected "," or "]" in an array'],
    ['{"a": {"b": 1]}', 'expected "," or "}" in a nested object'],
    ['{"a": {"b" 1}}', 'expected ":" after a member name in a nested object'],
    ['{"a": [1,]}', 'expected a value'],
    ['{"a": 1} x', 'unexpected text after the object'],
    ['{"a": 1}{}', 'unexpected text after the object'],
  ])('invalid row %j: a clear error', (row, message) => {
    const selector = compileColumnSelector({ include: ['a'] }, []);
    let caught: unknown;
    try {
      selector.select(row);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('ROW_NOT_JSON_OBJECT');
    expect((caught as AppError).message).toContain(message);
  });

  it('the error message never repeats the row text (it may hold what exclude hides)', () => {
    expect(() => select({ exclude: ['card'] }, '{"card": "4111111111111111", oops}')).toThrow(/^(?!.*4111).*offset \d+$/);
  });

  it('walks deep nesting without using the call stack', () => {
    const depth = 100_000;
    const row = '{"deep": ' + '['.repeat(depth) + ']'.repeat(depth) + ', "id": 1}';
    expect(select({ include: ['id'] }, row, [])).toBe('{"id": 1}');
  });

  it('handles a 1 MB value', () => {
    const big = 'x'.repeat(1024 * 1024);
    const row = `{"id": 1, "blob": "${big}", "n": 9007199254740993}`;
    expect(select({ exclude: ['blob'] }, row)).toBe('{"id": 1, "n": 9007199254740993}');
    const kept = select({ include: ['blob'] }, row) as string;
    // Compared as a boolean so that a failure does not print a megabyte.
    expect(kept === `{"id": 1, "blob": "${big}"}`).toBe(true);
    expect(select({ exclude: ['x'] }, row) === row).toBe(true);
  });

  describe('against JSON.parse on random rows', () => {
    // A seeded generator (mulberry32): every run checks the same rows, and a
    // failure names the seed that reproduces it.
    function random(seed: number): () => number {
      let a = seed >>> 0;
      return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }
    const NAME_CHARS = ['a', 'b', 'z', '_', '1', ' ', '"', '\\', '/', 'é', '日', '😀', '\n', '\u0001', ',', ':', '{', '}'];
    const SPACES = ['', ' ', '\n', '\t ', '\r\n'];

    function generate(next: () => number) {
      const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T;
      const text = (): string => Array.from({ length: Math.floor(next() * 6) }, () => pick(NAME_CHARS)).join('');
      // Values without numbers beyond 2^53, so that JSON.parse is a fair reference.
      const value = (depth: number): unknown => {
        const kind = Math.floor(next() * (depth > 2 ? 5 : 7));
        if (kind === 0) return Math.floor(next() * 2_000_000) - 1_000_000;
        if (kind === 1) return Math.round(next() * 1e6) / 100;
        if (kind === 2) return text();
        if (kind === 3) return next() < 0.5;
        if (kind === 4) return null;
        if (kind === 5) return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1));
        return Object.fromEntries(Array.from({ length: Math.floor(next() * 4) }, () => [text(), value(depth + 1)]));
      };
      // Spaced JSON with random white space between every token.
      const write = (v: unknown): string => {
        const ws = () => pick(SPACES);
        if (Array.isArray(v)) return '[' + ws() + v.map((x) => write(x)).join(ws() + ',' + ws()) + ws() + ']';
        if (v !== null && typeof v === 'object') {
          const members = Object.entries(v).map(([k, x]) => JSON.stringify(k) + ws() + ':' + ws() + write(x));
          return '{' + ws() + members.join(ws() + ',' + ws()) + ws() + '}';
        }
        // \u escapes for some characters, as some serialisers write them.
        const s = JSON.stringify(v);
        return next() < 0.3 ? s.replace(/[^\x20-\x7e]/gu, (c) => c.split('').map((u) => '\\u' + u.charCodeAt(0).toString(16).padStart(4, '0')).join('')) : s;
      };
      const names = [...new Set(Array.from({ length: Math.floor(next() * 12) }, () => text()))];
      const entries = names.map((n) => [n, value(0)] as const);
      const members = entries.map(([n, v]) => write(n) + pick(SPACES) + ':' + pick(SPACES) + write(v));
      const row = pick(SPACES) + '{' + pick(SPACES) + members.join(pick(SPACES) + ',' + pick(SPACES)) + pick(SPACES) + '}' + pick(SPACES);
      const chosen = names.filter(() => next() < 0.4);
      const keys = names.filter(() => next() < 0.15);
      const mode = next() < 0.5 ? 'include' : 'exclude';
      return { row, names, entries, members, chosen, keys, mode };
    }

    it('keeps exactly the selected keys with their values and texts, in order (2,000 rows)', () => {
      for (let seed = 1; seed <= 2000; seed++) {
        const { row, entries, members, chosen, keys, mode } = generate(random(seed));
        const selection: ColumnsSelection = mode === 'include' ? { include: chosen } : { exclude: chosen };
        const keep = (n: string) => keys.includes(n) || (mode === 'include' ? chosen.includes(n) : !chosen.includes(n));
        const out = compileColumnSelector(selection, keys).select(row) as string;

        const expected = entries.filter(([n]) => keep(n));
        const context = `seed ${seed}: ${JSON.stringify(row)}`;
        expect(Object.entries(JSON.parse(out) as object), context).toEqual(
          Object.entries(Object.fromEntries(expected.map(([n, v]) => [n, v]))),
        );
        // Each kept member's text is there as written, in the row's order, and nothing else.
        let at = 0;
        members.forEach((m, i) => {
          if (!keep((entries[i] as readonly [string, unknown])[0])) return;
          const found = out.indexOf(m, at);
          expect(found, context).toBeGreaterThanOrEqual(at);
          at = found + m.length;
        });
        if (expected.length === entries.length) expect(out, context).toBe(row);
      }
    });

    it('reads the same value texts JSON.parse sees', () => {
      for (let seed = 1; seed <= 500; seed++) {
        const { row, names, entries } = generate(random(seed));
        const wanted = [...names.slice(0, 3), 'missing \u0000'];
        const values = compileColumnReader(wanted)(row);
        wanted.forEach((n, i) => {
          const entry = entries.find(([name]) => name === n);
          if (entry === undefined) expect(values[i]).toBeUndefined();
          else expect(JSON.parse(values[i] as string), `seed ${seed}`).toEqual(entry[1]);
        });
      }
    });
  });
});

describe('compileColumnReader', () => {
  it('reads raw value texts by decoded name; a missing column is undefined', () => {
    const read = compileColumnReader(['id', 'total', 'note', 'missing', 'id']);
    expect(read(ROW)).toEqual(['9007199254740993', '12.50', '"Zoé 日本 😀 \\u00e9 \\\\"', undefined, '9007199254740993']);
  });
});
