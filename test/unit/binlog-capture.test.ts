/** The binlog reader's pure parts: column mapping, the settings it needs, lag in bytes, TRUNCATE statements. */
import { describe, expect, it } from 'vitest';
import { capturedColumn, capturedColumns, FieldType, timeValue, type BinlogColumn } from '../../src/capture/mysql/binlog/columns.js';
import { compareFiles, comparePositions, truncatedTable } from '../../src/capture/mysql/binlog/reader.js';
import { binlogSettingProblems, bytesAfter, describeBinlogSettings, type BinlogSettings } from '../../src/capture/mysql/binlog/settings.js';
import { columnValueSql, type MySqlColumn } from '../../src/capture/mysql/triggers.js';

const col = (type: number, o: Partial<BinlogColumn> = {}): BinlogColumn => ({ name: 'c', type, charset: null, metadata: undefined, unsigned: false, ...o });
const current = (o: Partial<MySqlColumn>): MySqlColumn => ({ name: 'c', dataType: 'int', columnType: 'int', charset: null, datetimePrecision: null, json: false, ...o });

describe('binlog columns', () => {
  it('casts each value back to its column type', () => {
    const typed = (c: BinlogColumn, cur?: MySqlColumn) => capturedColumn(c, 'c0', cur).typed;
    expect(typed(col(FieldType.LONGLONG, { unsigned: true }))).toBe('CAST(? AS UNSIGNED)');
    expect(typed(col(FieldType.TINY))).toBe('CAST(? AS SIGNED)');
    expect(typed(col(FieldType.NEWDECIMAL, { metadata: { precision: 12, decimals: 2 } }))).toBe('CAST(? AS DECIMAL(12,2))');
    expect(typed(col(FieldType.FLOAT))).toBe('CAST(? AS FLOAT)');
    expect(typed(col(FieldType.DATETIME2, { metadata: { decimals: 6 } }))).toBe('CAST(? AS DATETIME(6))');
    expect(typed(col(FieldType.TIME2, { metadata: { decimals: 3 } }))).toBe('CAST(? AS TIME(3))');
    expect(typed(col(FieldType.VARCHAR, { charset: 'latin1' }))).toBe('CONVERT(? USING latin1)');
    expect(typed(col(FieldType.VARCHAR, { charset: 'utf8' }))).toBe('CONVERT(? USING utf8mb3)');
    expect(typed(col(FieldType.BLOB, { charset: 'utf8mb4' }))).toBe('CAST(? AS CHAR CHARACTER SET utf8mb4)');
    expect(typed(col(FieldType.BLOB))).toBe('?');
    // MariaDB's UUID arrives as BINARY(16): the table as it is now says what it is.
    expect(typed(col(FieldType.STRING), current({ dataType: 'uuid' }))).toBe('CAST(? AS UUID)');
  });

  it('reads each value with the trigger expression of its type', () => {
    const expr = (c: BinlogColumn, cur?: MySqlColumn) => {
      const d = capturedColumn(c, 'c0', cur).derived;
      return columnValueSql(d, 'b');
    };
    expect(expr(col(FieldType.TIMESTAMP2, { metadata: { decimals: 3 } }))).toContain('UNIX_TIMESTAMP(b.`c0`)');
    expect(expr(col(FieldType.DATETIME2))).toBe('CAST(b.`c0` AS CHAR)');
    expect(expr(col(FieldType.BLOB))).toContain('TO_BASE64(b.`c0`)');
    expect(expr(col(FieldType.JSON))).toBe("JSON_EXTRACT(b.`c0`, '$')");
    // MariaDB's JSON is a LONGTEXT: nested JSON only when the table says it is JSON.
    expect(expr(col(FieldType.BLOB, { charset: 'utf8mb4' }), current({ json: true }))).toBe("JSON_EXTRACT(b.`c0`, '$')");
    expect(expr(col(FieldType.BLOB, { charset: 'utf8mb4' }))).toBe('b.`c0`');
    expect(expr(col(FieldType.VARCHAR, { charset: 'latin1' }))).toBe('CONVERT(b.`c0` USING utf8mb4)');
  });

  it('encodes values as parameters: exact numbers as text, BIT as its unsigned value, bytes as bytes', () => {
    expect(capturedColumn(col(FieldType.LONGLONG, { unsigned: true }), 'c0', undefined).encode('18446744073709551615')).toBe('18446744073709551615');
    expect(capturedColumn(col(FieldType.LONG), 'c0', undefined).encode(-5)).toBe('-5');
    expect(capturedColumn(col(FieldType.BIT), 'c0', undefined).encode(Buffer.from([0x02, 0x01]))).toBe('513');
    expect(capturedColumn(col(FieldType.FLOAT), 'c0', undefined).encode(0.10000000149011612)).toBe('0.10000000149011612');
    const bytes = Buffer.from([0, 255]);
    expect(capturedColumn(col(FieldType.BLOB), 'c0', undefined).encode(bytes)).toBe(bytes);
    expect(capturedColumn(col(FieldType.LONG), 'c0', undefined).encode(null)).toBeNull();
    expect(capturedColumn(col(FieldType.LONG), 'c0', undefined).encode(undefined)).toBeNull();
  });

  it('carries the seconds of a negative TIME the library decodes without the carry', () => {
    expect(timeValue('-12:34:64')).toBe('-12:35:00');
    expect(timeValue('-00:63:64')).toBe('-01:00:00');
    expect(timeValue('-838:58:64')).toBe('-838:59:00');
    expect(timeValue('-12:34:56.789')).toBe('-12:34:56.789');
    expect(timeValue('12:34:56')).toBe('12:34:56');
    expect(timeValue(null)).toBeNull();
  });

  it('gives YEAR 0000 back as 0 (the library reports 1900)', () => {
    const year = capturedColumn(col(FieldType.YEAR), 'c0', undefined);
    expect(year.encode(1900)).toBe('0');
    expect(year.encode(2026)).toBe('2026');
  });

  it('names the columns of a TABLE_MAP c0, c1, … and keeps their names at commit', () => {
    const cols = capturedColumns([col(FieldType.LONG, { name: 'id' }), col(FieldType.VARCHAR, { name: 'renamed', charset: 'utf8mb4' })], new Map());
    expect(cols.map((c) => [c.name, c.derived.name])).toEqual([
      ['id', 'c0'],
      ['renamed', 'c1'],
    ]);
  });

  it('refuses a type it does not know, and a character set name that is not an identifier', () => {
    expect(() => capturedColumn(col(200), 'c0', undefined)).toThrow(/binlog type \(200\)/);
    expect(() => capturedColumn(col(FieldType.VARCHAR, { charset: 'x; DROP' }), 'c0', undefined)).toThrow(/character set name/);
  });
});

