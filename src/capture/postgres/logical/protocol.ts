/**
 * The streaming replication protocol (the CopyBoth messages of START_REPLICATION)
 * and pgoutput's logical messages, protocol version 1, as documented in "Logical
 * Streaming Replication Protocol" and "Logical Replication Message Formats" of the
 * PostgreSQL manual. Only what the reader uses is decoded; values stay text, exactly
 * as the server's output function wrote them (the journal insert casts them back).
 *
 * LSNs are bigints here: an LSN is an unsigned 64-bit WAL position.
 */

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_US = 946_684_800_000_000n;

/** One column of a relation, as the Relation message describes it. */
export interface RelationColumn {
  readonly name: string;
  readonly typeOid: number;
  readonly typmod: number;
  /** Part of the replica identity (the key, or every column with REPLICA IDENTITY FULL). */
  readonly key: boolean;
}

export interface RelationMessage {
  readonly tag: 'relation';
  readonly relid: number;
  readonly schema: string;
  readonly name: string;
  /** 'd' default (key), 'n' nothing, 'f' full, 'i' index. */
  readonly replicaIdentity: string;
  readonly columns: readonly RelationColumn[];
}

/**
 * One column's value: text, null, or 'unchanged' (a TOASTed value the UPDATE did
 * not touch, which the server does not send again).
 */
export type TupleValue = string | null | typeof UNCHANGED;
export const UNCHANGED: unique symbol = Symbol('unchanged-toast');

export type LogicalMessage =
  | { readonly tag: 'begin'; readonly finalLsn: bigint; readonly commitTimeUs: bigint; readonly xid: number }
  | { readonly tag: 'commit'; readonly commitLsn: bigint; readonly endLsn: bigint; readonly commitTimeUs: bigint }
  | RelationMessage
  | { readonly tag: 'insert'; readonly relid: number; readonly newTuple: readonly TupleValue[] }
  | {
      readonly tag: 'update';
      readonly relid: number;
      /** The old row: every column with REPLICA IDENTITY FULL ('O'), the key only ('K'), or none. */
      readonly oldTuple: readonly TupleValue[] | undefined;
      readonly oldKind: 'O' | 'K' | undefined;
      readonly newTuple: readonly TupleValue[];
    }
  | { readonly tag: 'delete'; readonly relid: number; readonly oldTuple: readonly TupleValue[]; readonly oldKind: 'O' | 'K' }
  | { readonly tag: 'truncate'; readonly relids: readonly number[]; readonly cascade: boolean; readonly restartIdentity: boolean }
  | { readonly tag: 'other'; readonly type: string };

/** A CopyData message of the replication stream. */
export type StreamMessage =
  | { readonly tag: 'xlogdata'; readonly startLsn: bigint; readonly walEnd: bigint; readonly message: LogicalMessage }
  | { readonly tag: 'keepalive'; readonly walEnd: bigint; readonly replyRequested: boolean };

class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  u8(): number {
    return this.buf.readUInt8(this.pos++);
  }
  i16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  /** A NUL-terminated string. */
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new Error('pgoutput: unterminated string');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  bytes(n: number): string {
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  char(): string {
    return String.fromCharCode(this.u8());
  }
}

/** Decodes one CopyData payload of the replication stream. */
export function parseStreamMessage(buf: Buffer): StreamMessage {
  const r = new Reader(buf);
  const kind = r.char();
  if (kind === 'w') {
    const startLsn = r.u64();
    const walEnd = r.u64();
    r.i64(); // send time
    return { tag: 'xlogdata', startLsn, walEnd, message: parseLogicalMessage(buf.subarray(25)) };
  }
  if (kind === 'k') {
    const walEnd = r.u64();
    r.i64();
    return { tag: 'keepalive', walEnd, replyRequested: r.u8() === 1 };
  }
  throw new Error(`replication stream: unexpected message ${JSON.stringify(kind)}`);
}

function tuple(r: Reader): TupleValue[] {
  const n = r.i16();
  const values: TupleValue[] = new Array<TupleValue>(n);
  for (let i = 0; i < n; i++) {
    const kind = r.char();
    if (kind === 'n') values[i] = null;
    else if (kind === 'u') values[i] = UNCHANGED;
    else if (kind === 't') values[i] = r.bytes(r.i32());
    else throw new Error(`pgoutput: unexpected tuple value kind ${JSON.stringify(kind)} (binary mode is not used)`);
  }
  return values;
}

