import { Environment, EvaluationError, ParseError, TypeError as CelTypeError } from '@marcbachmann/cel-js';
import { AppError } from '../util/errors.js';

/**
 * Row filters: a destination's `filter:` is a CEL expression (Common Expression
 * Language, as in Kubernetes and Envoy) over one captured change, e.g.
 *
 *   operation == "UPDATE" && data.status == "paid" && old_data.status != "paid"
 *
 * An event whose filter does not give true is not sent to that destination.
 *
 * Library: @marcbachmann/cel-js, pinned. No dependencies (~300 KB installed, where
 * @bufbuild/cel brings protobuf, the CEL spec data and RE2, ~11 MB), engines node
 * >=20.19 like ours, released often. Ints are BigInt (exact int64), and its public type
 * checker makes unknown variables and non-bool results compile errors with an offset
 * into the expression; @bufbuild/cel 0.6 exports no checker (unknown variables fail
 * at run time only). A checked expression evaluates in ~0.2 us.
 *
 * Variables (FILTER_VARIABLES):
 * - `operation` string: INSERT, UPDATE, DELETE (READ for a snapshot's rows; any
 *   other string is passed on as it is).
 * - `schema`, `table` strings.
 * - `data` map: the row after the change, or the deleted row for DELETE, as the
 *   webhook's `data` (body.ts buildBody). An event without that row gets an empty map.
 * - `old_data` map or null: the row before the change for UPDATE, null otherwise.
 * - `changed` list of strings: the columns whose value before the change differs from
 *   their value after it, a row that does not exist having no values. So for UPDATE
 *   the columns that changed; for INSERT (and READ) every column of the new row, and
 *   for DELETE every column of the deleted row: `"email" in changed` holds when an
 *   email appears or disappears too; add `operation == "UPDATE"` for updates only.
 *   Values are compared as values, not as text: numeric 12.50 and 12.5 are the same
 *   (as PostgreSQL's IS DISTINCT FROM has it), so are two json objects with the same
 *   members in another order. Order: the new row's columns, then any the old row
 *   alone has.
 *
 * Values: rows are parsed from the journal's JSON text by parseRow below, only to
 * evaluate filters; the webhook body still carries the text untouched
 * (CONTRIBUTING.md: row values are never parsed, for what is sent). JSON integers
 * become CEL ints, exact: bigint 9007199254740993 stays 9007199254740993 and
 * `data.id > 9007199254740992` is true for it. Integers beyond int64 (numeric
 * 123456789012345678901234, BIGINT UNSIGNED above 2^63-1) become doubles, as CEL
 * has no wider int: comparisons with them are as close as a double gets (an error
 * would instead fail every filter on such a row, even `data.status == "paid"`).
 * Numbers with a fraction or exponent (numeric 12.50) become doubles: exact up to
 * 15 significant digits. Objects become maps, arrays lists; json columns nest.
 *
 * Numbers, and what differs from textbook CEL:
 * - Comparisons across int and double are numeric and exact (CEL's heterogeneous
 *   comparison, the library's BigInt against number): `data.total > 100` for total
 *   12.50, `data.total == 12` for 12.0, `data.id > 4.5`.
 * - Arithmetic across int and double is an extension of ours: CEL has no `int + double`,
 *   yet an unconstrained numeric column gives an int for 12 and a double for 12.5, so
 *   `data.amount * 1.1 > 100` would fail on some rows only. Such arithmetic gives a
 *   double. int with int stays int (`7 / 2` is 3), and overflow is a run-time error.
 * - `has(old_data.status)` is false when old_data is null (the library's reading;
 *   cel-go would make it an error), so it guards INSERT and DELETE. `old_data.status`
 *   itself is a run-time error for them: write `old_data != null && …` or put
 *   `operation == "UPDATE" &&` first (`false && error` is false in CEL).
 *
 * Errors: compileFilter throws AppError FILTER_INVALID for a syntax error, an unknown
 * variable, a type error the checker can prove, or a result that cannot be a bool,
 * naming the config key, the position and the expression. At run time a missing key
 * (`data.nope`), a wrong type, a division by zero or a result that is not a bool is a
 * failure of that row only: matches() gives `{ match: false, error }` and never
 * throws; the caller counts and logs it.
 *
 * Hostile rows: the parser has no recursion and refuses nesting deeper than
 * MAX_ROW_DEPTH (the evaluator's own equality and type walks recurse per level), so
 * a 10,000-deep json column fails that row's filters with an error instead of
 * overflowing the stack. Size is not bounded: the row's text is in memory already
 * (the journal holds it), and its parsed values take a few times that, once per event.
 *
 * Cost (Node 20.20 on the 2-core machine, scratch loop over the compiled module,
 * medians; a 10-column, 257-byte row with a bigint, a numeric, a jsonb and unicode):
 * evaluating a compiled filter over prepared variables ~0.2-0.3 us (the paid
 * transition above, or three string tests); parsing the row ~1.9-2.1 us (JSON.parse,
 * which loses the values, ~1.0-1.6; lossless-json with a bigint number parser
 * ~3.0-3.3). So one UPDATE event through the paid transition costs ~4.5-5 us, both
 * rows parsed (~6 with `changed`); an INSERT ~2.5 us; three filters sharing one event
 * ~6-7 us; a filter that reads only operation, schema or table ~0.05 us. A compile
 * costs ~25 us. Large rows parse at ~5-20 ms a megabyte, by content (long strings
 * cheapest, many small objects dearest; JSON.parse ~2-5, lossless-json ~11-24). A
 * 10,000-deep column is refused in ~0.15 ms.
 */

