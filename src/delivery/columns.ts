import { AppError } from '../util/errors.js';

/**
 * Column selection for a destination: `columns: { include: [id, status] }` sends only
 * those columns, `columns: { exclude: [card_token] }` sends all but those. The key
 * columns (the table's primary key) are always sent, so a receiver can still tell
 * which row changed. It changes what is sent, never what is captured: the journal
 * keeps the whole row.
 *
 * Rows are JSON text exactly as the database serialised them and are never parsed
 * into values (CONTRIBUTING.md: row values are never parsed). The selection scans
 * the top level of the row object and copies each kept member's text byte for byte,
 * so 9007199254740993, 12.50, nested JSON and escapes stay exactly as written, in
 * the row's key order.
 *
 * Cost: one pass over the row's characters that validates as it goes, ~2.8 us for a
 * 10-column, 304-byte row (JSON.parse of the same row, which would lose the
 * values: ~1.4 us) and ~2 ms a megabyte, Node 20. A sticky regular expression for
 * string contents measured no faster on such short strings. No selection, or one
 * that only names key columns, costs nothing: the row is not scanned.
 */

/** `columns:` of a destination: `include` or `exclude`, not both (the config schema checks). */
export interface ColumnsSelection {
  /** Only these columns (plus the key columns). */
  readonly include?: readonly string[];
  /** Every column but these (the key columns are kept even when named). */
  readonly exclude?: readonly string[];
}

/** A selection compiled once per destination and table, applied to every row. */
export interface ColumnSelector {
  /**
   * True when the selection always keeps every column (no selection, or only key
   * columns excluded): `select` then returns its input without scanning it.
   */
  readonly keepsAll: boolean;
  /**
   * The row's JSON object text with only the selected top-level members, each
   * member's text unchanged, in the row's order; null stays null. Returns the very
   * input string when nothing was dropped. Throws AppError ROW_NOT_JSON_OBJECT when
   * the text is not one valid JSON object (a bug upstream: rows come from the
   * database's own JSON serialiser).
   */
  select(row: string | null): string | null;
}

/**
 * Compiles `selection` for a table whose key columns are `keyColumns`. Names are
 * compared with the decoded member names of the row, code unit for code unit (no
 * case folding or Unicode normalisation: the database's names are exact).
 */
export function compileColumnSelector(selection: ColumnsSelection | undefined, keyColumns: readonly string[]): ColumnSelector {
  const include = selection?.include;
  const exclude = selection?.exclude;
  if (include !== undefined && exclude !== undefined) {
    throw new AppError('COLUMNS_INCLUDE_AND_EXCLUDE', 'columns takes include or exclude, not both');
  }
  const keys = new Set(keyColumns);
  if (include !== undefined) {
    const kept = new Set([...include, ...keys]);
    return new RowSelector((name) => kept.has(name));
  }
  const dropped = new Set((exclude ?? []).filter((name) => !keys.has(name)));
  if (dropped.size === 0) return KEEP_ALL;
  return new RowSelector((name) => !dropped.has(name));
}

/**
 * Compiles a reader of the raw JSON texts of the top-level columns `names`
 * (for the key columns: see buildSubject in formats.ts). A column the row does not
 * have reads as undefined. Throws like ColumnSelector.select on invalid text.
 */
export function compileColumnReader(names: readonly string[]): (row: string) => (string | undefined)[] {
  const positions = new Map<string, number[]>();
  names.forEach((name, i) => {
    const list = positions.get(name);
    if (list === undefined) positions.set(name, [i]);
    else list.push(i);
  });
  return (row) => {
    const values = new Array<string | undefined>(names.length).fill(undefined);
    scanRow(row, (name, _keyStart, valueStart, valueEnd) => {
      const at = positions.get(name);
      if (at !== undefined) for (const i of at) values[i] = row.slice(valueStart, valueEnd);
    });
    return values;
  };
}

const KEEP_ALL: ColumnSelector = Object.freeze({ keepsAll: true, select: (row: string | null) => row });

class RowSelector implements ColumnSelector {
  readonly keepsAll = false;
  readonly #keep: (name: string) => boolean;

  constructor(keep: (name: string) => boolean) {
    this.#keep = keep;
  }

