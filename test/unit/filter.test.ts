import { describe, expect, it } from 'vitest';
import {
  compileFilter,
  FILTER_VARIABLES,
  filterVariables,
  FilterVariables,
  MAX_ROW_DEPTH,
  parseRow,
  type FilterInput,
  type FilterResult,
} from '../../src/dispatch/filter.js';
import { AppError } from '../../src/util/errors.js';

// As PostgreSQL's row_to_json writes rows: numbers as stored, a jsonb column nested.
const NEW =
  '{"id": 9007199254740993, "status": "paid", "total": 12.50, "huge": 123456789012345678901234.5, ' +
  '"email": "zoé@example.com", "note": "Zoé 日本 😀 \\u00e9 \\"q\\"", "meta": {"tags": ["vip", "eu"], "score": 7}, "deleted_at": null}';
const OLD =
  '{"id": 9007199254740993, "status": "open", "total": 12.5, "huge": 123456789012345678901234.5, ' +
  '"email": "zoé@example.com", "note": "old", "meta": {"score": 7, "tags": ["vip", "eu"]}, "deleted_at": null}';

const WHERE = 'destinations[1].filter';

function event(op: string, over: Partial<FilterInput> = {}): FilterInput {
  return {
    op,
    schema: 'public',
    table: 'orders',
    newRow: op === 'DELETE' ? null : NEW,
    oldRow: op === 'UPDATE' || op === 'DELETE' ? OLD : null,
    ...over,
  };
}

function run(expression: string, input: FilterInput): FilterResult {
  return compileFilter(expression, WHERE).matches(input);
}

/** A row whose one column is `value`. */
function row(value: string): FilterInput {
  return event('INSERT', { newRow: `{"v": ${value}}` });
}

function compileMessage(expression: string): string {
  try {
    compileFilter(expression, WHERE);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('FILTER_INVALID');
    return (err as Error).message;
  }
  throw new Error(`compileFilter accepted ${expression}`);
}

describe('operations and the paid transition', () => {
  const PAID = 'operation == "UPDATE" && data.status == "paid" && old_data.status != "paid"';
  it.each<[string, FilterInput, boolean]>([
    ['UPDATE open -> paid', event('UPDATE'), true],
    ['UPDATE paid -> paid', event('UPDATE', { oldRow: NEW }), false],
    ['UPDATE paid -> open', event('UPDATE', { newRow: OLD, oldRow: NEW }), false],
    ['INSERT of a paid row (old_data null, guarded by operation)', event('INSERT'), false],
    ['DELETE of a paid row', event('DELETE', { oldRow: NEW }), false],
  ])('%s', (_name, input, match) => {
    expect(run(PAID, input)).toEqual({ match });
  });

  it.each<[string, string, boolean]>([
    ['INSERT', 'operation == "INSERT"', true],
    ['UPDATE', 'operation == "INSERT"', false],
    ['DELETE', 'operation == "DELETE"', true],
    ['READ', 'operation == "READ"', true],
    ['TRUNCATE', 'operation == "TRUNCATE"', true],
    ['UPDATE', 'operation in ["INSERT", "UPDATE"]', true],
    ['DELETE', 'operation in ["INSERT", "UPDATE"]', false],
    ['UPDATE', 'schema == "public" && table == "orders"', true],
    ['UPDATE', 'table.startsWith("ord")', true],
    ['UPDATE', 'true', true],
    ['UPDATE', 'false', false],
  ])('%s: %s is %s', (op, expression, match) => {
    expect(run(expression, event(op))).toEqual({ match });
  });

  it('data is the new row for INSERT and UPDATE, the deleted row for DELETE; old_data only for UPDATE', () => {
    expect(run('data.status == "paid" && old_data == null', event('INSERT'))).toEqual({ match: true });
    expect(run('data.status == "paid" && old_data.status == "open"', event('UPDATE'))).toEqual({ match: true });
    expect(run('data.status == "open" && old_data == null', event('DELETE'))).toEqual({ match: true });
    expect(run('data.status == "paid" && old_data == null', event('READ'))).toEqual({ match: true });
  });

  it('an event without its row has an empty data map', () => {
    expect(run('size(data) == 0 && !has(data.id)', event('INSERT', { newRow: null }))).toEqual({ match: true });
  });
});