/** The variables a filter can use, in the order the error messages list them. */
export const FILTER_VARIABLES = ['operation', 'schema', 'table', 'data', 'old_data', 'changed'] as const;

/**
 * Deepest nesting of objects and arrays a row may have to be filtered (the row object
 * is level 1). The evaluator walks nested values recursively (equality, type names);
 * 512 levels stay far from the stack's limit there, and no sane row comes close.
 */
export const MAX_ROW_DEPTH = 512;

/** Longest run-time error message kept; the rest is cut (a message may quote a value). */
const MAX_ERROR_LENGTH = 200;

/** One captured change, as much of it as a filter needs (structurally a journal event). */
export interface FilterInput {
  readonly op: string;
  readonly schema: string;
  readonly table: string;
  /** Row after the change, JSON object text exactly as the database serialised it. */
  readonly newRow: string | null;
  /** Row before the change, JSON object text exactly as the database serialised it. */
  readonly oldRow: string | null;
}

/** What one evaluation says. `error` is set when the filter failed on this row (match is then false). */
export interface FilterResult {
  readonly match: boolean;
  readonly error?: string;
}

/** A filter compiled once per destination, evaluated for every event. */
export interface CompiledFilter {
  /** The expression as configured. */
  readonly expression: string;
  /** The config key it came from, e.g. `destinations[1].filter`. */
  readonly where: string;
  /**
   * Evaluates the filter over one event. Pass the event's filterVariables() when
   * several filters see the same event, so its rows are parsed once. Never throws.
   */
  matches(input: FilterInput | FilterVariables): FilterResult;
}

/** A value of a parsed row: CEL's int is bigint, double is number, map is Map. */
export type RowValue = null | boolean | bigint | number | string | RowValue[] | RowMap;
export type RowMap = Map<string, RowValue>;

/**
 * The variables of one event, built on first use and kept: a filter that reads only
 * `operation` parses nothing, and the filters of several destinations share one
 * parse of each row. A row that cannot be parsed fails, with the same error, every
 * filter that reads it. The library reads variables as properties (getters here).
 */
export class FilterVariables {
  readonly operation: string;
  readonly schema: string;
  readonly table: string;
  readonly #input: FilterInput;
  #data: RowMap | undefined;
  #oldData: RowMap | null | undefined;
  #changed: string[] | undefined;
  #newParsed: Parsed | undefined;
  #oldParsed: Parsed | undefined;