  select(row: string | null): string | null {
    if (row === null) return null;
    const keep = this.#keep;
    // The output reuses the row's own separators: the text before the first member
    // ("{" and any white space) opens it, each later kept member brings the text
    // since the previous member's end (", " as PostgreSQL's jsonb and MariaDB write
    // it, "," as json does), and the text after the last member closes it.
    let out = '';
    let kept = 0;
    let dropped = false;
    let head = -1;
    let previousEnd = 0;
    scanRow(row, (name, keyStart, _valueStart, valueEnd) => {
      if (head === -1) head = keyStart;
      if (keep(name)) {
        out += kept === 0 ? row.slice(0, head) + row.slice(keyStart, valueEnd) : row.slice(previousEnd, valueEnd);
        kept++;
      } else {
        dropped = true;
      }
      previousEnd = valueEnd;
    });
    if (!dropped) return row;
    return kept === 0 ? '{}' : out + row.slice(previousEnd);
  }
}

/** Called for each top-level member: its decoded name, and where its name and value lie. */
type MemberVisitor = (name: string, keyStart: number, valueStart: number, valueEnd: number) => void;

const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const QUOTE = 34;
const PLUS = 43;
const COMMA = 44;
const MINUS = 45;
const DOT = 46;
const DIGIT_0 = 48;
const DIGIT_1 = 49;
const DIGIT_9 = 57;
const COLON = 58;
const UPPER_E = 69;
const LBRACKET = 91;
const BACKSLASH = 92;
const RBRACKET = 93;
const LOWER_E = 101;
const LOWER_U = 117;
const LBRACE = 123;
const RBRACE = 125;

/**
 * Visits each top-level member of the JSON object text `s`, validating the whole
 * text on the way (RFC 8259: strings, escapes, numbers, literals, nesting) in one
 * pass without building any value. Nested objects and arrays are walked with an
 * explicit stack of expected closers, so depth costs no call stack.
 */
function scanRow(s: string, visit: MemberVisitor): void {
  let j = skipWhiteSpace(s, 0);
  if (s.charCodeAt(j) !== LBRACE) fail(j, 'expected "{" (a row is a JSON object)');
  j = skipWhiteSpace(s, j + 1);
  if (s.charCodeAt(j) !== RBRACE) {
    for (;;) {
      if (s.charCodeAt(j) !== QUOTE) fail(j, 'expected a member name');
      const keyStart = j;
      j = skipString(s, j);
      const name = decodeName(s, keyStart, j);
      j = skipWhiteSpace(s, j);
      if (s.charCodeAt(j) !== COLON) fail(j, 'expected ":" after a member name');
      const valueStart = skipWhiteSpace(s, j + 1);
      j = skipValue(s, valueStart);
      visit(name, keyStart, valueStart, j);
      j = skipWhiteSpace(s, j);
      const c = s.charCodeAt(j);
      if (c === COMMA) {
        j = skipWhiteSpace(s, j + 1);
      } else if (c === RBRACE) {
        break;
      } else {
        fail(j, 'expected "," or "}" after a member');
      }
    }
  }
  j = skipWhiteSpace(s, j + 1);
  if (j !== s.length) fail(j, 'unexpected text after the object');
}

/** The member name whose quoted text is s[start, end). */
function decodeName(s: string, start: number, end: number): string {
  const raw = s.slice(start + 1, end - 1);
  // Names with escapes (\" \\ \u00e9 …) are rare; the string was validated by
  // skipString, and JSON.parse of one string is the exact JSON decoding.
  return raw.includes('\\') ? (JSON.parse(s.slice(start, end)) as string) : raw;
}

/** The end of the value starting at `start`, a scalar or a whole nested object or array. */
function skipValue(s: string, start: number): number {
  let c = s.charCodeAt(start);
  if (c !== LBRACE && c !== LBRACKET) return skipScalar(s, start);
  const closers: number[] = [];
  let j = start;
  for (;;) {
    // j is at the first character of a value.
    c = s.charCodeAt(j);
    if (c === LBRACE || c === LBRACKET) {
      const close = c === LBRACE ? RBRACE : RBRACKET;
      j = skipWhiteSpace(s, j + 1);
      if (s.charCodeAt(j) !== close) {
        closers.push(close);
        if (close === RBRACE) j = skipNestedName(s, j);
        continue;
      }
      j++;
    } else {
      j = skipScalar(s, j);
    }
    // After a complete value: close what ends here, or move to the next element.
    for (;;) {
      const close = closers[closers.length - 1];
      if (close === undefined) return j;
      j = skipWhiteSpace(s, j);
      const d = s.charCodeAt(j);
      if (d === COMMA) {
        j = skipWhiteSpace(s, j + 1);
        if (close === RBRACE) j = skipNestedName(s, j);
        break;
      }
      if (d !== close) fail(j, close === RBRACE ? 'expected "," or "}" in a nested object' : 'expected "," or "]" in an array');
      closers.pop();
      j++;
    }
  }
}

