/**
 * What the capture trigger costs the application's writers: single-row INSERT
 * transactions from N concurrent pgbench clients into a plain table and into an
 * identical watched table (trigger installed, daemon stopped), alternated over
 * several rounds; medians and their ratio.
 *   npx tsx bench/trigger-cost.ts [--clients 16] [--seconds 8] [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { applyInstall } from '../src/capture/postgres/install.js';
import { parseConfig } from '../src/config/index.js';
import { flag, median } from './lib.js';

const arg = (name: string, dflt: number) => Number(flag(name, String(dflt)));
const CLIENTS = arg('clients', 16);
const SECONDS = arg('seconds', 8);
const ROUNDS = arg('rounds', 3);
const DB = 'adl_bench_trigger';

async function main() {
  const admin = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  const client = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: DB });
  await client.connect();
  for (const t of ['plain', 'watched']) {
    await client.query(`CREATE TABLE ${t} (id bigserial PRIMARY KEY, name text, amount numeric(12,2), created timestamptz DEFAULT now())`);
  }
  const { config } = parseConfig(
    `database:\n  url: "postgres://postgres@127.0.0.1:5432/${DB}"\n  table: "watched"\nwebhook:\n  url: "http://127.0.0.1:9/none"\n`,
    {},
    'bench',
  );
  await applyInstall(client, config);

  const dir = mkdtempSync(path.join(tmpdir(), 'adl-trigger-'));
  const rates: Record<string, number[]> = { plain: [], watched: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const table of ['plain', 'watched']) {
      await client.query(`TRUNCATE plain, watched, app_db_listener.events`);
      await client.query('CHECKPOINT');
      const script = path.join(dir, `${table}.sql`);
      writeFileSync(script, `INSERT INTO ${table} (name, amount) VALUES ('user', 12.50);\n`);
      const out = execFileSync(
        'pgbench',
        ['-h', '127.0.0.1', '-U', 'postgres', '-n', '-M', 'prepared', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-f', script, DB],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1]);
      rates[table]!.push(tps);
      console.log(`round ${round + 1} ${table}: ${Math.round(tps)} inserts/s`);
    }
  }
  await client.end();
  const plain = median(rates.plain!);
  const watched = median(rates.watched!);
  const result = { clients: CLIENTS, plain_per_s: Math.round(plain), watched_per_s: Math.round(watched), cost_ratio: +(plain / watched).toFixed(2) };
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
