import { CloudEvent, HTTP, type Message } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import { buildBody, type BodyInput } from '../../src/delivery/body.js';
import { compileColumnSelector } from '../../src/delivery/columns.js';
import {
  buildEventType,
  buildSource,
  buildSubject,
  canBatch,
  compileFormatter,
  compileSubjectReader,
  CONTENT_TYPES,
  encodeHeaderValue,
  FORMAT_HEADERS,
  joinBatch,
  type FormatInput,
  type FormatOperation,
  type FormattedEvent,
  type PayloadFormat,
} from '../../src/delivery/formats.js';

const NEW = '{"id": 9007199254740993, "status": "paid", "total": 12.50, "card_token": "tok_1", "meta": {"a": [1, {"b": null}]}, "name": "Zoé 日本 😀"}';
const OLD = '{"id": 9007199254740993, "status": "open", "total": 11.00, "card_token": "tok_0", "meta": {}, "name": "Zoe"}';
const TIME = '2026-11-26T17:58:54.117181Z';

function input(op: FormatOperation, over: Partial<FormatInput> = {}): FormatInput {
  return {
    eventId: 'evt_01J0000000000000000000000',
    op,
    schema: 'public',
    table: 'orders',
    timestamp: TIME,
    newRow: op === 'DELETE' ? null : NEW,
    oldRow: op === 'INSERT' || op === 'READ' ? null : OLD,
    subject: '9007199254740993',
    ...over,
  };
}

/** What a receiver gets: the headers of the request, content-type included. */
function message(out: FormattedEvent): Message {
  return { headers: { 'content-type': out.contentType, ...out.headers }, body: out.body };
}

/** Parses one event with the SDK and runs its schema validation. */
function toEvent(out: FormattedEvent): CloudEvent<unknown> {
  const ev = HTTP.toEvent(message(out));
  expect(ev).toBeInstanceOf(CloudEvent);
  const event = ev as CloudEvent<unknown>;
  expect(event.validate()).toBe(true);
  return event;
}

/** The HTTP binding's decoding of a header value: one round of percent-decoding (the SDK does none). */
function decodeHeader(value: string): string {
  return decodeURIComponent(value);
}

const OPS: readonly [FormatOperation, string][] = [
  ['INSERT', 'com.app-db-listener.row.inserted'],
  ['UPDATE', 'com.app-db-listener.row.updated'],
  ['DELETE', 'com.app-db-listener.row.deleted'],
  ['TRUNCATE', 'com.app-db-listener.row.truncated'],
  ['READ', 'com.app-db-listener.row.read'],
];

describe('format original', () => {
  it.each(['INSERT', 'UPDATE', 'DELETE'] as const)('%s: byte-identical to buildBody, application/json, no headers', (op) => {
    const e = input(op, { oldRow: OLD, newRow: NEW });
    for (const columns of [undefined, compileColumnSelector(undefined, ['id'])]) {
      const out = compileFormatter({ format: 'original', database: 'shop', columns })(e);
      expect(out.body).toBe(buildBody({ ...e, op }));
      expect(out.contentType).toBe('application/json');
      expect(out.headers).toEqual({});
    }
  });

  it('READ: the INSERT shape with operation READ', () => {
    const out = compileFormatter({ format: 'original', database: 'shop' })(input('READ'));
    expect(out.body).toBe(buildBody({ ...input('INSERT'), op: 'INSERT' }).replace('"operation":"INSERT"', '"operation":"READ"'));
  });

  it.each(['INSERT', 'UPDATE', 'DELETE', 'READ'] as const)('%s: the columns selection applies to the rows sent', (op) => {
    const columns = compileColumnSelector({ exclude: ['card_token', 'meta'] }, ['id']);
    const body = compileFormatter({ format: 'original', database: 'shop', columns })(input(op, { newRow: NEW, oldRow: OLD })).body;
    const parsed = JSON.parse(body) as { data: Record<string, unknown>; old_data: Record<string, unknown> | null };
    expect(Object.keys(parsed.data)).toEqual(['id', 'status', 'total', 'name']);
    if (op === 'UPDATE') expect(Object.keys(parsed.old_data ?? {})).toEqual(['id', 'status', 'total', 'name']);
    else expect(parsed.old_data).toBeNull();
    expect(body).not.toContain('tok_');
    expect(body).toContain('"id": 9007199254740993');
    expect(body).toContain(op === 'DELETE' ? '"total": 11.00' : '"total": 12.50');
  });

  it('does not scan a row the body does not carry (INSERT old row, DELETE new row)', () => {
    const columns = compileColumnSelector({ include: ['status'] }, ['id']);
    const format = compileFormatter({ format: 'original', database: 'shop', columns });
    expect(() => format(input('INSERT', { oldRow: 'not json' }))).not.toThrow();
    expect(() => format(input('DELETE', { newRow: 'not json' }))).not.toThrow();
    expect(() => format(input('UPDATE', { oldRow: 'not json' }))).toThrow(/not a valid JSON object/);
  });
});

