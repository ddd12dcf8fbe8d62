/**
 * Several destinations per change, on both databases, end to end: each with its own
 * queue, retries, endpoint health and dead letters (one that is down pauses only
 * itself), row filters (CEL, exact on bigints), column selection, CloudEvents in
 * both modes (checked with the cloudevents SDK), batching (order, retry of a whole
 * batch, one signature), and a replay that goes to one destination only.
 */
import { HTTP, type CloudEvent } from 'cloudevents';
import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningDaemon } from '../../src/app.js';
import { openAdmin } from '../../src/capture/admin.js';
import { mysqlDriver, postgresDriver, type Driver } from '../conformance/drivers.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

const SECRET = 'whsec_' + Buffer.from('destinations-test-secret-0123456789').toString('base64');

/** `destinations:` YAML, one entry per [name, receiver, extra lines]. */
function destinationsYaml(entries: ReadonlyArray<readonly [string, Receiver, ...string[]]>): string {
  const lines = ['destinations:'];
  for (const [name, rx, ...extra] of entries) {
    lines.push(`  - name: ${name}`, `    url: ${JSON.stringify(rx.url)}`, '    retry_delay: 0.05', '    retry_max_delay: 0.2', '    timeout: 5');
    for (const l of extra) lines.push(`    ${l}`);
  }
  return lines.join('\n') + '\n';
}

const ok = (rx: Receiver): ReceivedRequest[] => rx.events.filter((e) => e.response === 200);
const json = (e: ReceivedRequest) => JSON.parse(e.body) as { id: string; operation: string; data: Record<string, unknown>; old_data: unknown };
const idOf = (e: ReceivedRequest) => String(e.headers['webhook-id']);