  constructor(input: FilterInput) {
    this.#input = input;
    this.operation = input.op;
    this.schema = input.schema;
    this.table = input.table;
  }

  /** The row after the change, or the deleted row for DELETE (buildBody's `data`). */
  get data(): RowMap {
    if (this.#data === undefined) {
      const row = this.#input.op === 'DELETE' ? this.#old() : this.#new();
      this.#data = row ?? new Map();
    }
    return this.#data;
  }

  /** The row before the change for UPDATE, null otherwise. */
  get old_data(): RowMap | null {
    if (this.#oldData === undefined) this.#oldData = this.#input.op === 'UPDATE' ? this.#old() : null;
    return this.#oldData;
  }

  /** Columns whose value differs between the row before and the row after (see the module comment). */
  get changed(): string[] {
    this.#changed ??= changedColumns(this.#old(), this.#new());
    return this.#changed;
  }

  #new(): RowMap | null {
    this.#newParsed ??= parseOnce(this.#input.newRow, 'the new row');
    return unwrap(this.#newParsed);
  }

  #old(): RowMap | null {
    this.#oldParsed ??= parseOnce(this.#input.oldRow, 'the old row');
    return unwrap(this.#oldParsed);
  }
}

/** Prepares one event's variables, to share between the filters that see it. */
export function filterVariables(input: FilterInput): FilterVariables {
  return new FilterVariables(input);
}

/**
 * Compiles `expression`, from config key `where` (`destinations[1].filter`), once.
 * Throws AppError FILTER_INVALID when it cannot be a filter, e.g.
 * `destinations[1].filter: unknown variable "dta" at column 1 of 'dta.status == "paid"'`.
 */
export function compileFilter(expression: string, where: string): CompiledFilter {
  if (expression.trim() === '') {
    throw invalid(`${where}: is empty; write a condition, e.g. operation == "UPDATE" && data.status == "paid"`);
  }
  let program: Program;
  try {
    program = ENV.parse(expression);
  } catch (err) {
    throw compileError(err, expression, where);
  }
  // check() also records the types in the tree, so evaluations skip the checker.
  const checked = program.check();
  if (!checked.valid) throw compileError(checked.error, expression, where);
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    throw invalid(
      `${where}: ${quote(expression)} gives ${article(checked.type ?? 'value')}, not a bool: ` +
        `a filter is a condition, true for the events to send, e.g. data.status == "paid"`,
    );
  }
  return {
    expression,
    where,
    matches: (input) => evaluate(program, input instanceof FilterVariables ? input : new FilterVariables(input)),
  };
}

// ---------------------------------------------------------------------------
// Evaluation

type Program = ReturnType<Environment['parse']>;

/**
 * One environment for every filter: it holds only the declarations below, never a
 * row, so filters can share it (building one, ~50 us, costs twice a compile).
 */
const ENV = buildEnvironment();

function buildEnvironment(): Environment {
  const env = new Environment()
    .registerVariable('operation', 'string')
    .registerVariable('schema', 'string')
    .registerVariable('table', 'string')
    .registerVariable('data', 'map')
    // dyn, not map: null is no map, and `old_data == null` must type-check.
    .registerVariable('old_data', 'dyn')
    .registerVariable('changed', 'list<string>');
  // int with double arithmetic gives a double (see "Numbers" above). Number(bigint)
  // rounds an int beyond 2^53 to the nearest double, as the result is one anyway.
  const mixed: readonly [string, (a: number, b: number) => number][] = [
    ['+', (a, b) => a + b],
    ['-', (a, b) => a - b],
    ['*', (a, b) => a * b],
    ['/', (a, b) => a / b],
  ];
  for (const [op, apply] of mixed) {
    env.registerOperator(`int ${op} double: double`, (a: bigint, b: number) => apply(Number(a), b));
    env.registerOperator(`double ${op} int: double`, (a: number, b: bigint) => apply(a, Number(b)));
  }
  return env;
}

