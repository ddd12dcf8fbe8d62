/**
 * TLS for real: the built CLI against a private PostgreSQL that serves a certificate from a
 * test CA (database.sslmode, database.sslrootcert), and against an https receiver with the same
 * certificate (webhook.ca_file, NODE_EXTRA_CA_CERTS). The shared server on 5432 is not touched
 * for the database cases: they run on a private cluster from the embedded binaries.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from '../support/certs.js';
import { configYaml, spawnCli, writeTempConfig, type DaemonProcess, type SpawnCliOptions } from '../support/daemon.js';
import { STACK_FRAME } from '../support/fault.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startPrivateMariaDb, startPrivatePostgres, type PrivateMariaDb, type PrivatePostgres } from '../support/private-servers.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { waitUntil } from '../support/wait.js';

const pki: TestPki | undefined = makeTestPki();

afterAll(() => pki?.cleanup());

interface TlsSettings {
  readonly sslmode?: string;
  readonly sslrootcert?: string;
  readonly caFile?: string;
}

/** configYaml (http listen off) plus the TLS keys it does not write. */
function spawnWithTls(dbUrl: string, webhookUrl: string, tls: TlsSettings, options: SpawnCliOptions = {}): DaemonProcess {
  const mysql = dbUrl.startsWith('mysql:');
  let yaml = configYaml({ dbUrl, webhookUrl, tables: [mysql ? 'items' : 'public.items'], retryDelay: 0.05, retryMaxDelay: 0.2 });
  if (mysql) yaml = yaml.replace('type: "postgres"', 'type: "mysql"');
  const database = [
    ...(tls.sslmode ? [`  sslmode: ${JSON.stringify(tls.sslmode)}`] : []),
    ...(tls.sslrootcert ? [`  sslrootcert: ${JSON.stringify(tls.sslrootcert)}`] : []),
  ];
  yaml = yaml.replace('database:\n', `database:\n${database.map((l) => l + '\n').join('')}`);
  if (tls.caFile) yaml = yaml.replace('webhook:\n', `webhook:\n  ca_file: ${JSON.stringify(tls.caFile)}\n`);
  const configPath = writeTempConfig(yaml);
  return spawnCli(['run', '--config', configPath], configPath, options);
}

async function stopDaemon(d: DaemonProcess): Promise<void> {
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
  const { code } = await d.closed;
  expect(code, d.output()).toBe(0);
}

/** Distinct webhook ids the receiver answered 2xx. */
function deliveredIds(rx: Receiver): Set<string> {
  return new Set(rx.events.filter((e) => typeof e.response === 'number' && e.response < 300).map((e) => String(e.headers['webhook-id'])));
}