describe('format cloudevents (structured)', () => {
  it('writes the exact event text, data spliced in raw', () => {
    const out = compileFormatter({ format: 'cloudevents', database: 'shop' })(input('UPDATE'));
    expect(out.contentType).toBe('application/cloudevents+json; charset=utf-8');
    expect(out.headers).toEqual({});
    expect(out.body).toBe(
      '{"specversion":"1.0","id":"evt_01J0000000000000000000000","source":"app-db-listener://shop/public.orders",' +
        `"type":"com.app-db-listener.row.updated","time":"${TIME}","subject":"9007199254740993",` +
        `"datacontenttype":"application/json","data":${buildBody({ ...input('UPDATE'), op: 'UPDATE' })}}`,
    );
  });

  it.each(OPS)('%s: the SDK parses and validates it, type %s', (op, type) => {
    const out = compileFormatter({ format: 'cloudevents', database: 'shop' })(input(op));
    const ev = toEvent(out);
    expect(ev.specversion).toBe('1.0');
    expect(ev.id).toBe('evt_01J0000000000000000000000');
    expect(ev.source).toBe('app-db-listener://shop/public.orders');
    expect(ev.type).toBe(type);
    expect(ev.subject).toBe('9007199254740993');
    expect(ev.datacontenttype).toBe('application/json');
    expect((ev.data as { operation: string }).operation).toBe(op);
  });

  it('keeps row values exact in the raw text; the SDK parses data with JSON.parse and loses them', () => {
    const out = compileFormatter({ format: 'cloudevents', database: 'shop' })(input('INSERT'));
    expect(out.body).toContain(`"data":${NEW},"old_data":null}}`);
    const data = toEvent(out).data as { data: { id: number; total: number } };
    // The SDK 10.0.0 (without CE_USE_BIG_INT=true) reads numbers as JS numbers:
    // the attributes are checked with the SDK, the values on our own text.
    expect(data.data.id).toBe(9007199254740992);
    expect(String(data.data.total)).toBe('12.5');
  });

  it('the SDK cuts time to milliseconds; the text carries the database microseconds', () => {
    const out = compileFormatter({ format: 'cloudevents', database: 'shop' })(input('INSERT'));
    expect(out.body).toContain(`"time":"${TIME}"`);
    expect(toEvent(out).time).toBe('2026-11-26T17:58:54.117Z');
  });

  it('the columns selection applies inside data', () => {
    const columns = compileColumnSelector({ include: ['status'] }, ['id']);
    const out = compileFormatter({ format: 'cloudevents', database: 'shop', columns })(input('UPDATE'));
    expect(out.body).toContain(`"data":{"id": 9007199254740993, "status": "paid"},"old_data":{"id": 9007199254740993, "status": "open"}}}`);
    const data = toEvent(out).data as { data: object; old_data: object };
    expect(Object.keys(data.data)).toEqual(['id', 'status']);
    expect(Object.keys(data.old_data)).toEqual(['id', 'status']);
  });

  it('a configured source and type prefix', () => {
    const format = compileFormatter({ format: 'cloudevents', database: 'shop', source: 'https://shop.example/db', typePrefix: 'com.example.shop' });
    const ev = toEvent(format(input('DELETE')));
    expect(ev.source).toBe('https://shop.example/db');
    expect(ev.type).toBe('com.example.shop.deleted');
  });

  it('omits subject when it is unknown or empty (CloudEvents requires a non-empty one)', () => {
    const format = compileFormatter({ format: 'cloudevents', database: 'shop' });
    for (const subject of [undefined, '']) {
      const out = format(input('INSERT', { subject }));
      expect(out.body).not.toContain('"subject"');
      expect(toEvent(out).subject).toBeUndefined();
    }
  });

  it('unicode and quotes in ids, names and the subject', () => {
    const format = compileFormatter({ format: 'cloudevents', database: 'bóutique' });
    const out = format(input('INSERT', { eventId: 'evt_"é"', schema: 'vente', table: 'commandes_été', subject: 'Zoé,1' }));
    const ev = toEvent(out);
    expect(ev.id).toBe('evt_"é"');
    expect(ev.subject).toBe('Zoé,1');
    expect(ev.source).toBe('app-db-listener://b%C3%B3utique/vente.commandes_%C3%A9t%C3%A9');
    expect((ev.data as { table: string }).table).toBe('commandes_été');
  });
});

