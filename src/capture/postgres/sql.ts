/** Quoting for the few places where SQL must name an identifier from config. */

/** Quotes a PostgreSQL identifier: `My "Table"` -> `"My ""Table"""`. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new Error('empty SQL identifier');
  if (name.includes('\u0000')) throw new Error('SQL identifier contains a NUL character');
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes a PostgreSQL string literal (standard_conforming_strings, the default since 9.1). */
export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) throw new Error('SQL literal contains a NUL character');
  return `'${value.replace(/'/g, "''")}'`;
}

/** `schema.table`, both quoted. */
export function qualify(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}