describe.skipIf(!pki)('PostgreSQL over TLS (private server, ssl on, certificate from the test CA)', () => {
  let server: PrivatePostgres;
  let admin: pg.Client;
  let rx: Receiver;
  let password: string;

  beforeAll(async () => {
    server = await startPrivatePostgres({
      serverConfig: { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' },
      files: { 'server.crt': pki!.serverCert, 'server.key': pki!.serverKey },
    });
    password = server.password;
    admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('CREATE TABLE public.items (id int PRIMARY KEY, name text)');
    rx = await startReceiver();
  });

  afterAll(async () => {
    await rx?.close();
    await admin?.end().catch(() => undefined);
    await server?.close();
  });

  /** The daemon's connections as pg_stat_ssl sees them. */
  async function daemonConnections(): Promise<{ ssl: boolean }[]> {
    const r = await admin.query<{ ssl: boolean }>(
      `SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name LIKE 'app-db-listener%'`,
    );
    return r.rows;
  }

  async function deliversOneRow(d: DaemonProcess, id: number): Promise<void> {
    await d.ready();
    await admin.query('INSERT INTO public.items (id, name) VALUES ($1, $2)', [id, `row ${id}`]);
    await rx.waitFor((events) => events.some((e) => JSON.parse(e.body).data?.id === id), 15_000);
    const conns = await daemonConnections();
    expect(conns.length).toBeGreaterThan(0);
    expect(conns.every((c) => c.ssl)).toBe(true);
    expect(d.output()).not.toContain(password);
  }

  it('verify-full with sslrootcert = the test CA: runs, delivers, and every connection is TLS (pg_stat_ssl)', async () => {
    const d = spawnWithTls(server.url, rx.url, { sslmode: 'verify-full', sslrootcert: pki!.caFile });
    try {
      await deliversOneRow(d, 1);
    } finally {
      await stopDaemon(d);
    }
  });

  it('verify-full with an unrelated CA: exit 1, names the certificate problem and database.sslrootcert', async () => {
    const d = spawnWithTls(server.url, rx.url, { sslmode: 'verify-full', sslrootcert: pki!.otherCaFile });
    const { code } = await d.closed;
    const out = d.output();
    expect(code, out).toBe(1);
    expect(out).toMatch(/self[- ]signed certificate in certificate chain|unable to verify/i);
    expect(out).toContain('database.sslrootcert');
    expect(out).toContain(pki!.otherCaFile);
    expect(out).not.toMatch(STACK_FRAME);
    expect(out).not.toContain(password);
  });

  it('verify-full by an address the certificate does not list (127.0.0.2): exit 1, host name mismatch; verify-ca accepts it', async () => {
    const url = new URL(server.url);
    const fwd = await startTcpProxy(Number(url.port), '127.0.0.1', '127.0.0.2');
    url.hostname = '127.0.0.2';
    url.port = String(fwd.port);
    try {
      const full = spawnWithTls(url.href, rx.url, { sslmode: 'verify-full', sslrootcert: pki!.caFile });
      const { code } = await full.closed;
      const out = full.output();
      expect(code, out).toBe(1);
      expect(out).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
      expect(out).toContain('not issued for database.host "127.0.0.2"');
      expect(out).not.toMatch(STACK_FRAME);
      expect(out).not.toContain(password);

      // The same server and CA, host name not checked.
      const ca = spawnWithTls(url.href, rx.url, { sslmode: 'verify-ca', sslrootcert: pki!.caFile });
      try {
        await deliversOneRow(ca, 2);
      } finally {
        await stopDaemon(ca);
      }
    } finally {
      await fwd.close();
    }
  });

  it('require without a CA: connects encrypted, certificate not verified', async () => {
    const d = spawnWithTls(server.url, rx.url, { sslmode: 'require' });
    try {
      await deliversOneRow(d, 3);
    } finally {
      await stopDaemon(d);
    }
  });
});

describe.skipIf(!pki)('HTTPS webhook signed by a private CA', () => {
  let db: TestDatabase;
  let rx: Receiver;

  beforeAll(async () => {
    db = await createTestDatabase('tls_webhook');
    await db.query('CREATE TABLE public.items (id int PRIMARY KEY, name text)');
    rx = await startReceiver({ tls: { key: pki!.serverKey, cert: pki!.serverCert } });
  });

  afterAll(async () => {
    await rx?.close();
    await db?.drop();
  });

  async function insertRows(from: number, count: number): Promise<void> {
    await db.query(`INSERT INTO public.items (id, name) SELECT g, 'row ' || g FROM generate_series($1::int, $2::int) g`, [from, from + count - 1]);
  }

  async function journalCounts(): Promise<{ events: number; dead: number; certErrors: number }> {
    const r = await db.query<{ events: number; dead: number; cert_errors: number }>(
      `SELECT (SELECT count(*)::int FROM app_db_listener.events) + (SELECT count(*)::int FROM app_db_listener.deliveries) AS events,
              (SELECT count(*)::int FROM app_db_listener.dead_letters) AS dead,
              (SELECT count(*)::int FROM app_db_listener.deliveries WHERE last_error ~* 'certificate') AS cert_errors`,
    );
    const row = r.rows[0]!;
    return { events: row.events, dead: row.dead, certErrors: row.cert_errors };
  }

  it('without ca_file the endpoint is reported down and retried, nothing lost; with ca_file after a restart, all delivered', async () => {
    expect(rx.url.startsWith('https://127.0.0.1:')).toBe(true);
    const untrusting = spawnWithTls(db.url, rx.url, {});
    await untrusting.ready();
    await insertRows(1, 10);
    await waitUntil(() => untrusting.output().includes('Webhook endpoint is down'), 20_000, () => `the outage in the log:\n${untrusting.output()}`);
    await waitUntil(async () => (await journalCounts()).certErrors > 0, 10_000, 'a certificate error recorded on an event');
    await stopDaemon(untrusting);
    // The handshake failed every time: no request reached the receiver, nothing was given up.
    expect(rx.events).toHaveLength(0);
    expect(await journalCounts()).toMatchObject({ events: 10, dead: 0 });

    const trusting = spawnWithTls(db.url, rx.url, { caFile: pki!.caFile });
    try {
      await trusting.ready();
      await insertRows(11, 5);
      await waitUntil(() => deliveredIds(rx).size >= 15, 20_000, () => `15 deliveries, got ${deliveredIds(rx).size}`);
      await waitUntil(async () => (await journalCounts()).events === 0, 10_000, 'the journal to empty');
    } finally {
      await stopDaemon(trusting);
    }
    expect(await journalCounts()).toMatchObject({ events: 0, dead: 0 });
  });

  it('NODE_EXTRA_CA_CERTS trusts the CA too, and ca_file adds to it rather than replacing it', async () => {
    rx.events.length = 0;
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: pki!.caFile };
    // NODE_EXTRA_CA_CERTS alone.
    const extra = spawnWithTls(db.url, rx.url, {}, { env });
    try {
      await extra.ready();
      await insertRows(101, 3);
      await waitUntil(() => deliveredIds(rx).size >= 3, 20_000, () => `3 deliveries, got ${deliveredIds(rx).size}`);
    } finally {
      await stopDaemon(extra);
    }
    // NODE_EXTRA_CA_CERTS with a ca_file for another CA: both are trusted.
    const both = spawnWithTls(db.url, rx.url, { caFile: pki!.otherCaFile }, { env });
    try {
      await both.ready();
      await insertRows(201, 3);
      await waitUntil(() => deliveredIds(rx).size >= 6, 20_000, () => `6 deliveries, got ${deliveredIds(rx).size}\n${both.output()}`);
    } finally {
      await stopDaemon(both);
    }
    expect(await journalCounts()).toMatchObject({ events: 0, dead: 0 });
  });

  it('a ca_file that holds no certificate stops the start with a clear error', async () => {
    const d = spawnWithTls(db.url, rx.url, { caFile: pki!.serverKeyFile });
    const { code } = await d.closed;
    expect(code, d.output()).toBe(1);
    expect(d.output()).toContain('webhook.ca_file');
    expect(d.output()).toContain('holds no PEM certificate');
    expect(d.output()).not.toMatch(STACK_FRAME);
  });
});