describe('format cloudevents-binary', () => {
  it('sends the original body with ce-* headers', () => {
    const out = compileFormatter({ format: 'cloudevents-binary', database: 'shop' })(input('UPDATE'));
    expect(out.body).toBe(buildBody({ ...input('UPDATE'), op: 'UPDATE' }));
    expect(out.contentType).toBe('application/json');
    expect(out.headers).toEqual({
      'ce-specversion': '1.0',
      'ce-id': 'evt_01J0000000000000000000000',
      'ce-source': 'app-db-listener://shop/public.orders',
      'ce-type': 'com.app-db-listener.row.updated',
      'ce-time': TIME,
      'ce-subject': '9007199254740993',
    });
    expect(Object.keys(out.headers)).toEqual([...FORMAT_HEADERS]);
  });

  it.each(OPS)('%s: the SDK parses and validates it, type %s', (op, type) => {
    const out = compileFormatter({ format: 'cloudevents-binary', database: 'shop' })(input(op));
    const ev = toEvent(out);
    expect(ev.specversion).toBe('1.0');
    expect(ev.id).toBe('evt_01J0000000000000000000000');
    expect(ev.source).toBe('app-db-listener://shop/public.orders');
    expect(ev.type).toBe(type);
    expect(ev.subject).toBe('9007199254740993');
    expect(ev.datacontenttype).toBe('application/json');
    expect((ev.data as { operation: string }).operation).toBe(op);
  });

  it('omits ce-subject when the subject is unknown', () => {
    const out = compileFormatter({ format: 'cloudevents-binary', database: 'shop' })(input('INSERT', { subject: undefined }));
    expect(out.headers).not.toHaveProperty('ce-subject');
    expect(toEvent(out).subject).toBeUndefined();
  });

  it('a unicode database, schema, table and subject round-trip through the headers', () => {
    const e = input('INSERT', { schema: 'ventes été', table: '注文 "x"', subject: 'Zoé 😀', eventId: 'evt é' });
    const binary = compileFormatter({ format: 'cloudevents-binary', database: 'bóutique' })(e);
    const structured = toEvent(compileFormatter({ format: 'cloudevents', database: 'bóutique' })(e));
    for (const value of Object.values(binary.headers)) expect(value).toMatch(/^[\x21\x23\x24\x26-\x7e]*(%[0-9A-F]{2}[\x21\x23\x24\x26-\x7e]*)*$/);
    expect(binary.headers['ce-subject']).toBe('Zo%C3%A9%20%F0%9F%98%80');
    const ev = toEvent(binary);
    // The SDK 10.0.0 does not percent-decode header values: it returns them as
    // sent (still a valid URI reference). A receiver that decodes as the HTTP
    // binding says gets the structured attributes back exactly.
    expect(ev.source).toBe(binary.headers['ce-source']);
    expect(decodeHeader(ev.source)).toBe(structured.source);
    expect(decodeHeader(ev.subject as string)).toBe('Zoé 😀');
    expect(decodeHeader(ev.id)).toBe('evt é');
    expect(decodeHeader(ev.type)).toBe(structured.type);
  });

  it('the columns selection applies to the body; values stay exact', () => {
    const columns = compileColumnSelector({ exclude: ['card_token'] }, ['id']);
    const out = compileFormatter({ format: 'cloudevents-binary', database: 'shop', columns })(input('INSERT'));
    expect(out.body).toContain('"data":{"id": 9007199254740993, "status": "paid", "total": 12.50, "meta": {"a": [1, {"b": null}]}, "name": "Zoé 日本 😀"},');
    expect(Object.keys((toEvent(out).data as { data: object }).data)).toEqual(['id', 'status', 'total', 'meta', 'name']);
  });

  it('a configured source and type prefix are header-encoded', () => {
    const format = compileFormatter({ format: 'cloudevents-binary', database: 'shop', source: '/shop/ventes été', typePrefix: 'com.example.shop' });
    const out = format(input('UPDATE'));
    expect(out.headers['ce-source']).toBe('/shop/ventes%20%C3%A9t%C3%A9');
    expect(out.headers['ce-type']).toBe('com.example.shop.updated');
    expect(decodeHeader(toEvent(out).source)).toBe('/shop/ventes été');
  });
});