/** Skips `"name" :` and the white space after it, in a nested object. */
function skipNestedName(s: string, j: number): number {
  if (s.charCodeAt(j) !== QUOTE) fail(j, 'expected a member name in a nested object');
  j = skipWhiteSpace(s, skipString(s, j));
  if (s.charCodeAt(j) !== COLON) fail(j, 'expected ":" after a member name in a nested object');
  return skipWhiteSpace(s, j + 1);
}

function skipScalar(s: string, j: number): number {
  const c = s.charCodeAt(j);
  if (c === QUOTE) return skipString(s, j);
  if (c === MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) return skipNumber(s, j);
  if (s.startsWith('true', j)) return j + 4;
  if (s.startsWith('null', j)) return j + 4;
  if (s.startsWith('false', j)) return j + 5;
  return fail(j, 'expected a value');
}

/** The index after the closing quote of the string whose opening quote is at `start`. */
function skipString(s: string, start: number): number {
  const n = s.length;
  let j = start + 1;
  for (;;) {
    if (j >= n) fail(start, 'unterminated string');
    const c = s.charCodeAt(j);
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH) {
      const e = s.charCodeAt(j + 1);
      if (e === LOWER_U) {
        if (!isHex(s.charCodeAt(j + 2)) || !isHex(s.charCodeAt(j + 3)) || !isHex(s.charCodeAt(j + 4)) || !isHex(s.charCodeAt(j + 5))) {
          fail(j, 'invalid \\u escape (four hex digits expected)');
        }
        j += 6;
      } else if (e === QUOTE || e === BACKSLASH || e === 47 /* / */ || e === 98 /* b */ || e === 102 /* f */ || e === 110 /* n */ || e === 114 /* r */ || e === 116 /* t */) {
        j += 2;
      } else {
        fail(j, 'invalid escape in a string');
      }
    } else if (c < SPACE) {
      fail(j, 'unescaped control character in a string');
    } else {
      j++;
    }
  }
}

/** -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
function skipNumber(s: string, start: number): number {
  let j = start;
  if (s.charCodeAt(j) === MINUS) j++;
  const first = s.charCodeAt(j);
  if (first === DIGIT_0) {
    j++;
  } else if (first >= DIGIT_1 && first <= DIGIT_9) {
    j = skipDigits(s, j + 1);
  } else {
    fail(j, 'invalid number');
  }
  if (s.charCodeAt(j) === DOT) {
    const from = j + 1;
    j = skipDigits(s, from);
    if (j === from) fail(j, 'invalid number (digits expected after ".")');
  }
  const e = s.charCodeAt(j);
  if (e === LOWER_E || e === UPPER_E) {
    j++;
    const sign = s.charCodeAt(j);
    if (sign === PLUS || sign === MINUS) j++;
    const from = j;
    j = skipDigits(s, from);
    if (j === from) fail(j, 'invalid number (digits expected in the exponent)');
  }
  return j;
}

function skipDigits(s: string, j: number): number {
  for (;;) {
    const c = s.charCodeAt(j);
    // Written so that NaN (past the end) also stops.
    if (!(c >= DIGIT_0 && c <= DIGIT_9)) return j;
    j++;
  }
}

function skipWhiteSpace(s: string, j: number): number {
  for (;;) {
    const c = s.charCodeAt(j);
    if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return j;
    j++;
  }
}

function isHex(c: number): boolean {
  return (c >= DIGIT_0 && c <= DIGIT_9) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** The message names the offset and what was expected, never the row's text (it may hold what `exclude` hides). */
function fail(at: number, what: string): never {
  throw new AppError('ROW_NOT_JSON_OBJECT', `row text is not a valid JSON object: ${what} at offset ${at}`, {
    hint: 'rows come from the database JSON serialiser; report this as a bug with the table definition',
  });
}