describe('binlog settings', () => {
  const ready: BinlogSettings = { logBin: true, format: 'ROW', rowImage: 'FULL', rowMetadata: 'FULL', serverId: 1, expireSeconds: 864_000 };

  it('finds nothing missing on a ready server', () => {
    expect(binlogSettingProblems(ready)).toEqual([]);
    expect(describeBinlogSettings(ready)).toBeUndefined();
  });

  it('names each missing setting with its fix', () => {
    const problems = binlogSettingProblems({ ...ready, logBin: false, format: 'MIXED', rowImage: 'MINIMAL', rowMetadata: 'MINIMAL', serverId: 0 });
    expect(problems.map((p) => p.message)).toEqual([
      'the binary log is off (log_bin)',
      'server_id is 0: the server accepts no binlog reader',
      'binlog_format is MIXED, not ROW: the binary log holds statements, not the rows they changed',
      'binlog_row_image is MINIMAL, not FULL: updates and deletes would come without every column',
      'binlog_row_metadata is MINIMAL, not FULL: the binary log does not name the columns a row had when it was written',
    ]);
    expect(problems.map((p) => p.hint).join('\n')).toContain('SET GLOBAL binlog_row_metadata = FULL');
    expect(binlogSettingProblems({ ...ready, rowMetadata: undefined })[0]!.hint).toContain('MySQL 8.0.1+ or MariaDB 10.5+');
    expect(binlogSettingProblems({ ...ready, compressed: true })[0]!.hint).toBe(
      'SET GLOBAL binlog_transaction_compression = OFF, and set it in the server configuration',
    );
  });

  it('measures the lag in bytes across binlog files', () => {
    const logs = [
      { name: 'b.000001', size: 1000 },
      { name: 'b.000002', size: 500 },
      { name: 'b.000003', size: 200 },
    ];
    expect(bytesAfter({ file: 'b.000002', position: 100 }, logs)).toBe(600);
    expect(bytesAfter({ file: 'b.000003', position: 200 }, logs)).toBe(0);
    // A file the server no longer has: the place is lost.
    expect(bytesAfter({ file: 'b.000000', position: 4 }, logs)).toBeUndefined();
  });
});

describe('TRUNCATE statements', () => {
  it('finds the table a TRUNCATE empties, quoted or not, with or without its database', () => {
    expect(truncatedTable('TRUNCATE TABLE orders', 'shop')).toEqual({ schema: 'shop', table: 'orders' });
    expect(truncatedTable('truncate `my db`.`odd``name`;', 'shop')).toEqual({ schema: 'my db', table: 'odd`name' });
    expect(truncatedTable('TRUNCATE orders', 'shop')).toEqual({ schema: 'shop', table: 'orders' });
    expect(truncatedTable('TRUNCATE TABLE a.b', 'x')).toEqual({ schema: 'a', table: 'b' });
  });

  it('ignores any other statement', () => {
    expect(truncatedTable('ALTER TABLE orders ADD COLUMN x INT', 'shop')).toBeUndefined();
    expect(truncatedTable('DELETE FROM orders', 'shop')).toBeUndefined();
    expect(truncatedTable('TRUNCATE TABLE a, b', 'shop')).toBeUndefined();
  });
});

describe('binlog file order', () => {
  it('orders files by their number, past six digits', () => {
    expect(compareFiles('binlog.000009', 'binlog.000003')).toBeGreaterThan(0);
    expect(compareFiles('binlog.000003', 'binlog.000003')).toBe(0);
    expect(compareFiles('binlog.999999', 'binlog.1000000')).toBeLessThan(0);
    expect(compareFiles('mysql-bin.000010', 'mysql-bin.000002')).toBeGreaterThan(0);
  });

  it('orders positions by file, then offset', () => {
    expect(comparePositions({ file: 'binlog.1000000', position: 4 }, { file: 'binlog.999999', position: 9_000 })).toBeGreaterThan(0);
    expect(comparePositions({ file: 'binlog.000003', position: 120 }, { file: 'binlog.000003', position: 450 })).toBeLessThan(0);
    expect(comparePositions({ file: 'binlog.000003', position: 450 }, { file: 'binlog.000003', position: 450 })).toBe(0);
  });
});
