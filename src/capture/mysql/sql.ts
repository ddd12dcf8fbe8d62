/**
 * Quoting for the few places where MySQL/MariaDB SQL must name an identifier or
 * hold a constant we generate (installer and triggers). Runtime values are always
 * parameters; these helpers never see them.
 */

/** Longest identifier MySQL and MariaDB accept (tables, columns, triggers), in characters. */
export const MAX_IDENTIFIER_LENGTH = 64;

/** Quotes an identifier in backquotes, doubling any inside (my`t -> `my``t`). Rejects NUL, which no name may hold. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new Error('empty SQL identifier');
  if (name.includes('\u0000')) throw new Error('SQL identifier contains a NUL character');
  return '`' + name.replace(/`/g, '``') + '`';
}

/** `database`.`name`, both quoted. */
export function qualify(database: string, name: string): string {
  return `${quoteIdent(database)}.${quoteIdent(name)}`;
}

/**
 * Quotes a string literal. The statements that carry these literals (our migration,
 * the triggers) run with a sql_mode we set, without NO_BACKSLASH_ESCAPES, so a
 * backslash is escaped as `\\`; a quote is doubled. NUL and other control
 * characters are escaped so the printed SQL stays on its lines.
 */
export function quoteLiteral(value: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = value.replace(/[\\'\u0000\n\r\u001a]/g, (c) => {
    switch (c) {
      case '\\':
        return '\\\\';
      case "'":
        return "''";
      case '\u0000':
        return '\\0';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      default:
        return '\\Z';
    }
  });
  return `'${escaped}'`;
}

/**
 * Splits a script into statements at the semicolons that are outside quotes,
 * backquotes and comments. Our scripts hold no compound statements (no
 * BEGIN … END, no DELIMITER), so this is all the parsing they need: each
 * statement is sent on its own, since a connection need not allow several
 * statements per query. Comment-only pieces are dropped.
 */
export function splitStatements(script: string): string[] {
  const out: string[] = [];
  let current = '';
  let i = 0;
  const n = script.length;
  while (i < n) {
    const c = script[i]!;
    const next = script[i + 1];
    if (c === "'" || c === '"' || c === '`') {
      // A quoted run; a doubled quote, or (not for backquotes) a backslash escape, stays inside.
      let j = i + 1;
      while (j < n) {
        const d = script[j]!;
        if (d === '\\' && c !== '`') {
          j += 2;
          continue;
        }
        if (d === c) {
          if (script[j + 1] === c) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      current += script.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if ((c === '-' && next === '-' && /\s/.test(script[i + 2] ?? ' ')) || c === '#') {
      const end = script.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      current += '\n';
      continue;
    }
    if (c === '/' && next === '*') {
      const end = script.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
      current += ' ';
      continue;
    }
    if (c === ';') {
      if (current.trim() !== '') out.push(current.trim());
      current = '';
      i++;
      continue;
    }
    current += c;
    i++;
  }
  if (current.trim() !== '') out.push(current.trim());
  return out;
}