describe.each([
  ['postgres', postgresDriver],
  ['mysql', mysqlDriver],
] as const)('destinations: %s', (name, makeDriver) => {
  let driver: Driver;
  const daemons: RunningDaemon[] = [];
  const receivers: Receiver[] = [];

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop(2_000)));
    await Promise.all(receivers.map((r) => r.close()));
    await driver?.drop();
  });

  async function receiver(mode?: number): Promise<Receiver> {
    const rx = await startReceiver(mode === undefined ? {} : { mode });
    receivers.push(rx);
    return rx;
  }

  async function start(table: string, extraYaml: string): Promise<RunningDaemon> {
    driver ??= await makeDriver(`dest_${name}`);
    const d = await driver.startDaemon({ webhookUrl: 'http://127.0.0.1:9/unused', tables: [table], noWebhook: true, extraYaml, pollInterval: 0.1 });
    daemons.push(d);
    return d;
  }

  const queued = async (destination: string, table: string) =>
    Number(
      (await driver.rows<{ n: string | number }>(`SELECT count(*) AS n FROM ${driver.name === 'postgres' ? 'app_db_listener.deliveries' : '`app_db_listener_deliveries`'} WHERE destination = ? AND table_name = ?`, [destination, table]))[0]!.n,
    );

  it('a destination that is down pauses only itself; the other delivers everything meanwhile, and it catches up in order', async () => {
    const down = await receiver(503);
    const up = await receiver();
    driver ??= await makeDriver(`dest_${name}`);
    const t = driver.quote('iso');
    await driver.exec(`CREATE TABLE ${t} (id ${driver.types.int} PRIMARY KEY, v ${driver.types.int} NOT NULL)`);
    await start('iso', destinationsYaml([['down', down, 'retry_count: 1000'], ['up', up]]));
    for (let i = 1; i <= 60; i++) await driver.exec(`INSERT INTO ${t} (id, v) VALUES (?, 0)`, [i]);
    for (let i = 1; i <= 30; i++) await driver.exec(`UPDATE ${t} SET v = 1 WHERE id = ?`, [i]);
    // Every change reaches the healthy destination while the other answers 503.
    await up.waitFor((evs) => evs.filter((e) => e.response === 200).length >= 90, 30_000);
    expect(ok(down)).toHaveLength(0);
    expect(down.events.length).toBeGreaterThan(0);
    await waitUntil(async () => (await queued('up', 'iso')) === 0, 10_000, "the healthy destination's queue to empty");
    expect(await queued('down', 'iso')).toBe(90);
    // It comes back: everything it missed, each row in commit order, the same event ids.
    down.setMode('ok');
    await down.waitFor((evs) => new Set(evs.filter((e) => e.response === 200).map(idOf)).size >= 90, 30_000);
    expect(new Set(ok(down).map(idOf))).toEqual(new Set(ok(up).map(idOf)));
    for (const rx of [up, down]) {
      const firsts = new Map<number, string>();
      for (const e of ok(rx)) {
        const body = json(e);
        const id = Number(body.data.id);
        if (!firsts.has(id)) firsts.set(id, body.operation);
      }
      for (const [, op] of firsts) expect(op).toBe('INSERT');
    }
    await waitUntil(async () => (await queued('down', 'iso')) === 0, 10_000, 'the recovered queue to empty');
  });

  it('filters (exact on bigints, run-time errors), column selection and both CloudEvents modes', async () => {
    const billing = await receiver();
    const search = await receiver();
    const audit = await receiver();
    const big = await receiver();
    const broken = await receiver();
    driver ??= await makeDriver(`dest_${name}`);
    const t = driver.quote('orders');
    await driver.exec(
      `CREATE TABLE ${t} (id ${driver.types.bigint} PRIMARY KEY, status ${driver.types.text} NOT NULL, total ${driver.types.decimal} NOT NULL,
        card_token ${driver.types.text}, balance ${driver.types.bigint} NOT NULL)`,
    );
    await start(
      'orders',
      destinationsYaml([
        ['billing', billing, `filter: 'operation == "UPDATE" && data.status == "paid" && old_data.status != "paid"'`, 'operations: [update]'],
        ['search', search, 'columns: { exclude: [card_token, total] }'],
        ['audit', audit, 'format: cloudevents', 'type_prefix: com.example.row'],
        ['big', big, "filter: 'data.balance > 9007199254740992'", 'format: cloudevents-binary'],
        ['broken', broken, "filter: 'data.nope > 1'"],
      ]),
    );
    await driver.exec(`INSERT INTO ${t} VALUES (1, 'new', 12.50, 'tok_1', 9007199254740993)`);
    await driver.exec(`INSERT INTO ${t} VALUES (2, 'new', 3.00, 'tok_2', 9007199254740992)`);
    await driver.exec(`UPDATE ${t} SET status = 'paid' WHERE id = 1`);
    await driver.exec(`UPDATE ${t} SET total = 13.00 WHERE id = 1`);
    await driver.exec(`UPDATE ${t} SET status = 'shipped' WHERE id = 2`);
    await search.waitFor((evs) => evs.filter((e) => e.response === 200).length >= 5, 20_000);
    await audit.waitFor((evs) => evs.filter((e) => e.response === 200).length >= 5, 20_000);
    await big.waitFor((evs) => evs.filter((e) => e.response === 200).length >= 3, 20_000);
    // Every filtered-out event left the queues too: nothing waits anywhere.
    for (const d of ['billing', 'search', 'audit', 'big', 'broken']) {
      await waitUntil(async () => (await queued(d, 'orders')) === 0, 10_000, `the queue of ${d} to empty`);
    }

    // billing: only the transition to paid.
    expect(ok(billing).map((e) => [json(e).operation, json(e).data.status, json(e).data.id])).toEqual([['UPDATE', 'paid', 1]]);
    // search: every change, without the excluded columns; the key and the rest exact.
    expect(ok(search)).toHaveLength(5);
    for (const e of ok(search)) {
      expect(e.body).not.toContain('card_token');
      expect(e.body).not.toContain('total');
      expect(json(e).data.id).toBeDefined();
    }
    expect(ok(search).some((e) => /"balance": ?9007199254740993/.test(e.body))).toBe(true);
    // audit: structured CloudEvents the SDK accepts; data is the original payload.
    const ces = ok(audit).map((e) => HTTP.toEvent({ headers: e.headers, body: e.body }) as CloudEvent<Record<string, unknown>>);
    for (const ce of ces) expect(ce.validate()).toBe(true);
    // Rows go out side by side: order holds per row, so the types are compared as a multiset.
    expect(ces.map((ce) => ce.type).sort()).toEqual([
      'com.example.row.inserted',
      'com.example.row.inserted',
      'com.example.row.updated',
      'com.example.row.updated',
      'com.example.row.updated',
    ]);
    expect(new Set(ces.map((ce) => ce.subject))).toEqual(new Set(['1', '2']));
    for (const ce of ces) {
      expect(ce.source).toMatch(new RegExp(`^app-db-listener://adl_cf_dest_${name}_[0-9a-f]+/${driver.eventSchema}\\.orders$`));
      expect(ce.datacontenttype).toBe('application/json');
    }
    expect(ok(audit).every((e) => /"data":\{"id":"evt_[0-9a-z]+_\d+","operation":"(INSERT|UPDATE)"/.test(e.body))).toBe(true);
    expect(ok(audit).some((e) => /"balance": ?9007199254740993/.test(e.body))).toBe(true);
    // big: exactly the events of row 1 (9007199254740993 > 9007199254740992, not 9007199254740992 itself), in binary mode.
    const binary = ok(big).map((e) => HTTP.toEvent({ headers: e.headers, body: e.body }) as CloudEvent);
    expect(binary.map((ce) => ce.subject)).toEqual(['1', '1', '1']);
    expect(binary.map((ce) => ce.type)).toEqual(['com.app-db-listener.row.inserted', 'com.app-db-listener.row.updated', 'com.app-db-listener.row.updated']);
    expect(ok(big)[0]!.headers['content-type']).toBe('application/json');
    // broken: its filter fails on every row; nothing is sent there, the others are unaffected.
    expect(broken.events).toHaveLength(0);
    // One change, one event id, whichever destination it reaches.
    const ids = (rx: Receiver) => new Set(ok(rx).map((e) => json(e).id ?? idOf(e)));
    expect(ids(search)).toEqual(new Set(ces.map((ce) => ce.id)));
    expect([...ids(search)]).toEqual(expect.arrayContaining(binary.map((ce) => ce.id)));
  });

  it('batching: arrays of at most max_events, signed as one body, a refused batch retried whole, per-row order kept', async () => {
    const rx = await receiver();
    rx.queue(503);
    driver ??= await makeDriver(`dest_${name}`);
    const t = driver.quote('batched');
    await driver.exec(`CREATE TABLE ${t} (id ${driver.types.int} PRIMARY KEY, v ${driver.types.int} NOT NULL)`);
    await start('batched', destinationsYaml([['batched', rx, 'batch: { max_events: 10, max_wait: 0.2 }', `secret: ${JSON.stringify(SECRET)}`]]));
    for (let i = 1; i <= 25; i++) await driver.exec(`INSERT INTO ${t} (id, v) VALUES (?, 0)`, [i]);
    for (let i = 1; i <= 25; i++) await driver.exec(`UPDATE ${t} SET v = 1 WHERE id = ?`, [i]);
    const delivered = () => ok(rx).flatMap((e) => JSON.parse(e.body) as Array<{ id: string; operation: string; data: { id: number } }>);
    await waitUntil(() => new Set(delivered().map((e) => e.id)).size >= 50, 30_000, 'all 50 events in batches');
    const wh = new Webhook(SECRET);
    for (const e of rx.events) {
      const batch = JSON.parse(e.body) as unknown[];
      expect(Array.isArray(batch)).toBe(true);
      expect(batch.length).toBeGreaterThan(0);
      expect(batch.length).toBeLessThanOrEqual(10);
      expect(() => wh.verify(e.body, e.headers as Record<string, string>)).not.toThrow();
    }
    // The refused batch's events all arrived again, in a later request.
    const refused = rx.events.find((e) => e.response === 503)!;
    const again = new Set(delivered().map((e) => e.id));
    for (const e of JSON.parse(refused.body) as Array<{ id: string }>) expect(again).toContain(e.id);
    // Each row: its INSERT is delivered before its UPDATE.
    const seen = new Map<number, string[]>();
    for (const e of delivered()) seen.set(e.data.id, [...(seen.get(e.data.id) ?? []), e.operation]);
    for (const [, ops] of seen) expect(ops.indexOf('INSERT')).toBeLessThan(ops.lastIndexOf('UPDATE'));
  });

  it('dead letters are per destination, and a replay re-sends to that destination only, with the same event id', async () => {
    const refusing = await receiver(410);
    const fine = await receiver();
    driver ??= await makeDriver(`dest_${name}`);
    const t = driver.quote('dl');
    await driver.exec(`CREATE TABLE ${t} (id ${driver.types.int} PRIMARY KEY)`);
    await start('dl', destinationsYaml([['refusing', refusing], ['fine', fine]]));
    for (let i = 1; i <= 3; i++) await driver.exec(`INSERT INTO ${t} (id) VALUES (?)`, [i]);
    await fine.waitFor((evs) => evs.filter((e) => e.response === 200).length >= 3, 20_000);
    const config = driver.config({ webhookUrl: 'http://127.0.0.1:9/unused', tables: ['dl'], noWebhook: true, extraYaml: destinationsYaml([['refusing', refusing], ['fine', fine]]) });
    const admin = await openAdmin(config);
    try {
      await waitUntil(async () => (await admin.listDeadLetters({ destination: 'refusing' })).length === 3, 20_000, 'three dead letters of refusing');
      expect(await admin.listDeadLetters({ destination: 'fine' })).toEqual([]);
      const dead = await admin.listDeadLetters({});
      expect(dead.map((x) => x.destination)).toEqual(['refusing', 'refusing', 'refusing']);
      refusing.setMode('ok');
      const replayed = await admin.replayDeadLetters({ destination: 'refusing' });
      expect(replayed).toHaveLength(3);
      await refusing.waitFor((evs) => evs.filter((e) => e.response === 200).length >= 3, 20_000);
      expect(new Set(ok(refusing).map(idOf))).toEqual(new Set(ok(fine).map(idOf)));
      expect(await admin.listDeadLetters({})).toEqual([]);
      // The other destination got nothing again.
      expect(fine.events).toHaveLength(3);
    } finally {
      await admin.close();
    }
  });
});