describe('changed', () => {
  it.each<[string, FilterInput, string[]]>([
    // total 12.50 -> 12.5 is the same value; meta's members only moved.
    ['UPDATE: the columns whose value differs', event('UPDATE'), ['status', 'note']],
    ['UPDATE to the same row', event('UPDATE', { oldRow: NEW }), []],
    ['INSERT: every column of the new row', event('INSERT'), ['id', 'status', 'total', 'huge', 'email', 'note', 'meta', 'deleted_at']],
    ['DELETE: every column of the deleted row', event('DELETE'), ['id', 'status', 'total', 'huge', 'email', 'note', 'meta', 'deleted_at']],
    ['UPDATE: a column added, one dropped', event('UPDATE', { newRow: '{"id": 1, "b": 2}', oldRow: '{"id": 1, "a": 2}' }), ['b', 'a']],
    ['UPDATE: int 12 and double 12.0 are the same value', event('UPDATE', { newRow: '{"n": 12.0}', oldRow: '{"n": 12}' }), []],
    ['UPDATE: 2^53 + 1 differs from 2^53', event('UPDATE', { newRow: '{"n": 9007199254740993}', oldRow: '{"n": 9007199254740992}' }), ['n']],
    ['UPDATE: null to a value', event('UPDATE', { newRow: '{"n": 0}', oldRow: '{"n": null}' }), ['n']],
    ['UPDATE: a nested list element', event('UPDATE', { newRow: '{"j": {"a": [1, 2]}}', oldRow: '{"j": {"a": [1, 3]}}' }), ['j']],
  ])('%s', (_name, input, expected) => {
    expect(filterVariables(input).changed).toEqual(expected);
  });

  it.each<[string, string, boolean]>([
    ['UPDATE', '"status" in changed', true],
    ['UPDATE', '"total" in changed', false],
    ['UPDATE', 'changed == ["status", "note"]', true],
    ['UPDATE', 'changed.exists(c, c.startsWith("no"))', true],
    ['INSERT', '"status" in changed', true],
    ['UPDATE', 'operation == "UPDATE" && "email" in changed', false],
  ])('%s: %s is %s', (op, expression, match) => {
    expect(run(expression, event(op))).toEqual({ match });
  });
});

describe('numbers', () => {
  it.each<[string, string, boolean]>([
    // bigint on both sides of 2^53: exact, never through a double.
    ['9007199254740993', 'data.v > 9007199254740992', true],
    ['9007199254740992', 'data.v > 9007199254740992', false],
    ['9007199254740993', 'data.v == 9007199254740993', true],
    ['9007199254740993', 'data.v == 9007199254740992', false],
    ['9007199254740992', 'data.v < 9007199254740993', true],
    ['-9007199254740993', 'data.v < -9007199254740992', true],
    ['9223372036854775807', 'data.v == 9223372036854775807', true],
    ['-9223372036854775808', 'data.v < 0', true],
    ['9007199254740993', 'data.v > 9007199254740992.0', true],
    ['9007199254740993', 'type(data.v) == int', true],
    // numeric with a fraction: a double, compared with int and double literals.
    ['12.50', 'data.v > 100', false],
    ['12.50', 'data.v < 100', true],
    ['12.50', 'data.v > 12', true],
    ['12.50', 'data.v == 12.5', true],
    ['12.50', 'data.v >= 12.5 && data.v <= 12.5', true],
    ['12.00', 'data.v == 12', true],
    ['12.00', 'data.v in [11, 12]', true],
    ['0.10', 'data.v == 0.1', true],
    ['12.50', 'type(data.v) == double', true],
    ['12', 'data.v > 4.5', true],
    ['12', 'data.v == 12.0', true],
    // beyond int64: a double, as close as a double gets.
    ['123456789012345678901234.5', 'data.v > 1000000', true],
    ['123456789012345678901234', 'type(data.v) == double', true],
    ['18446744073709551615', 'data.v > 9223372036854775807', true],
    ['1e3', 'data.v == 1000', true],
    ['-0', 'data.v == 0', true],
    // arithmetic across int and double gives a double (int with int stays int).
    ['12.50', 'data.v * 2 == 25', true],
    ['12', 'data.v * 1.5 == 18.0', true],
    ['12', 'data.v + 0.5 > 12', true],
    ['12', 'data.v - 0.5 < 12', true],
    ['12', 'data.v / 5 == 2', true],
    ['12', 'data.v / 5.0 == 2.4', true],
  ])('%s: %s is %s', (value, expression, match) => {
    expect(run(expression, row(value))).toEqual({ match });
  });

  it('parses integers to bigint and other numbers to double, exactly', () => {
    const parsed = parseRow('{"a": 9007199254740993, "b": 12.50, "c": -42, "d": 1.5e2, "e": 99999999999999999999, "f": 0}') as Map<string, unknown>;
    expect([...parsed.entries()]).toEqual([
      ['a', 9007199254740993n],
      ['b', 12.5],
      ['c', -42n],
      ['d', 150],
      ['e', 1e20],
      ['f', 0n],
    ]);
  });
});

