/** The pgoutput and replication-protocol decoding of log capture, on hand-built messages. */
import { describe, expect, it } from 'vitest';
import {
  UNCHANGED,
  formatLsn,
  parseLogicalMessage,
  parseLsn,
  parseStreamMessage,
  pgTimeToIso,
  standbyStatusUpdate,
} from '../../src/capture/postgres/logical/protocol.js';

const u8 = (n: number) => Buffer.from([n]);
const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
const str = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), u8(0)]);
const ch = (c: string) => Buffer.from(c, 'latin1');
const text = (s: string) => Buffer.concat([ch('t'), i32(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);

describe('pgoutput messages', () => {
  it('decodes Begin and Commit with their LSNs, time and xid', () => {
    expect(parseLogicalMessage(Buffer.concat([ch('B'), u64(0x16b374d848n), u64(0n), i32(731)]))).toEqual({
      tag: 'begin',
      finalLsn: 0x16b374d848n,
      commitTimeUs: 0n,
      xid: 731,
    });
    expect(parseLogicalMessage(Buffer.concat([ch('C'), u8(0), u64(10n), u64(20n), u64(1_000_000n)]))).toEqual({
      tag: 'commit',
      commitLsn: 10n,
      endLsn: 20n,
      commitTimeUs: 1_000_000n,
    });
  });

  it('decodes a Relation with its columns, type OIDs and typmods', () => {
    const m = parseLogicalMessage(
      Buffer.concat([ch('R'), i32(16384), str('public'), str('Orders'), ch('f'), i16(2), u8(1), str('id'), i32(20), i32(-1), u8(0), str('total'), i32(1700), i32(786438)]),
    );
    expect(m).toEqual({
      tag: 'relation',
      relid: 16384,
      schema: 'public',
      name: 'Orders',
      replicaIdentity: 'f',
      columns: [
        { name: 'id', typeOid: 20, typmod: -1, key: true },
        { name: 'total', typeOid: 1700, typmod: 786438, key: false },
      ],
    });
  });

  it('decodes an Update with the old row, a null and an unchanged TOASTed value', () => {
    const tuple = (...values: Buffer[]) => Buffer.concat([i16(values.length), ...values]);
    const m = parseLogicalMessage(Buffer.concat([ch('U'), i32(7), ch('O'), tuple(text('1'), text('h\u00e9'), ch('n')), ch('N'), tuple(text('1'), ch('u'), text('12.50'))]));
    expect(m).toEqual({ tag: 'update', relid: 7, oldKind: 'O', oldTuple: ['1', 'h\u00e9', null], newTuple: ['1', UNCHANGED, '12.50'] });
  });

  it('decodes a Truncate of several relations with its options', () => {
    expect(parseLogicalMessage(Buffer.concat([ch('T'), i32(2), u8(3), i32(7), i32(8)]))).toEqual({ tag: 'truncate', relids: [7, 8], cascade: true, restartIdentity: true });
  });

  it('decodes keepalives and XLogData frames', () => {
    expect(parseStreamMessage(Buffer.concat([ch('k'), u64(99n), u64(0n), u8(1)]))).toEqual({ tag: 'keepalive', walEnd: 99n, replyRequested: true });
    const frame = parseStreamMessage(Buffer.concat([ch('w'), u64(1n), u64(2n), u64(0n), ch('B'), u64(5n), u64(0n), i32(1)]));
    expect(frame).toMatchObject({ tag: 'xlogdata', startLsn: 1n, walEnd: 2n, message: { tag: 'begin', finalLsn: 5n } });
  });
});

describe('positions and times', () => {
  it('reads and prints LSNs as PostgreSQL does', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(formatLsn(0n)).toBe('0/0');
    expect(() => parseLsn('16-B3')).toThrow(/not an LSN/);
  });

  it('writes a standby status update confirming one position three times', () => {
    const b = standbyStatusUpdate(0x10n, Date.UTC(2000, 0, 1));
    expect(b.length).toBe(34);
    expect(b.toString('latin1', 0, 1)).toBe('r');
    expect([b.readBigUInt64BE(1), b.readBigUInt64BE(9), b.readBigUInt64BE(17)]).toEqual([0x10n, 0x10n, 0x10n]);
    expect(b.readBigInt64BE(25)).toBe(0n);
  });

  it('turns a commit time into exact UTC text with microseconds', () => {
    expect(pgTimeToIso(0n)).toBe('2000-01-01T00:00:00.000000Z');
    expect(pgTimeToIso(123_456_789n)).toBe('2000-01-01T00:02:03.456789Z');
    // Same second, the next second, back, and before the epoch of 1970.
    expect(pgTimeToIso(123_000_001n)).toBe('2000-01-01T00:02:03.000001Z');
    expect(pgTimeToIso(124_999_999n)).toBe('2000-01-01T00:02:04.999999Z');
    expect(pgTimeToIso(123_456_789n)).toBe('2000-01-01T00:02:03.456789Z');
    expect(pgTimeToIso(-946_684_800_000_001n)).toBe('1969-12-31T23:59:59.999999Z');
    expect(pgTimeToIso(851_000_000_000_000n)).toBe('2026-12-19T12:53:20.000000Z');
  });
});