describe('encodeHeaderValue (HTTP binding 3.1.3.2)', () => {
  it.each([
    ['com.example.someevent', 'com.example.someevent'],
    ['2026-11-26T17:58:54.117181Z', '2026-11-26T17:58:54.117181Z'],
    // The spec's own example.
    ['Euro € 😀', 'Euro%20%E2%82%AC%20%F0%9F%98%80'],
    ['a "b"', 'a%20%22b%22'],
    ['100%', '100%25'],
    ['tab\tnl\ncr\rnul\u0000', 'tab%09nl%0Acr%0Dnul%00'],
    ['del\u007f c1\u0085', 'del%7F%20c1%C2%85'],
    ["!#$&'()*+,/:;=?@[]^_`{|}~", "!#$&'()*+,/:;=?@[]^_`{|}~"],
    ['lone \ud800 surrogate', 'lone%20%EF%BF%BD%20surrogate'],
    ['', ''],
  ])('%j -> %j', (value, encoded) => {
    expect(encodeHeaderValue(value)).toBe(encoded);
  });
});

describe('buildSource', () => {
  /** Splits a default source back into its names: the literal "." separates schema and table. */
  function parseSource(source: string): [string, string, string] {
    const url = new URL(source);
    const segment = url.pathname.slice(1);
    const dot = segment.indexOf('.');
    return [decodeURIComponent(url.host), decodeURIComponent(segment.slice(0, dot)), decodeURIComponent(segment.slice(dot + 1))];
  }

  it('leaves ordinary names as they are', () => {
    expect(buildSource('shop', 'public', 'orders')).toBe('app-db-listener://shop/public.orders');
    expect(buildSource('shop.eu-1', 'my_schema', 'Order_Items~2')).toBe('app-db-listener://shop.eu-1/my_schema.Order_Items~2');
  });

  it.each<[string, string, string]>([
    ['shop db', 'my schema', 'my table'],
    ['a/b', 'c/d', 'e/f'],
    ['x#y', 's?q', 't#f'],
    ['user@host:5432', 'sch:ema', 't@b'],
    ['100%', '%41', '%%'],
    ['bóutique', 'ventes été', '注文😀'],
    ['db', 'a.b', 'c'],
    ['db', 'a', 'b.c'],
    ['', 'public', 'orders'],
    ['"q"', "it's", '<t>\\[]{}|^`'],
  ])('%j %j %j: a valid URI reference the SDK accepts, and the names come back', (database, schema, table) => {
    const source = buildSource(database, schema, table);
    expect(source).toMatch(/^app-db-listener:\/\/[A-Za-z0-9._~%-]*\/[A-Za-z0-9_~%-]*\.[A-Za-z0-9_~%-]*$/);
    expect(new CloudEvent({ id: '1', source, type: 't' }).validate()).toBe(true);
    expect(parseSource(source)).toEqual([database, schema, table]);
  });

  it('a "." in a schema or table name cannot be confused with the separator', () => {
    expect(buildSource('db', 'a.b', 'c')).not.toBe(buildSource('db', 'a', 'b.c'));
  });
});