describe('null old_data and guards', () => {
  it.each<[string, string, boolean]>([
    ['INSERT', 'old_data == null', true],
    ['UPDATE', 'old_data == null', false],
    ['DELETE', 'old_data == null', true],
    ['INSERT', 'has(old_data.status)', false],
    ['UPDATE', 'has(old_data.status)', true],
    ['UPDATE', 'has(old_data.nope)', false],
    ['INSERT', 'old_data != null && old_data.status != "paid"', false],
    ['INSERT', '!has(old_data.status) || old_data.status != "paid"', true],
    ['UPDATE', '!has(old_data.status) || old_data.status != "paid"', true],
    ['INSERT', 'data.status == "paid" && (old_data == null || old_data.status != "paid")', true],
    ['INSERT', 'data.deleted_at == null', true],
    ['INSERT', 'has(data.deleted_at)', true],
    ['INSERT', 'has(data.nope)', false],
  ])('%s: %s is %s', (op, expression, match) => {
    expect(run(expression, event(op))).toEqual({ match });
  });

  it('old_data.status on an INSERT fails the row and says why', () => {
    const out = run('old_data.status != "paid"', event('INSERT'));
    expect(out.match).toBe(false);
    expect(out.error).toBe('no such key: status at column 10 (old_data is null: it is set for UPDATE only; guard with old_data != null && …)');
  });
});

describe('strings, unicode, nested json', () => {
  it.each<[string, boolean]>([
    ['data.status.startsWith("pa")', true],
    ['data.status.endsWith("id")', true],
    ['data.email.contains("@example.")', true],
    ['data.status in ["paid", "refunded"]', true],
    ['data.status in ["open", "refunded"]', false],
    ['data.status.matches("^p[a-z]+$")', true],
    ['data.status.size() == 4', true],
    ['data.email.startsWith("zoé")', true],
    ['data.note.startsWith("Zoé 日本 😀 é")', true],
    ['data.note.contains("\\"q\\"")', true],
    ['data.note == "Zoé 日本 😀 é \\"q\\""', true],
    ['data.meta.tags[0] == "vip"', true],
    ['data.meta.tags.size() == 2', true],
    ['"eu" in data.meta.tags', true],
    ['data.meta.tags.exists(t, t == "eu")', true],
    ['data.meta.score == 7', true],
    ['"score" in data.meta', true],
    ['has(data.meta.nope)', false],
    ['data.meta == old_data.meta', true],
  ])('%s is %s', (expression, match) => {
    expect(run(expression, event('UPDATE'))).toEqual({ match });
  });

  it.each<[string, string]>([
    ['__proto__', '{"__proto__": 1}'],
    ['constructor', '{"constructor": 1}'],
    ['toString', '{"toString": 1}'],
  ])('a column named %s is a column like any other', (name, text) => {
    expect(run(`has(data.${name}) && data.${name} == 1`, event('INSERT', { newRow: text }))).toEqual({ match: true });
    expect(run(`has(data.${name})`, event('INSERT', { newRow: '{"id": 1}' }))).toEqual({ match: false });
  });

  it('a repeated key keeps its last value, as JSON.parse does', () => {
    expect(run('data.a == 2', event('INSERT', { newRow: '{"a": 1, "a": 2}' }))).toEqual({ match: true });
  });
});

