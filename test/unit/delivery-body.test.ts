import { describe, expect, it } from 'vitest';
import { buildBody, type BodyInput } from '../../src/delivery/body.js';

const NEW = '{"id": 1, "big": 9007199254740993, "price": 12.50, "name": "Zoé"}';
const OLD = '{"id": 1, "big": 9007199254740992, "price": 11.00, "name": "Zoe"}';
const base = {
  eventId: '01J0000000000000000000000',
  schema: 'public',
  table: 'users',
  timestamp: '2026-11-26T17:58:54.117181Z',
};
const head = '{"id":"01J0000000000000000000000","operation":';
const tail = ',"schema":"public","table":"users","timestamp":"2026-11-26T17:58:54.117181Z"';

describe('buildBody', () => {
  it.each<[string, BodyInput, string]>([
    [
      'TRUNCATE (log capture): no rows',
      { ...base, op: 'TRUNCATE', newRow: null, oldRow: null },
      `${head}"TRUNCATE"${tail},"data":null,"old_data":null}`,
    ],
    [
      'INSERT: data is the new row, old_data null',
      { ...base, op: 'INSERT', newRow: NEW, oldRow: null },
      `${head}"INSERT"${tail},"data":${NEW},"old_data":null}`,
    ],
    [
      'UPDATE: data is the new row, old_data the old row',
      { ...base, op: 'UPDATE', newRow: NEW, oldRow: OLD },
      `${head}"UPDATE"${tail},"data":${NEW},"old_data":${OLD}}`,
    ],
    [
      'DELETE: data is the OLD row, old_data null',
      { ...base, op: 'DELETE', newRow: null, oldRow: OLD },
      `${head}"DELETE"${tail},"data":${OLD},"old_data":null}`,
    ],
    [
      'INSERT ignores an old row if one is given',
      { ...base, op: 'INSERT', newRow: NEW, oldRow: OLD },
      `${head}"INSERT"${tail},"data":${NEW},"old_data":null}`,
    ],
    [
      'a missing row becomes null, still valid JSON',
      { ...base, op: 'UPDATE', newRow: NEW, oldRow: null },
      `${head}"UPDATE"${tail},"data":${NEW},"old_data":null}`,
    ],
  ])('%s', (_name, input, expected) => {
    const body = buildBody(input);
    expect(body).toBe(expected);
    expect(() => JSON.parse(body) as unknown).not.toThrow();
  });

  it('keeps numbers exactly as the database wrote them (never parsed)', () => {
    const body = buildBody({ ...base, op: 'UPDATE', newRow: NEW, oldRow: OLD });
    expect(body).toContain('"big": 9007199254740993');
    expect(body).toContain('"price": 12.50');
    expect(body).toContain('"price": 11.00');
    // Proof the check is meaningful: a parse round trip would have lost both.
    expect(JSON.stringify(JSON.parse(body))).not.toContain('9007199254740993');
    expect(JSON.stringify(JSON.parse(body))).not.toContain('12.50');
  });

  it('keeps key order, nested JSON and arrays as written', () => {
    const row = '{"z": 1, "a": {"nested": [1, 2, {"k": null}]}, "m": [], "t": "2026-11-26 18:00:33.268907+00"}';
    const body = buildBody({ ...base, op: 'INSERT', newRow: row, oldRow: null });
    expect(body).toContain(`"data":${row},`);
  });

  it('escapes our own strings: unicode and <>&" survive in ids, schema and table', () => {
    const body = buildBody({
      eventId: 'id "quoted" <x>&',
      op: 'INSERT',
      schema: 'sché"ma',
      table: 'tâble\\<&>',
      timestamp: base.timestamp,
      newRow: '{"s": "<>&\\"", "u": "Zoé 日本 😀"}',
      oldRow: null,
    });
    const parsed = JSON.parse(body) as Record<string, unknown>;
    expect(parsed.id).toBe('id "quoted" <x>&');
    expect(parsed.schema).toBe('sché"ma');
    expect(parsed.table).toBe('tâble\\<&>');
    expect(parsed.data).toEqual({ s: '<>&"', u: 'Zoé 日本 😀' });
    expect(body).toContain('"u": "Zoé 日本 😀"');
  });

  it('handles a 1 MB row', () => {
    const big = 'x'.repeat(1024 * 1024);
    const row = `{"id": 9007199254740993, "blob": "${big}"}`;
    const body = buildBody({ ...base, op: 'INSERT', newRow: row, oldRow: null });
    expect(body.length).toBe(`${head}"INSERT"${tail},"data":,"old_data":null}`.length + row.length);
    expect(body).toContain('"id": 9007199254740993');
    expect((JSON.parse(body) as { data: { blob: string } }).data.blob).toHaveLength(1024 * 1024);
  });
});