describe('buildEventType', () => {
  it.each(OPS)('%s -> %s', (op, type) => {
    expect(buildEventType('com.app-db-listener.row', op)).toBe(type);
  });

  it('refuses an unknown operation', () => {
    expect(() => buildEventType('p', 'MERGE' as FormatOperation)).toThrow(/unknown operation "MERGE"/);
    expect(() => buildEventType('p', 'toString' as FormatOperation)).toThrow(/unknown operation/);
  });
});

describe('buildSubject', () => {
  it.each<[readonly string[], string]>([
    [['42'], '42'],
    [['9007199254740993'], '9007199254740993'],
    [['12.50'], '12.50'],
    [['"abc-123"'], 'abc-123'],
    [['"9b2f…-uuid"'], '9b2f…-uuid'],
    [['"Zo\\u00e9 \\"q\\""'], 'Zoé "q"'],
    [['1', '2'], '1,2'],
    [['"eu"', '42'], 'eu,42'],
    // "," and "%" are escaped in every part: split on ",", then percent-decode.
    [['"1,2"'], '1%2C2'],
    [['"1"', '"2"'], '1,2'],
    [['"50%"', '"a,b"'], '50%25,a%2Cb'],
    [['true', 'null'], 'true,null'],
    [[' 7 '], '7'],
    [['""'], ''],
    [[], ''],
  ])('%j -> %j', (values, subject) => {
    expect(buildSubject(values)).toBe(subject);
  });

  it('is unambiguous: splitting on "," and decoding each part gives the key values back', () => {
    const keys = [['a,b', 'c'], ['a', 'b,c'], ['%2C'], ['a%', '', 'z']];
    const subjects = keys.map((k) => buildSubject(k.map((v) => JSON.stringify(v))));
    expect(new Set(subjects).size).toBe(keys.length);
    subjects.forEach((s, i) => expect(s.split(',').map(decodeURIComponent)).toEqual(keys[i]));
  });

  it('rejects a malformed string value', () => {
    expect(() => buildSubject(['"abc'])).toThrow(SyntaxError);
  });

  it('compileSubjectReader reads the key columns of a row', () => {
    expect(compileSubjectReader(['id'])(NEW)).toBe('9007199254740993');
    expect(compileSubjectReader(['status', 'id'])(NEW)).toBe('paid,9007199254740993');
    expect(compileSubjectReader(['id'])(null)).toBeUndefined();
    expect(compileSubjectReader(['missing'])(NEW)).toBeUndefined();
    expect(compileSubjectReader([])(NEW)).toBeUndefined();
  });
});