describe.skipIf(!pki)('MariaDB over TLS (private server, require_secure_transport, certificate from the test CA)', () => {
  let server: PrivateMariaDb;
  let admin: mysql.Connection;
  let rx: Receiver;
  // By name: with MySQL, verify-full refuses an IP address (see the last case).
  const url = () => `mysql://root@localhost:${server.port}/adl_tls`;

  beforeAll(async () => {
    server = await startPrivateMariaDb({
      // Plain connections are refused: a daemon that connects at all uses TLS.
      serverConfig: { 'ssl-ca': pki!.caFile, 'ssl-cert': pki!.serverCertFile, 'ssl-key': pki!.serverKeyFile, 'require-secure-transport': 'ON' },
    });
    admin = await mysql.createConnection({ host: server.host, port: server.port, user: 'root', ssl: { ca: pki!.caCert } });
    await admin.query('CREATE DATABASE adl_tls');
    await admin.query('CREATE TABLE adl_tls.items (id int PRIMARY KEY, name varchar(50))');
    rx = await startReceiver();
  });

  afterAll(async () => {
    await rx?.close();
    await admin?.end().catch(() => undefined);
    await server?.close();
  });

  it('the server refuses plain connections', async () => {
    await expect(mysql.createConnection({ host: server.host, port: server.port, user: 'root' })).rejects.toThrow(/secure transport|insecure|access denied/i);
  });

  it('verify-full with sslrootcert = the test CA: runs and delivers', async () => {
    const d = spawnWithTls(url(), rx.url, { sslmode: 'verify-full', sslrootcert: pki!.caFile });
    try {
      await d.ready();
      await admin.query('INSERT INTO adl_tls.items (id, name) VALUES (1, ?)', ['row 1']);
      await rx.waitFor((events) => events.some((e) => JSON.parse(e.body).data?.id === 1), 15_000);
    } finally {
      await stopDaemon(d);
    }
  });

  it('verify-full with an unrelated CA: exit 1, names the certificate problem and database.sslrootcert', async () => {
    const d = spawnWithTls(url(), rx.url, { sslmode: 'verify-full', sslrootcert: pki!.otherCaFile });
    const { code } = await d.closed;
    const out = d.output();
    expect(code, out).toBe(1);
    expect(out).toMatch(/self[- ]signed certificate in certificate chain|unable to verify/i);
    expect(out).toContain('database.sslrootcert');
    expect(out).toContain(pki!.otherCaFile);
    expect(out).not.toMatch(STACK_FRAME);
  });

  it('verify-full by an IP address: refused at start (the driver would check it against "localhost"); verify-ca connects', async () => {
    const fwd = await startTcpProxy(server.port, '127.0.0.1', '127.0.0.2');
    try {
      const full = spawnWithTls(`mysql://root@127.0.0.2:${fwd.port}/adl_tls`, rx.url, { sslmode: 'verify-full', sslrootcert: pki!.caFile });
      const { code } = await full.closed;
      const out = full.output();
      expect(code, out).toBe(1);
      expect(out).toContain('needs database.host to be a host name, got the IP address 127.0.0.2');
      expect(out).not.toMatch(STACK_FRAME);

      const ca = spawnWithTls(`mysql://root@127.0.0.2:${fwd.port}/adl_tls`, rx.url, { sslmode: 'verify-ca', sslrootcert: pki!.caFile });
      try {
        await ca.ready();
        await admin.query('INSERT INTO adl_tls.items (id, name) VALUES (2, ?)', ['row 2']);
        await rx.waitFor((events) => events.some((e) => JSON.parse(e.body).data?.id === 2), 15_000);
      } finally {
        await stopDaemon(ca);
      }
    } finally {
      await fwd.close();
    }
  });
});