function evaluate(program: Program, vars: FilterVariables): FilterResult {
  let result: unknown;
  try {
    result = program(vars);
  } catch (err) {
    try {
      return { match: false, error: runtimeMessage(err, program, vars) };
    } catch {
      return { match: false, error: 'the filter failed' };
    }
  }
  if (result === true) return MATCH;
  if (result === false) return NO_MATCH;
  return { match: false, error: `the filter gave ${article(celTypeOf(result))}, not a bool` };
}

const MATCH: FilterResult = Object.freeze({ match: true });
const NO_MATCH: FilterResult = Object.freeze({ match: false });

/** A short message for a failed evaluation: what went wrong and where in the expression. */
function runtimeMessage(err: unknown, program: Program, vars: FilterVariables): string {
  if (err instanceof EvaluationError) {
    const expression = program.ast.input;
    const at = err.range === undefined ? '' : ` at ${position(expression, err.range.start)}`;
    return clip(`${lowerFirst(err.summary)}${at}${nullOldDataHint(err, vars)}`);
  }
  if (err instanceof RowError) return clip(err.message);
  if (err instanceof RangeError) return 'a value nests too deeply to evaluate';
  return clip(`filter failed: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * `old_data.status` on an INSERT says "No such key: status", which reads as a missing
 * column; say why instead, since it is the likeliest mistake in a filter.
 */
function nullOldDataHint(err: EvaluationError, vars: FilterVariables): string {
  if (err.code !== 'no_such_key') return '';
  const node = err.node as { op?: unknown; args?: unknown } | undefined;
  const target = Array.isArray(node?.args) ? (node.args[0] as { op?: unknown; args?: unknown } | undefined) : undefined;
  // old_data was read (and parsed) to get here, so reading it again cannot fail.
  if (target?.op !== 'id' || target.args !== 'old_data' || vars.old_data !== null) return '';
  return ` (old_data is null: it is set for UPDATE only; guard with old_data != null && …)`;
}

function celTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'number') return 'double';
  if (Array.isArray(value)) return 'list';
  if (value instanceof Map) return 'map';
  return typeof value;
}

// ---------------------------------------------------------------------------
// Compile errors

function compileError(err: unknown, expression: string, where: string): AppError {
  if (!(err instanceof ParseError || err instanceof CelTypeError)) {
    return invalid(`${where}: cannot compile ${quote(expression)}: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const start = err.range?.start;
  const at = start === undefined ? '' : ` at ${position(expression, start)}`;
  let what: string;
  let after = '';
  if (err.code === 'unknown_variable' && err.range !== undefined) {
    what = `unknown variable "${expression.slice(err.range.start, err.range.end)}"`;
    after = ` (the variables are ${FILTER_VARIABLES.join(', ')})`;
  } else if (err instanceof ParseError) {
    what = `syntax error, ${lowerFirst(err.summary)}`;
  } else {
    what = lowerFirst(err.summary);
  }
  return invalid(`${where}: ${what}${at} of ${quote(expression)}${after}`, err);
}

function invalid(message: string, cause?: unknown): AppError {
  return new AppError('FILTER_INVALID', message, {
    hint: `a filter is a CEL condition over ${FILTER_VARIABLES.join(', ')}, e.g. operation == "UPDATE" && data.status == "paid"`,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** `column 5`, or `line 2, column 3` for an expression of several lines; 1-based, in characters. */
function position(expression: string, offset: number): string {
  const before = expression.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  const column = [...before.slice(lineStart)].length + 1;
  if (!expression.includes('\n')) return `column ${column}`;
  let line = 1;
  for (let i = 0; i < lineStart; i++) if (before.charCodeAt(i) === 0x0a) line++;
  return `line ${line}, column ${column}`;
}

/** The expression in single quotes, on one line (line breaks shown as \n). */
function quote(expression: string): string {
  return `'${expression.replace(/\r?\n/g, '\\n')}'`;
}

/** `an int`, `a string`, `null`. */
function article(type: string): string {
  if (type === 'null') return type;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function clip(text: string): string {
  return text.length <= MAX_ERROR_LENGTH ? text : `${text.slice(0, MAX_ERROR_LENGTH - 1)}…`;
}

// ---------------------------------------------------------------------------
// Rows

/** A row that cannot be filtered: not JSON, not an object, or nested too deeply. */
class RowError extends Error {
  override readonly name = 'RowError';
}

/** A parse's outcome, kept so that a bad row fails each filter without parsing it again. */
type Parsed = { readonly row: RowMap | null } | { readonly error: RowError };

function parseOnce(text: string | null, what: string): Parsed {
  if (text === null) return { row: null };
  try {
    const value = parseRow(text);
    if (!(value instanceof Map)) throw new RowError('is not a JSON object');
    return { row: value };
  } catch (err) {
    const why = err instanceof RowError ? err.message : 'is not valid JSON';
    return { error: new RowError(`${what} ${why}`) };
  }
}

function unwrap(parsed: Parsed): RowMap | null {
  if ('error' in parsed) throw parsed.error;
  return parsed.row;
}

/**
 * Columns whose value differs between `before` and `after` (null: no row), in
 * `after`'s order, then `before`'s columns that `after` lacks.
 */
function changedColumns(before: RowMap | null, after: RowMap | null): string[] {
  const out: string[] = [];
  if (after !== null) {
    for (const [name, value] of after) {
      if (before === null || !before.has(name) || !sameValue(before.get(name) as RowValue, value)) out.push(name);
    }
  }
  if (before !== null) {
    for (const name of before.keys()) if (after === null || !after.has(name)) out.push(name);
  }
  return out;
}

/**
 * Equality of parsed values: numbers by value across int and double (12 and 12.0),
 * maps whatever their order. Recursion is bounded by MAX_ROW_DEPTH.
 */
function sameValue(a: RowValue, b: RowValue): boolean {
  if (a === b) return true;
  if (typeof a === 'bigint' || typeof a === 'number') {
    // Loose equality between bigint and number compares their exact values.
    return (typeof b === 'bigint' || typeof b === 'number') && a == b;
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i] as RowValue, b[i] as RowValue)) return false;
    return true;
  }
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false;
    for (const [key, value] of a) if (!b.has(key) || !sameValue(value, b.get(key) as RowValue)) return false;
    return true;
  }
  return false;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Parses JSON text into CEL values: integers to bigint (exact; doubles beyond int64),
 * other numbers to double, objects to Map (no prototype, so a column named
 * `__proto__` or `toString` is a column like any other; a repeated key keeps its last
 * value, as JSON.parse does), arrays to lists.
 *
 * Written here rather than taken from lossless-json (the maintained candidate): that
 * parser recurses per nesting level, so a deep column overflows the stack, and gives
 * plain objects, whose inherited names the evaluator's map equality (`key in b`)
 * would see. This one keeps its open containers on an explicit stack and stops at
 * MAX_ROW_DEPTH. Strings without escapes are sliced; with escapes, the native
 * JSON.parse decodes them. Throws RowError or SyntaxError on invalid text.
 */
export function parseRow(text: string): RowValue {
  const end = text.length;
  let i = 0;
  // Open containers, innermost last, and for each open map the key being filled.
  const open: (RowValue[] | RowMap)[] = [];
  const keys: string[] = [];
  // Position of the next backslash at or after i (or end): looked up again only once
  // passed, so telling plain strings from escaped ones stays linear in the text.
  let nextBackslash = -1;

  const skipSpace = (): void => {
    while (i < end) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      i++;
    }
  };
  const fail = (what: string): never => {
    throw new RowError(`is not valid JSON: ${what} at offset ${i}`);
  };
  const readString = (): string => {
    // At the opening quote.
    const start = i + 1;
    const close = text.indexOf('"', start);
    if (close === -1) fail('unterminated string');
    if (nextBackslash < start) {
      nextBackslash = text.indexOf('\\', start);
      if (nextBackslash === -1) nextBackslash = end;
    }
    if (nextBackslash > close) {
      i = close + 1;
      return text.slice(start, close);
    }
    let j = start;
    while (j < end) {
      const c = text.charCodeAt(j);
      if (c === 0x5c) j += 2;
      else if (c === 0x22) break;
      else j++;
    }
    if (j >= end) fail('unterminated string');
    i = j + 1;
    return JSON.parse(text.slice(start - 1, i)) as string;
  };
  const readNumber = (): bigint | number => {
    const start = i;
    if (text.charCodeAt(i) === 0x2d) i++;
    const digitsStart = i;
    while (i < end && isDigit(text.charCodeAt(i))) i++;
    if (i === digitsStart) fail('invalid number');
    let integer = true;
    if (text.charCodeAt(i) === 0x2e) {
      integer = false;
      i++;
      const fraction = i;
      while (i < end && isDigit(text.charCodeAt(i))) i++;
      if (i === fraction) fail('invalid number');
    }
    const e = text.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      integer = false;
      i++;
      const sign = text.charCodeAt(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      const exponent = i;
      while (i < end && isDigit(text.charCodeAt(i))) i++;
      if (i === exponent) fail('invalid number');
    }
    const token = text.slice(start, i);
    if (!integer) return Number(token);
    // Up to 15 digits a double holds exactly, and BigInt(number) is the cheaper path.
    if (i - digitsStart <= 15) return BigInt(Number(token));
    const value = BigInt(token);
    return value >= INT64_MIN && value <= INT64_MAX ? value : Number(token);
  };
  const readLiteral = (word: string, value: RowValue): RowValue => {
    if (!text.startsWith(word, i)) fail('unexpected character');
    i += word.length;
    return value;
  };
  /** After `{` or `,` in a map: reads `"key":` and leaves i at the value. */
  const readKey = (): void => {
    skipSpace();
    if (text.charCodeAt(i) !== 0x22) fail('expected a member name');
    keys[open.length - 1] = readString();
    skipSpace();
    if (text.charCodeAt(i) !== 0x3a) fail('expected ":"');
    i++;
  };

  for (;;) {
    // Read one value; a container opens here and its members come in later turns.
    skipSpace();
    if (i >= end) fail('unexpected end');
    const c = text.charCodeAt(i);
    let value: RowValue;
    if (c === 0x7b || c === 0x5b) {
      if (open.length >= MAX_ROW_DEPTH) throw new RowError(`nests deeper than ${MAX_ROW_DEPTH} levels`);
      i++;
      skipSpace();
      if (c === 0x7b) {
        const map: RowMap = new Map();
        if (text.charCodeAt(i) !== 0x7d) {
          open.push(map);
          readKey();
          continue;
        }
        i++;
        value = map;
      } else {
        const list: RowValue[] = [];
        if (text.charCodeAt(i) !== 0x5d) {
          open.push(list);
          continue;
        }
        i++;
        value = list;
      }
    } else if (c === 0x22) value = readString();
    else if (c === 0x2d || isDigit(c)) value = readNumber();
    else if (c === 0x74) value = readLiteral('true', true);
    else if (c === 0x66) value = readLiteral('false', false);
    else if (c === 0x6e) value = readLiteral('null', null);
    else value = fail('unexpected character');

    // Store the value in its container; each container it completes goes up a level.
    for (;;) {
      const top = open[open.length - 1];
      if (top === undefined) {
        skipSpace();
        if (i < end) fail('unexpected text after the value');
        return value;
      }
      if (Array.isArray(top)) top.push(value);
      else top.set(keys[open.length - 1] as string, value);
      skipSpace();
      const next = text.charCodeAt(i);
      if (next === 0x2c) {
        i++;
        if (!Array.isArray(top)) readKey();
        break;
      }
      if (next !== (Array.isArray(top) ? 0x5d : 0x7d)) fail('expected "," or a closing bracket');
      i++;
      open.pop();
      value = top;
    }
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