describe('compile errors', () => {
  it.each<[string, string]>([
    ['dta.status == "paid"', `${WHERE}: unknown variable "dta" at column 1 of 'dta.status == "paid"' (the variables are ${FILTER_VARIABLES.join(', ')})`],
    ['data.status == "paid" && row.id == 1', `${WHERE}: unknown variable "row" at column 26 of 'data.status == "paid" && row.id == 1'`],
    ['data.status == ', `${WHERE}: syntax error, unexpected token: EOF at column 16 of 'data.status == '`],
    ['data.status == "paid" &&\n  dat.x == 1', `${WHERE}: unknown variable "dat" at line 2, column 3 of 'data.status == "paid" &&\\n  dat.x == 1'`],
    ['data.status = "paid"', `${WHERE}: syntax error`],
    ['data.status == "paid', `${WHERE}: syntax error`],
    ['"paid"', `${WHERE}: '"paid"' gives a string, not a bool: a filter is a condition`],
    ['size(data)', `${WHERE}: 'size(data)' gives an int, not a bool`],
    ['changed', `${WHERE}: 'changed' gives a list<string>, not a bool`],
    ['operation == 1', `${WHERE}: no such overload: string == int at column 1 of 'operation == 1'`],
    ['table + 1 == "x"', `${WHERE}: no such overload: string + int`],
    ['', `${WHERE}: is empty`],
    ['   ', `${WHERE}: is empty`],
  ])('%j', (expression, expected) => {
    expect(compileMessage(expression)).toContain(expected);
  });

  it('every compile error names the key, quotes the expression and says what to do', () => {
    for (const expression of ['dta.x == 1', 'data.x ==', '"x"']) {
      const message = compileMessage(expression);
      expect(message.startsWith(`${WHERE}: `)).toBe(true);
      expect(message).toContain(`'${expression}'`);
    }
    try {
      compileFilter('dta.x == 1', WHERE);
    } catch (err) {
      expect((err as AppError).hint).toContain('operation == "UPDATE"');
    }
  });
});

describe('run-time errors fail the row only, never throw', () => {
  it.each<[string, FilterInput, string]>([
    ['data.nope == "x"', event('INSERT'), 'no such key: nope at column 6'],
    ['data.meta.nope.x == 1', event('INSERT'), 'no such key: nope at column 11'],
    ['data.meta.tags[5] == "x"', event('INSERT'), 'index out of bounds'],
    ['data.status > 1', event('INSERT'), 'no such overload'],
    ['data.status.startsWith(1)', event('INSERT'), "no matching overload for 'string.startsWith(int)'"],
    ['data.meta.score / 0 == 1', event('INSERT'), 'division by zero at column 1'],
    ['data.meta.score % 0 == 1', event('INSERT'), 'modulo by zero'],
    ['data.id * data.id > 0', event('INSERT'), 'integer overflow'],
    ['data.status', event('INSERT'), 'the filter gave a string, not a bool'],
    ['data.id', event('INSERT'), 'the filter gave an int, not a bool'],
    ['data.deleted_at', event('INSERT'), 'the filter gave null, not a bool'],
    ['data.meta', event('INSERT'), 'the filter gave a map, not a bool'],
    // dyn: the checker cannot tell, the row does.
    ['data.total + 1', event('INSERT'), 'the filter gave a double, not a bool'],
    ['data.status == "paid"', event('INSERT', { newRow: '{"status": "pa' }), 'the new row is not valid JSON'],
    ['data.status == "paid"', event('INSERT', { newRow: '[1, 2]' }), 'the new row is not a JSON object'],
    ['data.status == "paid"', event('INSERT', { newRow: '{"a": 1} x' }), 'the new row is not valid JSON'],
    ['data.status == "paid"', event('DELETE', { oldRow: '' }), 'the old row is not valid JSON'],
  ])('%s', (expression, input, error) => {
    const out = run(expression, input);
    expect(out.match).toBe(false);
    expect(out.error).toContain(error);
  });

  it('the message does not quote the row', () => {
    const secret = '{"card": "4111 1111 1111 1111", "n": 1}';
    for (const expression of ['data.card > 1', 'data.card', 'data.nope == 1']) {
      const out = run(expression, event('INSERT', { newRow: secret }));
      expect(out.error).toBeDefined();
      expect(out.error).not.toContain('4111');
    }
  });

  it('a branch that decides absorbs an error in the other (CEL && and ||)', () => {
    expect(run('data.nope == 1 || data.status == "paid"', event('INSERT'))).toEqual({ match: true });
    expect(run('data.nope == 1 && data.status == "open"', event('INSERT'))).toEqual({ match: false });
    expect(run('operation == "INSERT" || data.x == 1', event('INSERT', { newRow: '{' }))).toEqual({ match: true });
  });
});

