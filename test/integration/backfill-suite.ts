/**
 * `backfill` on both databases, end to end: the CLI as deployed (a child process)
 * beside a running daemon and a real receiver. The rows a table already holds arrive
 * as READ events; for every row the receiver ends with the table's final state while
 * writers update and delete rows during the backfill; kill -9 and --resume; --rate,
 * --where, --destination, --key, --cancel; status and /metrics show the progress.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningDaemon } from '../../src/app.js';
import type { Driver, DriverName } from '../conformance/drivers.js';
import { spawn } from 'node:child_process';
import { shebangNodeFlags } from '../../src/util/node-flags.js';
import { cliPath, spawnCli, writeTempConfig } from '../support/daemon.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

interface Body {
  id: string;
  operation: string;
  table: string;
  data: Record<string, unknown> | null;
  old_data: unknown;
}
const body = (e: ReceivedRequest) => JSON.parse(e.body) as Body;
const delivered = (rx: Receiver) => rx.events.filter((e) => e.response === 200).map(body);
const reads = (rx: Receiver, table: string) => delivered(rx).filter((b) => b.operation === 'READ' && b.table === table);

function destinationsYaml(entries: ReadonlyArray<readonly [string, Receiver]>): string {
  const lines = entries.flatMap(([name, rx]) => [`  - name: ${name}`, `    url: ${JSON.stringify(rx.url)}`, '    retry_delay: 0.05', '    retry_max_delay: 0.5', '    retry_count: 1000', '    timeout: 5']);
  return ['destinations:', ...lines].join('\n') + '\n';
}

/** The scenarios, against one database (backfill-postgres.test.ts, backfill-mysql.test.ts: the two run side by side). */
export function backfillSuite(name: DriverName, makeDriver: (label: string) => Promise<Driver>): void {
  describe(`backfill: ${name}`, () => {
    let driver: Driver;
    const daemons: RunningDaemon[] = [];
    const receivers: Receiver[] = [];

    afterAll(async () => {
      await Promise.all(daemons.map((d) => d.stop(2_000)));
      await Promise.all(receivers.map((r) => r.close()));
      await driver?.drop();
    });

    async function receiver(): Promise<Receiver> {
      const rx = await startReceiver();
      receivers.push(rx);
      return rx;
    }

    const backfills = () => (name === 'postgres' ? 'app_db_listener.backfills' : '`app_db_listener_backfills`');

    /** A daemon watching `tables`, delivering to the named receivers; returns the CLI's config file. */
    async function start(tables: string[], dests: ReadonlyArray<readonly [string, Receiver]>, extra = {}): Promise<string> {
      driver ??= await makeDriver(`bf_${name}`);
      const o = { webhookUrl: 'http://127.0.0.1:9/unused', tables, noWebhook: true, extraYaml: destinationsYaml(dests), pollInterval: 0.1, ...extra };
      daemons.push(await driver.startDaemon(o));
      return writeTempConfig(driver.configYaml(o));
    }

    /** Inserts rows 1..n (v = 0) in one statement. */
    async function fill(table: string, n: number): Promise<void> {
      const t = driver.quote(table);
      if (driver.name === 'postgres') await driver.exec(`INSERT INTO ${t} (id, v, note) SELECT g, 0, 'row ' || g FROM generate_series(1, ${n}) g`);
      else {
        // 1..n from six tables of digits (a recursive CTE stops at max_recursive_iterations).
        const digits = '(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)';
        const from = [0, 1, 2, 3, 4, 5].map((i) => `${digits} d${i}`).join(' CROSS JOIN ');
        const num = [0, 1, 2, 3, 4, 5].map((i) => `d${i}.d * ${10 ** i}`).join(' + ');
        await driver.exec(`INSERT INTO ${t} (id, v, note) SELECT n, 0, CONCAT('row ', n) FROM (SELECT ${num} + 1 AS n FROM ${from}) s WHERE n <= ${n}`);
      }
    }

    async function table(tableName: string): Promise<void> {
      driver ??= await makeDriver(`bf_${name}`);
      await driver.exec(`CREATE TABLE ${driver.quote(tableName)} (id ${driver.types.bigint} PRIMARY KEY, v ${driver.types.int} NOT NULL, note ${driver.types.text})`);
    }

    async function backfillRow(id: string): Promise<{ state: string; rows_done: number }> {
      const r = await driver.rows<{ state: string; rows_done: string | number }>(`SELECT state, rows_done FROM ${backfills()} WHERE id = ?`, [id]);
      return { state: r[0]!.state, rows_done: Number(r[0]!.rows_done) };
    }

    const cli = (config: string, ...args: string[]) => spawnCli(['backfill', '--config', config, ...args], config);

    it('100,000 rows while writers update and delete some: for every row the receiver ends with the table\'s final state', { timeout: 480_000 }, async () => {
      await table('big');
      await fill('big', 100_000);
      const rx = await receiver();
      const config = await start(['big'], [['main', rx]]);
      const t = driver.quote('big');
      const run = cli(config, '--table', 'big', '--batch-size', '1000', '--max-backlog', '2000');
      // Writers while it runs: updates all over the key range, deletes, inserts past the end.
      let writing = true;
      let writes = 0;
      // Rows whose key changed: an UPDATE of the key is ordered with the new key only
      // (docs/architecture.md), so their old key's state is not compared.
      const moved = new Set<string>();
      const writer = (async () => {
        let i = 0;
        while (writing) {
          i++;
          const id = ((i * 7919) % 100_000) + 1;
          if (i % 5 === 0) await driver.exec(`DELETE FROM ${t} WHERE id = ?`, [id]);
          else if (i % 11 === 0) {
            // A key that moves ahead of the backfill: it must not make the backfill skip rows.
            await driver.exec(`UPDATE ${t} SET id = id + 1000000 WHERE id = ?`, [id]);
            moved.add(String(id)).add(String(id + 1_000_000));
          } else await driver.exec(`UPDATE ${t} SET v = v + 1, note = ? WHERE id = ?`, [`w${i}`, id]);
          if (i % 50 === 0) await driver.exec(`INSERT INTO ${t} (id, v, note) VALUES (?, 1, 'new')`, [100_000 + i]);
          writes++;
        }
      })();
      const exit = await run.closed;
      writing = false;
      await writer;
      expect(exit.code, run.output()).toBe(0);
      expect(run.stdout()).toMatch(/done: [\d,]+ rows journaled/);
      // Not a terminal: plain progress lines, nothing redrawn.
      expect(run.stdout()).not.toContain('\r');
      expect(run.stdout()).toMatch(/^ *\d+% {2}[\d,]+\/[\d,]+ rows {2}[\d,]+ rows\/s/m);
      expect(writes).toBeGreaterThan(0);

      const finalRows = await driver.rows<{ id: string | number; v: number; note: string }>(`SELECT id, v, note FROM ${t}`);
      const expected = new Map(finalRows.map((r) => [String(r.id), { v: Number(r.v), note: r.note }]));
      // Everything delivered: as many events as were captured or read (the journal drains).
      await waitUntil(async () => (await driver.journalCount('big')) === 0, 400_000, 'the backfill and the changes to be delivered');
      const state = new Map<string, { v: number; note: string } | null>();
      let readCount = 0;
      for (const b of delivered(rx)) {
        if (b.operation === 'READ') readCount++;
        if (b.operation === 'DELETE') state.set(String((b.data as { id: unknown }).id), null);
        else {
          const d = b.data as { id: unknown; v: number; note: string };
          state.set(String(d.id), { v: Number(d.v), note: d.note });
        }
      }
      expect(readCount).toBeGreaterThan(90_000);
      const wrong: string[] = [];
      for (const id of moved) state.delete(id);
      for (const [id, want] of expected) {
        if (moved.has(id)) continue;
        const got = state.get(id);
        if (!got || got.v !== want.v || got.note !== want.note) wrong.push(`${id}: table ${JSON.stringify(want)}, receiver ${JSON.stringify(got)}`);
      }
      for (const [id, got] of state) if (got !== null && !expected.has(id)) wrong.push(`${id}: deleted, receiver ${JSON.stringify(got)}`);
      expect(wrong.slice(0, 10)).toEqual([]);
      expect(await backfillRow('1')).toMatchObject({ state: 'done' });
    });

    it('a READ event carries exactly what the capture trigger would send for the row, and orders with its changes', { timeout: 120_000 }, async () => {
      driver ??= await makeDriver(`bf_${name}`);
      const t = driver.quote('fidelity');
      await driver.exec(`CREATE TABLE ${t} (id ${driver.types.bigint} PRIMARY KEY, big ${driver.types.bigint}, amount ${driver.types.decimal}, doc ${driver.types.json}, note ${driver.types.text})`);
      const rx = await receiver();
      // A destination that refuses everything keeps its events queued, to look at.
      const held = await receiver();
      held.setMode(503);
      const config = await start(['fidelity'], [['main', rx], ['held', held]]);
      await driver.exec(`INSERT INTO ${t} (id, big, amount, doc, note) VALUES (1, 9007199254740993, 12.50, '{"a": [1, 2.50, "x"]}', 'Grüße 🎉 <script>')`);
      await rx.waitFor((evs) => evs.some((e) => e.response === 200 && body(e).operation === 'INSERT'), 10_000);
      const run = cli(config, '--table', 'fidelity');
      expect((await run.closed).code, run.output()).toBe(0);
      await rx.waitFor((evs) => evs.some((e) => e.response === 200 && body(e).operation === 'READ'), 10_000);
      await driver.exec(`UPDATE ${t} SET note = 'after' WHERE id = 1`);
      await rx.waitFor((evs) => evs.some((e) => e.response === 200 && body(e).operation === 'UPDATE'), 10_000);
      const ok = rx.events.filter((x) => x.response === 200);
      expect(ok.map((e) => body(e).operation)).toEqual(['INSERT', 'READ', 'UPDATE']);
      const raw = (op: string) => /"data":(\{.*?\}),"old_data"/.exec(ok.find((x) => body(x).operation === op)!.body)?.[1];
      // The row's JSON text, byte for byte (bigint and numeric as written, key order, unicode).
      expect(raw('READ')).toBeDefined();
      expect(raw('READ')).toBe(raw('INSERT'));
      expect(raw('READ')).toContain('9007199254740993');
      expect(raw('READ')).toContain('12.50');
      const read = ok.find((x) => body(x).operation === 'READ')!;
      expect(body(read).old_data).toBeNull();
      expect(String(read.headers['webhook-id'])).toMatch(/^evt_[0-9a-f]+_\d+$/);
      // The trigger's row hash: the three are one row's events, ordered by one gate.
      const q = name === 'postgres' ? 'app_db_listener.deliveries' : '`app_db_listener_deliveries`';
      const queued = await waitUntil(async () => {
        const r = await driver.rows<{ op: string; row_hash: string }>(`SELECT op, CAST(row_hash AS CHAR(30)) AS row_hash FROM ${q} WHERE destination = 'held' ORDER BY id`);
        return r.length === 3 ? r : undefined;
      }, 10_000, 'the three events queued for the refusing destination');
      expect(queued.map((r) => r.op)).toEqual(['INSERT', 'READ', 'UPDATE']);
      expect(new Set(queued.map((r) => r.row_hash)).size).toBe(1);
      expect(queued[0]!.row_hash).not.toBeNull();
    });

    it('a row a writer holds when the backfill reaches it: the batch waits without holding locks (the writer goes on writing), and the row\'s READ event carries the committed state, after the change', { timeout: 60_000 }, async () => {
      await table('contended');
      await fill('contended', 200);
      const rx = await receiver();
      const config = await start(['contended'], [['main', rx]]);
      const t = driver.quote('contended');
      let run: ReturnType<typeof cli> | undefined;
      await driver.transaction([[`UPDATE ${t} SET v = 42, note = 'committed' WHERE id = 100`, []]], async (exec) => {
        run = cli(config, '--table', 'contended', '--batch-size', '50');
        // The batch that reaches row 100 is held up: it says so, and tries again.
        await waitUntil(() => run!.stdout().includes('paused: a writer holds a row of the next batch'), 20_000, () => `the backfill to meet the writer's row: ${run!.output()}`);
        // Meanwhile the writer goes on, on rows the backfill has read and past it, and so do
        // others: the batch holds no lock while it waits, so none of them waits or fails.
        await exec(`UPDATE ${t} SET v = 7, note = 'also' WHERE id = 5`);
        // Next to row 100, likely in the batch that waits: a batch that held its locks while
        // waiting would deadlock with this writer.
        await exec(`UPDATE ${t} SET v = 9, note = 'also' WHERE id = 99`);
        await exec(`UPDATE ${t} SET v = 8, note = 'also' WHERE id = 150`);
        await driver.exec(`INSERT INTO ${t} (id, v, note) VALUES (1000, 1, 'other writer')`);
      });
      expect((await run!.closed).code, run!.output()).toBe(0);
      await waitUntil(() => reads(rx, 'contended').length >= 200, 20_000, 'every row read');
      const ofRow = (id: number) => delivered(rx).filter((b) => b.table === 'contended' && Number((b.data as { id: number }).id) === id);
      expect(ofRow(100).map((b) => b.operation)).toEqual(['UPDATE', 'READ']);
      expect(ofRow(100)[1]!.data).toMatchObject({ v: 42, note: 'committed' });
      // Row 5 was read before the writer changed it; row 150 after: each ends with the writer's values.
      expect(ofRow(5).map((b) => b.operation)).toEqual(['READ', 'UPDATE']);
      expect(ofRow(150).map((b) => b.operation)).toEqual(['UPDATE', 'READ']);
      expect(ofRow(150)[1]!.data).toMatchObject({ v: 8 });
      expect(ofRow(99).at(-1)!.data).toMatchObject({ v: 9 });
    });

    it('a composite primary key (text and bigint past 2^53) is read in key order across batches: every row once', { timeout: 60_000 }, async () => {
      driver ??= await makeDriver(`bf_${name}`);
      const t = driver.quote('composite');
      await driver.exec(`CREATE TABLE ${t} (tenant ${driver.types.text} NOT NULL, id ${driver.types.bigint} NOT NULL, v ${driver.types.int}, PRIMARY KEY (tenant, id))`);
      const keys: Array<[string, string]> = [];
      for (const tenant of ['a', 'b b', "c'c"]) for (let i = 0; i < 17; i++) keys.push([tenant, (9007199254740993n + BigInt(i * 2)).toString()]);
      for (const [tenant, id] of keys) await driver.exec(`INSERT INTO ${t} (tenant, id, v) VALUES (?, ?, 1)`, [tenant, id]);
      const rx = await receiver();
      const config = await start(['composite'], [['main', rx]]);
      const run = cli(config, '--table', 'composite', '--batch-size', '4');
      expect((await run.closed).code, run.output()).toBe(0);
      await waitUntil(() => reads(rx, 'composite').length >= keys.length, 20_000, 'every row read');
      await waitUntil(async () => (await driver.journalCount('composite')) === 0, 20_000, 'the journal to drain');
      const got = reads(rx, 'composite').map((b) => {
        const raw = rx.events.find((e) => e.body.includes(`"id":"${b.id}"`))!.body;
        return `${(b.data as { tenant: string }).tenant}/${/"id": ?(\d+), ?"v"/.exec(raw)?.[1]}`;
      });
      expect(new Set(got)).toEqual(new Set(keys.map(([tenant, id]) => `${tenant}/${id}`)));
      expect(got).toHaveLength(keys.length);
    });

    it('on a terminal, a progress bar redrawn in place; status --json lists the backfill', { timeout: 60_000 }, async () => {
    await table('shown');
    await fill('shown', 600);
    const rx = await receiver();
    const config = await start(['shown'], [['main', rx]]);
    // script(1) gives the command a pseudo-terminal.
    const args = [...shebangNodeFlags(cliPath), cliPath, 'backfill', '--config', config, '--table', 'shown', '--rate', '400'];
    const command = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, out).toBe(0);
    expect(out).toContain('\r\u001b[2K[');
      expect(out).toMatch(/\[#+\.*\] +\d+% {2}[\d,]+\/[\d,]+ rows/);
    expect(out).toMatch(/done: 600 rows journaled/);
    const status = spawnCli(['status', '--config', config, '--json'], config);
    expect((await status.closed).code, status.output()).toBe(0);
    const listed = (JSON.parse(status.stdout()) as { backfills: Array<{ table: string; state: string; rowsDone: number }> }).backfills;
    expect(listed.find((b) => b.table.endsWith('.shown'))).toMatchObject({ state: 'done', rowsDone: 600 });
  });

  it('killed with -9 mid-way: the backfill is interrupted, --resume sends the rest, and no row twice', { timeout: 120_000 }, async () => {
      await table('resumable');
      await fill('resumable', 5_000);
      const rx = await receiver();
      const config = await start(['resumable'], [['main', rx]]);
      const first = cli(config, '--table', 'resumable', '--rate', '1500', '--batch-size', '100');
      const found = await waitUntil(async () => {
        const r = await driver.rows<{ id: string | number; rows_done: string | number }>(`SELECT id, rows_done FROM ${backfills()} WHERE table_name = 'resumable'`);
        return r.length > 0 && Number(r[0]!.rows_done) >= 500 ? r.map((x) => ({ id: String(x.id) })) : undefined;
      }, 30_000, 'the backfill to pass 500 rows');
      const id = found[0]!.id;
      first.child.kill('SIGKILL');
      await first.closed;
      const atKill = await backfillRow(id);
      expect(atKill.state).toBe('running');
      expect(atKill.rows_done).toBeLessThan(5_000);

      // Started again without --resume: refused, saying what to do.
      const again = cli(config, '--table', 'resumable');
      expect((await again.closed).code).toBe(1);
      expect(again.stderr()).toMatch(/was interrupted after [\d,]+ rows/);
      expect(again.stderr()).toMatch(/--resume/);

      // The daemon's metrics show its progress.
      const metrics = (await daemons[daemons.length - 1]!.metrics.render()).body;
      expect(metrics).toMatch(new RegExp(`app_db_listener_backfill_rows\\{backfill="${id}",table="[^"]*\\.resumable",destination="\\*"\\} ${atKill.rows_done}\n`));
      expect(metrics).toMatch(/app_db_listener_backfill_rows_estimated\{backfill="\d+",table="[^"]*\.resumable",destination="\*"\} \d+\n/);

      // status shows it interrupted.
      const status = spawnCli(['status', '--config', config], config);
      expect((await status.closed).code, status.output()).toBe(0);
      expect(status.stdout()).toMatch(/resumable.*interrupted/);

      const resumed = cli(config, '--table', 'resumable', '--resume');
      expect((await resumed.closed).code, resumed.output()).toBe(0);
      expect(resumed.stdout()).toMatch(/Resuming backfill/);
      expect(await backfillRow(id)).toEqual({ state: 'done', rows_done: 5_000 });
      await waitUntil(() => reads(rx, 'resumable').length >= 5_000, 60_000, 'every row delivered');
      await waitUntil(async () => (await driver.journalCount('resumable')) === 0, 30_000, 'the journal to drain');
      // Progress is recorded with each batch: exactly one READ event per row, none twice.
      const ids = reads(rx, 'resumable').map((b) => String((b.data as { id: unknown }).id));
      const eventIds = new Set(reads(rx, 'resumable').map((b) => b.id));
      expect(new Set(ids).size).toBe(5_000);
      expect(eventIds.size).toBe(5_000);
    });

    it('--rate bounds the pace, --where picks the rows, --destination sends to one destination only', { timeout: 60_000 }, async () => {
      await table('picked');
      await fill('picked', 1_000);
      const a = await receiver();
      const b = await receiver();
      const config = await start(['picked'], [['a', a], ['b', b]]);
      const began = Date.now();
      const run = cli(config, '--table', 'picked', '--where', 'id % 4 = 0', '--destination', 'b', '--rate', '400');
      expect((await run.closed).code, run.output()).toBe(0);
      const elapsed = Date.now() - began;
      // 250 rows at 400/s: the first slice (20 rows) goes at once, the rest no faster than the rate.
      expect(elapsed).toBeGreaterThanOrEqual(((250 - 20) / 400) * 1000);
      await waitUntil(() => reads(b, 'picked').length >= 250, 20_000, 'the picked rows at b');
      await waitUntil(async () => (await driver.journalCount('picked')) === 0, 20_000, 'the journal to drain');
      expect(reads(b, 'picked').every((x) => Number((x.data as { id: number }).id) % 4 === 0)).toBe(true);
      expect(reads(b, 'picked')).toHaveLength(250);
      expect(reads(a, 'picked')).toHaveLength(0);
      // A wrong condition is refused before anything is recorded.
      const bad = cli(config, '--table', 'picked', '--where', 'no_such_column = 1');
      expect((await bad.closed).code).toBe(1);
      expect(bad.stderr()).toMatch(/--where "no_such_column = 1" is not a condition on/);
    });

    it('a table without a primary key is refused, unless --key names a unique NOT NULL key; --cancel stops a running backfill', { timeout: 60_000 }, async () => {
      driver ??= await makeDriver(`bf_${name}`);
      const t = driver.quote('nokey');
      await driver.exec(`CREATE TABLE ${t} (code ${driver.types.text} NOT NULL, v ${driver.types.int} NOT NULL)`);
      await driver.exec(`CREATE UNIQUE INDEX nokey_code ON ${t} (code)`);
      await driver.exec(`CREATE TABLE ${driver.quote('slow')} (id ${driver.types.bigint} PRIMARY KEY, v ${driver.types.int} NOT NULL, note ${driver.types.text})`);
      await fill('slow', 2_000);
      for (let i = 0; i < 30; i++) await driver.exec(`INSERT INTO ${t} (code, v) VALUES (?, ?)`, [`c${String(i).padStart(3, '0')}`, i]);
      const rx = await receiver();
      const config = await start(['nokey', 'slow'], [['main', rx]]);

      const refused = cli(config, '--table', 'nokey');
      expect((await refused.closed).code).toBe(1);
      expect(refused.stderr()).toMatch(/has no primary key/);
      expect(refused.stderr()).toMatch(/--key/);
      const notUnique = cli(config, '--table', 'nokey', '--key', 'v');
      expect((await notUnique.closed).code).toBe(1);
      expect(notUnique.stderr()).toMatch(/is not a unique key/);
      if (driver.name === 'mysql') {
        // An index on a prefix of a column is not a key of the column.
        await driver.exec(`CREATE TABLE ${driver.quote('prefixed')} (a VARCHAR(20) NOT NULL, b VARCHAR(20) NOT NULL, UNIQUE KEY ab (a, b(5)))`);
        await driver.exec(`CREATE TABLE ${driver.quote('floaty')} (f FLOAT PRIMARY KEY, v INT)`);
        const config2 = await start(['prefixed', 'floaty'], [['main', rx]]);
        const prefixed = cli(config2, '--table', 'prefixed', '--key', 'a');
        expect((await prefixed.closed).code).toBe(1);
        expect(prefixed.stderr()).toMatch(/is not a unique key/);
        const floaty = cli(config2, '--table', 'floaty');
        expect((await floaty.closed).code).toBe(1);
        expect(floaty.stderr()).toMatch(/cannot read in order by an approximate number/);
      }
      const byCode = cli(config, '--table', 'nokey', '--key', 'code', '--batch-size', '7');
      expect((await byCode.closed).code, byCode.output()).toBe(0);
      await waitUntil(() => reads(rx, 'nokey').length >= 30, 20_000, 'the rows read by code');
      expect(new Set(reads(rx, 'nokey').map((x) => (x.data as { code: string }).code)).size).toBe(30);

      const slow = cli(config, '--table', 'slow', '--rate', '200', '--batch-size', '10');
      await waitUntil(async () => {
        const r = await driver.rows<{ rows_done: string | number }>(`SELECT rows_done FROM ${backfills()} WHERE table_name = 'slow'`);
        return r.length > 0 && Number(r[0]!.rows_done) > 0;
      }, 20_000, 'the slow backfill to start');
      const cancel = cli(config, '--table', 'slow', '--cancel');
      expect((await cancel.closed).code, cancel.output()).toBe(0);
      expect(cancel.stdout()).toMatch(/Cancelled backfill/);
      const ended = await slow.closed;
      expect(ended.code).toBe(1);
      expect(slow.stderr()).toMatch(/was cancelled after/);
      const row = await driver.rows<{ state: string; rows_done: string | number }>(`SELECT state, rows_done FROM ${backfills()} WHERE table_name = 'slow'`);
      expect(row[0]!.state).toBe('cancelled');
      expect(Number(row[0]!.rows_done)).toBeLessThan(2_000);
      const none = cli(config, '--table', 'slow', '--cancel');
      expect((await none.closed).code).toBe(1);
      expect(none.stderr()).toMatch(/no unfinished backfill/);
    });
  });
}