describe('batches', () => {
  it.each<[PayloadFormat, boolean]>([
    ['original', true],
    ['cloudevents', true],
    ['cloudevents-binary', false],
  ])('canBatch(%s) is %s', (format, expected) => {
    expect(canBatch(format)).toBe(expected);
  });

  it('cloudevents: a JSON batch of 3 the SDK parses back into 3 valid events', () => {
    const format = compileFormatter({ format: 'cloudevents', database: 'shop' });
    const events = [input('INSERT', { eventId: 'evt_1' }), input('UPDATE', { eventId: 'evt_2' }), input('DELETE', { eventId: 'evt_3', subject: undefined })].map(format);
    const batch = joinBatch('cloudevents', events);
    expect(batch.contentType).toBe('application/cloudevents-batch+json; charset=utf-8');
    expect(batch.headers).toEqual({});
    expect(batch.body).toBe('[' + events.map((e) => e.body).join(',') + ']');

    const parsed = HTTP.toEvent(message(batch));
    expect(Array.isArray(parsed)).toBe(true);
    const list = parsed as CloudEvent<unknown>[];
    expect(list.map((e) => [e.id, e.type, e.subject])).toEqual([
      ['evt_1', 'com.app-db-listener.row.inserted', '9007199254740993'],
      ['evt_2', 'com.app-db-listener.row.updated', '9007199254740993'],
      ['evt_3', 'com.app-db-listener.row.deleted', undefined],
    ]);
    for (const e of list) {
      expect(e).toBeInstanceOf(CloudEvent);
      expect(e.validate()).toBe(true);
    }
    expect(batch.body).toContain('"id": 9007199254740993');
  });

  it('original: a JSON array of the bodies, application/json', () => {
    const format = compileFormatter({ format: 'original', database: 'shop' });
    const events = [input('INSERT'), input('UPDATE'), input('DELETE')].map(format);
    const batch = joinBatch('original', events);
    expect(batch.contentType).toBe('application/json');
    expect(batch.body).toBe('[' + events.map((e) => e.body).join(',') + ']');
    expect((JSON.parse(batch.body) as { operation: string }[]).map((b) => b.operation)).toEqual(['INSERT', 'UPDATE', 'DELETE']);
  });

  it('an empty batch is []', () => {
    expect(joinBatch('cloudevents', []).body).toBe('[]');
    expect(HTTP.toEvent({ headers: { 'content-type': joinBatch('cloudevents', []).contentType }, body: '[]' })).toEqual([]);
  });

  it('cloudevents-binary cannot batch', () => {
    const one = compileFormatter({ format: 'cloudevents-binary', database: 'shop' })(input('INSERT'));
    expect(() => joinBatch('cloudevents-binary', [one])).toThrow(/binary mode carries one event per request/);
  });

  it('refuses events of another format', () => {
    const original = compileFormatter({ format: 'original', database: 'shop' })(input('INSERT'));
    expect(() => joinBatch('cloudevents', [original])).toThrow(/content type application\/json/);
  });
});

describe('compileFormatter', () => {
  it('takes a BodyInput as it is (a journal event needs no conversion)', () => {
    const body: BodyInput = { eventId: 'e', op: 'INSERT', schema: 's', table: 't', timestamp: TIME, newRow: '{"id": 1}', oldRow: null };
    const out = compileFormatter({ format: 'original', database: 'd' })(body);
    expect(out.body).toBe(buildBody(body));
  });

  it('content types per format', () => {
    expect(CONTENT_TYPES).toEqual({
      original: 'application/json',
      cloudevents: 'application/cloudevents+json; charset=utf-8',
      'cloudevents-binary': 'application/json',
    });
  });

  it('refuses an event of an unknown operation', () => {
    for (const format of ['cloudevents', 'cloudevents-binary'] as const) {
      const e = { ...input('INSERT'), op: 'MERGE' as FormatOperation };
      expect(() => compileFormatter({ format, database: 'd' })(e)).toThrow(/unknown operation "MERGE"/);
    }
  });

  it.each<[string, () => unknown, RegExp]>([
    ['an unknown format', () => compileFormatter({ format: 'xml' as PayloadFormat, database: 'd' }), /format must be original, cloudevents or cloudevents-binary, got "xml"/],
    ['a prototype key as format', () => compileFormatter({ format: 'toString' as PayloadFormat, database: 'd' }), /got "toString"/],
    ['an empty type prefix', () => compileFormatter({ format: 'cloudevents', database: 'd', typePrefix: '' }), /type_prefix must not be empty/],
    ['an empty source', () => compileFormatter({ format: 'cloudevents-binary', database: 'd', source: '' }), /source must not be empty/],
  ])('refuses %s', (_name, compile, message) => {
    expect(compile).toThrow(message);
  });
});