describe('hostile rows', () => {
  const deep = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);

  it('a 10,000-deep json column fails the filters that read the row, without throwing', () => {
    const input = event('UPDATE', { newRow: `{"id": 1, "meta": ${deep(10_000)}}` });
    const vars = filterVariables(input);
    for (const expression of ['data.id == 1', 'data.meta == old_data.meta', '"meta" in changed']) {
      const out = compileFilter(expression, WHERE).matches(vars);
      expect(out).toEqual({ match: false, error: `the new row nests deeper than ${MAX_ROW_DEPTH} levels` });
    }
    expect(run('operation == "UPDATE"', input)).toEqual({ match: true });
  });

  it('nesting up to the limit evaluates, equality included', () => {
    const text = `{"meta": ${deep(MAX_ROW_DEPTH - 1)}}`;
    expect(run('data.meta == old_data.meta && !("meta" in changed)', event('UPDATE', { newRow: text, oldRow: text }))).toEqual({ match: true });
  });

  it('a 10,000-deep object column fails too', () => {
    const objects = '{"a": '.repeat(10_000) + '1' + '}'.repeat(10_000);
    const out = run('data.id == 1', event('INSERT', { newRow: `{"id": 1, "j": ${objects}}` }));
    expect(out.match).toBe(false);
    expect(out.error).toContain('nests deeper');
  });

  it('a large column parses', () => {
    const items = Array.from({ length: 50_000 }, (_, i) => `{"sku": "A-${i}", "qty": ${i}, "price": ${i}.25}`).join(', ');
    const text = `{"id": 1, "items": [${items}]}`;
    expect(run('data.items.size() == 50000 && data.items[49999].qty == 49999', event('INSERT', { newRow: text }))).toEqual({ match: true });
  });

  it.each(['', '{', '{"a"', '{"a":', '{"a": 1,', '{"a": tru}', '{"a": 01x}', '{"a": -}', '{"a": 1.}', '{"a": 1e}', '{"a": "\\x"}', '{"a" 1}', '{1: 2}', 'null', '"x"'])(
    'invalid or non-object text %j is a row error',
    (text) => {
      const out = run('data.a == 1', event('INSERT', { newRow: text }));
      expect(out.match).toBe(false);
      expect(out.error).toMatch(/^the new row (is not valid JSON|is not a JSON object)/);
    },
  );
});

describe('filterVariables', () => {
  it('parses each row once, however many filters read it', () => {
    let reads = 0;
    const input = {
      op: 'UPDATE',
      schema: 'public',
      table: 'orders',
      get newRow() {
        reads++;
        return NEW;
      },
      oldRow: OLD,
    };
    const vars = filterVariables(input);
    expect(vars).toBeInstanceOf(FilterVariables);
    const filters = ['data.status == "paid"', '"status" in changed', 'data.total > 10 && old_data.total > 10'].map((e) => compileFilter(e, WHERE));
    for (const f of filters) expect(f.matches(vars)).toEqual({ match: true });
    expect(reads).toBe(1);
  });

  it('a filter that reads no row parses none', () => {
    let reads = 0;
    const input = {
      op: 'INSERT',
      schema: 'public',
      table: 'orders',
      get newRow() {
        reads++;
        return NEW;
      },
      oldRow: null,
    };
    expect(compileFilter('operation == "INSERT" && table == "orders"', WHERE).matches(input)).toEqual({ match: true });
    expect(reads).toBe(0);
  });

  it('the compiled filter keeps its expression and key', () => {
    const f = compileFilter('true', WHERE);
    expect([f.expression, f.where]).toEqual(['true', WHERE]);
  });
});