/** Decodes one pgoutput message (protocol version 1). */
export function parseLogicalMessage(buf: Buffer): LogicalMessage {
  const r = new Reader(buf);
  const type = r.char();
  switch (type) {
    case 'B': {
      const finalLsn = r.u64();
      const commitTimeUs = r.i64();
      return { tag: 'begin', finalLsn, commitTimeUs, xid: r.u32() };
    }
    case 'C': {
      r.u8(); // flags, unused
      const commitLsn = r.u64();
      const endLsn = r.u64();
      return { tag: 'commit', commitLsn, endLsn, commitTimeUs: r.i64() };
    }
    case 'R': {
      const relid = r.u32();
      const schema = r.cstring();
      const name = r.cstring();
      const replicaIdentity = r.char();
      const n = r.i16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < n; i++) {
        const flags = r.u8();
        const colName = r.cstring();
        const typeOid = r.u32();
        columns.push({ name: colName, typeOid, typmod: r.i32(), key: (flags & 1) === 1 });
      }
      return { tag: 'relation', relid, schema, name, replicaIdentity, columns };
    }
    case 'I': {
      const relid = r.u32();
      r.char(); // 'N'
      return { tag: 'insert', relid, newTuple: tuple(r) };
    }
    case 'U': {
      const relid = r.u32();
      let kind = r.char();
      let oldTuple: TupleValue[] | undefined;
      let oldKind: 'O' | 'K' | undefined;
      if (kind === 'O' || kind === 'K') {
        oldKind = kind;
        oldTuple = tuple(r);
        kind = r.char();
      }
      if (kind !== 'N') throw new Error(`pgoutput: update without a new tuple (${JSON.stringify(kind)})`);
      return { tag: 'update', relid, oldTuple, oldKind, newTuple: tuple(r) };
    }
    case 'D': {
      const relid = r.u32();
      const kind = r.char();
      if (kind !== 'O' && kind !== 'K') throw new Error(`pgoutput: delete without an old tuple (${JSON.stringify(kind)})`);
      return { tag: 'delete', relid, oldKind: kind, oldTuple: tuple(r) };
    }
    case 'T': {
      const n = r.i32();
      const options = r.u8();
      const relids: number[] = [];
      for (let i = 0; i < n; i++) relids.push(r.u32());
      return { tag: 'truncate', relids, cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2 };
    }
    default:
      // 'O' origin, 'Y' type, 'M' message: nothing the journal needs.
      return { tag: 'other', type };
  }
}

/** The Standby Status Update that confirms everything up to `lsn` (written, flushed and applied). */
export function standbyStatusUpdate(lsn: bigint, nowMs: number = Date.now(), replyRequested = false): Buffer {
  const buf = Buffer.alloc(34);
  buf.write('r', 0);
  buf.writeBigUInt64BE(lsn, 1);
  buf.writeBigUInt64BE(lsn, 9);
  buf.writeBigUInt64BE(lsn, 17);
  buf.writeBigInt64BE(BigInt(nowMs) * 1000n - PG_EPOCH_US, 25);
  buf.writeUInt8(replyRequested ? 1 : 0, 33);
  return buf;
}

/** `16/B374D848` -> bigint. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** bigint -> `16/B374D848`, as PostgreSQL prints a pg_lsn. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** A commit time of the protocol (µs since 2000-01-01) as milliseconds since the Unix epoch. */
export function pgTimeToMs(us: bigint): number {
  return Number((us + PG_EPOCH_US) / 1000n);
}

let isoSecond: bigint | undefined;
let isoSecondText = '';

/** A commit time of the protocol as timestamptz text with microseconds (exact, UTC). */
export function pgTimeToIso(us: bigint): string {
  const unixUs = us + PG_EPOCH_US;
  let second = unixUs / 1_000_000n; // toward zero
  if (unixUs < second * 1_000_000n) second -= 1n; // floor, before 1970
  // One Date per second of commits, not per transaction (one per change for single-row writers).
  if (second !== isoSecond) {
    isoSecond = second;
    isoSecondText = new Date(Number(second) * 1000).toISOString().slice(0, 19);
  }
  return `${isoSecondText}.${String(Number(unixUs - second * 1_000_000n)).padStart(6, '0')}Z`;
}
