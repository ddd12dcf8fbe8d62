import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  ConfigError,
  describeTable,
  formatIssue,
  loadConfig,
  parseConfig,
  parseTableName,
  substituteText,
  type ConfigErrorCode,
} from '../../src/config/index.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

// Values that must never appear in an error message or a warning.
const PASSWORD = 'Pa55-word-Zq81';
const SECRET_BYTES = 'c2VjcmV0LXNpZ25pbmcta2V5LTMyLWJ5dGVzLWxvbmch';
const SECRET = `whsec_${SECRET_BYTES}`;
const URL_PASSWORD = 'UrlPw-77x';

const SECRETS_THAT_MUST_NOT_LEAK = [PASSWORD, SECRET_BYTES, URL_PASSWORD];

type Patch = { [key: string]: unknown };

const BASE: Patch = {
  database: { host: 'db.internal', user: 'app', password: PASSWORD, database: 'shop', table: 'orders' },
  webhook: { url: 'https://hooks.example.com/in', secret: SECRET },
};

/** Deep merge; `undefined` removes a key. */
function merge(base: Patch, patch: Patch): Patch {
  const out: Patch = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key];
    if (value === undefined) delete out[key];
    else if (isObject(value) && isObject(current)) out[key] = merge(current, value);
    else out[key] = value;
  }
  return out;
}

function isObject(value: unknown): value is Patch {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function yamlWith(patch: Patch = {}): string {
  return stringify(merge(BASE, patch));
}

function load(patch: Patch = {}, env: Record<string, string> = {}) {
  return parseConfig(yamlWith(patch), env, 'test.yaml');
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

function expectNoSecrets(text: string): void {
  for (const secret of SECRETS_THAT_MUST_NOT_LEAK) expect(text).not.toContain(secret);
}

describe('the original program\'s sample config', () => {
  const env = { DB_USER: 'listener', DB_PASSWORD: PASSWORD, WEBHOOK_URL: 'https://hooks.example.com/db' };

  it('loads unchanged, with ${VAR} substituted, and yields the documented values', () => {
    const { config, warnings } = loadConfig(path.join(fixtures, 'original-config.yaml'), env);
    expect(warnings).toEqual([]);
    const webhook = {
      url: 'https://hooks.example.com/db',
      timeout: 30,
      retry_count: 3,
      retry_delay: 5,
      retry_max_delay: 300,
      secrets: [],
      headers: {},
    };
    expect(config).toEqual({
      database: {
        type: 'postgres',
        host: 'localhost',
        port: 5432,
        user: 'listener',
        password: PASSWORD,
        database: 'prod_db',
        tables: [{ name: 'users' }],
        sslmode: 'require',
      },
      listener: {
        modes: ['INSERT', 'UPDATE', 'DELETE'],
        poll_interval: 2,
        schema: 'app_db_listener',
        auto_install: true,
        retention: 0,
        capture: 'trigger',
      },
      webhook,
      // The webhook: section is the destination "default", taking every change.
      destinations: [
        { name: 'default', type: 'webhook', webhook, pool_size: 10, tables: undefined, operations: ['INSERT', 'UPDATE', 'DELETE'], format: 'original' },
      ],
      logging: { file: '/var/log/app-db-listener/app.log', level: 'info', format: 'text' },
      worker: { pool_size: 10, shutdown_timeout: 35 },
      http: { listen: { host: '127.0.0.1', port: 9464 }, console: true, attempt_log: true, attempt_log_max_rows: 10_000, attempt_log_max_age: 86_400 },
    });
  });

  it('returns a deeply frozen object', () => {
    const { config } = loadConfig(path.join(fixtures, 'original-config.yaml'), env);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.database.tables)).toBe(true);
    expect(Object.isFrozen(config.database.tables[0])).toBe(true);
    expect(Object.isFrozen(config.webhook.headers)).toBe(true);
    expect(() => {
      (config.worker as { pool_size: number }).pool_size = 1;
    }).toThrow(TypeError);
  });

  it('reports the unset variables by name and key when the environment lacks them', () => {
    const err = configError(() => loadConfig(path.join(fixtures, 'original-config.yaml'), { DB_USER: 'x' }));
    expect(err.code).toBe('CONFIG_ENV');
    expect(err.issues.map((i) => i.path)).toEqual(['database.password', 'webhook.url']);
    expect(err.message).toContain('database.password uses ${DB_PASSWORD}, but the environment variable DB_PASSWORD is not set');
    expect(err.message).toContain('webhook.url uses ${WEBHOOK_URL}');
    expect(err.message).toMatch(/DB_PASSWORD is not set .*\(line 6\)/);
  });
});

describe('the annotated example of docs/configuration.md', () => {
  it('loads with its variables set and no warnings', () => {
    const { config, warnings } = loadConfig(path.join(fixtures, 'full-config.yaml'), {
      DB_PASSWORD: PASSWORD,
      WEBHOOK_SECRET: SECRET,
      API_TOKEN: 'tok',
    });
    expect(warnings).toEqual([]);
    expect(config.database.tables).toEqual([
      { schema: 'public', name: 'users' },
      { schema: 'public', name: 'orders' },
      { schema: 'sales', name: 'Invoice Lines' },
    ]);
    expect(config.webhook.secrets).toEqual([SECRET]);
    expect(config.webhook.headers).toEqual({ Authorization: 'Bearer tok' });
    expect(config.logging.format).toBe('json');
  });
});

describe('docs/configuration.md', () => {
  const docs = readFileSync(path.resolve(fixtures, '..', '..', 'docs', 'configuration.md'), 'utf8');
  const blocks = [...docs.split('## Annotated example')[1]!.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('shows the same annotated example as test/fixtures/full-config.yaml', () => {
    expect(blocks[0]).toBe(readFileSync(path.join(fixtures, 'full-config.yaml'), 'utf8'));
  });

  it('shows a minimal example that loads', () => {
    expect(parseConfig(blocks[1]!, {}, 'minimal.yaml').config.database.tables).toEqual([{ name: 'users' }]);
  });
});

describe('defaults', () => {
  const minimal = 'database:\n  database: shop\n  table: orders\nwebhook:\n  url: http://localhost:9000/hook\n';

  it('fills every key that is not given', () => {
    const { config, warnings } = parseConfig(minimal, {}, 'minimal.yaml');
    const defaultWebhook = {
      url: 'http://localhost:9000/hook',
      timeout: 30,
      retry_count: 3,
      retry_delay: 5,
      retry_max_delay: 300,
      secrets: [],
      headers: {},
    };
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      database: {
        type: 'postgres',
        host: 'localhost',
        port: 5432,
        user: 'postgres',
        password: '',
        database: 'shop',
        tables: [{ name: 'orders' }],
        sslmode: 'disable',
      },
      listener: { modes: ['INSERT', 'UPDATE', 'DELETE'], poll_interval: 1, schema: 'app_db_listener', auto_install: true, retention: 0, capture: 'trigger' },
      webhook: defaultWebhook,
      destinations: [
        {
          name: 'default',
          type: 'webhook',
          webhook: defaultWebhook,
          pool_size: 10,
          tables: undefined,
          operations: ['INSERT', 'UPDATE', 'DELETE'],
          format: 'original',
        },
      ],
      logging: { level: 'info', format: 'text' },
      worker: { pool_size: 10, shutdown_timeout: 35 },
      http: { listen: { host: '127.0.0.1', port: 9464 }, console: true, attempt_log: true, attempt_log_max_rows: 10_000, attempt_log_max_age: 86_400 },
    });
    expect('file' in config.logging).toBe(false);
    expect('url' in config.database).toBe(false);
  });

  it.each([
    ['postgres', 5432, 'postgres'],
    ['mysql', 3306, 'root'],
  ])('uses the port and user of %s', (type, port, user) => {
    const { config } = load({ database: { type, port: undefined, user: undefined } });
    expect(config.database.port).toBe(port);
    expect(config.database.user).toBe(user);
  });

  it('derives shutdown_timeout from webhook.timeout and lets retry_max_delay grow to retry_delay', () => {
    const { config } = load({ webhook: { timeout: 12, retry_delay: 600 } });
    expect(config.worker.shutdown_timeout).toBe(17);
    expect(config.webhook.retry_max_delay).toBe(600);
  });

  it('treats a key without value, ~ and empty text as not set', () => {
    const text = [
      'database:',
      '  host:',
      '  port: ~',
      '  user: ""',
      '  database: shop',
      '  table: orders',
      'listener:',
      'webhook:',
      '  url: http://h/',
      '  timeout: null',
      'logging:',
      '  file: ""',
    ].join('\n');
    const { config } = parseConfig(text, {}, 't.yaml');
    expect(config.database.host).toBe('localhost');
    expect(config.database.port).toBe(5432);
    expect(config.database.user).toBe('postgres');
    expect(config.webhook.timeout).toBe(30);
    expect(config.listener.poll_interval).toBe(1);
    expect(config.logging.file).toBeUndefined();
  });

  it('treats an empty file as a config with nothing set', () => {
    const err = configError(() => parseConfig('', {}, 'empty.yaml'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.issues.map((i) => i.path).sort()).toEqual(['database.database', 'database.table', 'webhook.url']);
  });
});

describe('${VAR} substitution', () => {
  it('substitutes set variables, defaults for unset or empty ones, and $${ as a literal', () => {
    const text = [
      'database:',
      '  host: "${DB_HOST:-db.local}"',
      '  port: ${DB_PORT}',
      '  user: "${DB_USER:-fallback}"',
      '  password: "${DB_PASSWORD}"',
      '  database: "pre_${DB_NAME}_post"',
      '  tables: ["${SCHEMA}.users", "$${NOT_A_VAR}"]',
      'webhook:',
      '  url: ${WEBHOOK_URL}',
      '  timeout: "${TIMEOUT:-7.5}"',
    ].join('\n');
    const env = {
      DB_PORT: '6543',
      DB_USER: '',
      DB_PASSWORD: 'it\'s "quoted" # not a comment\nsecond line: x',
      DB_NAME: 'shop',
      SCHEMA: 'sales',
      WEBHOOK_URL: 'https://h.example/in?a=1&b=${X}',
    };
    const { config } = parseConfig(text, env, 't.yaml');
    expect(config.database.host).toBe('db.local');
    expect(config.database.port).toBe(6543);
    expect(config.database.user).toBe('fallback');
    expect(config.database.password).toBe(env.DB_PASSWORD);
    expect(config.database.database).toBe('pre_shop_post');
    expect(config.database.tables).toEqual([{ schema: 'sales', name: 'users' }, { name: '${NOT_A_VAR}' }]);
    // A substituted value is not scanned again.
    expect(config.webhook.url).toBe('https://h.example/in?a=1&b=${X}');
    expect(config.webhook.timeout).toBe(7.5);
  });

  it('keeps a set but empty variable when there is no default', () => {
    expect(substituteText('a${E}b', { E: '' })).toEqual({ value: 'ab', problems: [] });
    expect(substituteText('a${E:-x}b', { E: '' })).toEqual({ value: 'axb', problems: [] });
    expect(substituteText('$$ and $HOME and $${A}', {})).toEqual({ value: '$$ and $HOME and ${A}', problems: [] });
  });

  it('names the unset variable and the key where it is used', () => {
    const err = configError(() => load({ database: { host: '${PGHOST_MISSING}' } }));
    expect(err.code).toBe('CONFIG_ENV');
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]!.path).toBe('database.host');
    expect(err.message).toContain('PGHOST_MISSING');
    expect(err.message).toContain('database.host uses ${PGHOST_MISSING}');
  });

  it('rejects malformed references without quoting them in secret keys', () => {
    const err = configError(() => load({ database: { password: 'abc${not valid}', host: 'x${' } }));
    expect(err.code).toBe('CONFIG_ENV');
    expect(err.issues.map((i) => i.path)).toEqual(['database.host', 'database.password']);
    expect(err.message).toContain('database.host has "${" without a closing "}"');
    expect(err.message).toContain('database.password has an invalid reference: use ${NAME}');
    expect(err.message).not.toContain('not valid');
  });

  it('ignores references inside unknown keys', () => {
    const { warnings } = load({ webhook: { retries: '${UNSET_VAR}' } });
    expect(warnings).toEqual([expect.stringContaining('unknown key "webhook.retries" (ignored)')]);
  });
});

describe('numbers and booleans', () => {
  it('reads numbers and booleans from text', () => {
    const { config } = load({
      database: { port: '5433' },
      listener: { poll_interval: '0.2', auto_install: 'false', retention: '86400' },
      webhook: { timeout: ' 10 ', retry_count: '0', retry_delay: '2.5', retry_max_delay: '60' },
      worker: { pool_size: '20', shutdown_timeout: '1e2' },
    });
    expect(config.database.port).toBe(5433);
    expect(config.listener).toMatchObject({ poll_interval: 0.2, auto_install: false, retention: 86400 });
    expect(config.webhook).toMatchObject({ timeout: 10, retry_count: 0, retry_delay: 2.5, retry_max_delay: 60 });
    expect(config.worker).toEqual({ pool_size: 20, shutdown_timeout: 100 });
  });

  it.each(['true', 'TRUE', 'yes', 'on', '1'])('reads %s as true', (word) => {
    expect(load({ listener: { auto_install: word } }).config.listener.auto_install).toBe(true);
  });

  it('keeps text that looks like a number as written', () => {
    const { config } = load({ database: { password: undefined, user: undefined } });
    expect(config.database.password).toBe('');
    const text = 'database:\n  user: 0123\n  password: 00042\n  database: 1e3\n  table: 2024\nwebhook:\n  url: http://h/\n';
    const parsed = parseConfig(text, {}, 't.yaml').config.database;
    expect(parsed).toMatchObject({ user: '0123', password: '00042', database: '1e3', tables: [{ name: '2024' }] });
  });
});

describe('listener.modes', () => {
  it.each([
    ['insert,update,delete', ['INSERT', 'UPDATE', 'DELETE']],
    ['INSERT', ['INSERT']],
    [' Delete , insert ', ['INSERT', 'DELETE']],
    ['update,update,', ['UPDATE']],
    [['delete', 'Update'], ['UPDATE', 'DELETE']],
  ])('reads %j', (modes, expected) => {
    expect(load({ listener: { modes } }).config.listener.modes).toEqual(expected);
  });
});

describe('tables', () => {
  it('merges table and tables in order, without duplicates', () => {
    const { config } = load({
      database: { table: 'orders', tables: ['public.users', 'orders', 'sales.invoices', 'public.users'] },
    });
    expect(config.database.tables).toEqual([
      { name: 'orders' },
      { schema: 'public', name: 'users' },
      { schema: 'sales', name: 'invoices' },
    ]);
  });

  it('accepts a comma-separated string and quoted names', () => {
    const { config } = load({
      database: { table: undefined, tables: 'a, "My.Schema"."T", My Table, "x,y", "q""t".b' },
    });
    expect(config.database.tables).toEqual([
      { name: 'a' },
      { schema: 'My.Schema', name: 'T' },
      { name: 'My Table' },
      { name: 'x,y' },
      { schema: 'q"t', name: 'b' },
    ]);
  });

  it('describes a table so that parsing the description gives it back', () => {
    for (const table of [{ name: 'users' }, { schema: 'sales', name: 'orders' }, { schema: 'My.Schema', name: 'a "b"' }, { name: ' x,y ' }]) {
      const text = describeTable(table);
      expect(parseTableName(text)).toEqual({ ok: true, table });
    }
    expect(describeTable({ schema: 'sales', name: 'Invoice Lines' })).toBe('sales.Invoice Lines');
    expect(describeTable({ schema: 'a.b', name: 'c' })).toBe('"a.b".c');
  });
});

describe('database.url', () => {
  it('fills the connection keys from the URL, which wins over the separate keys', () => {
    const { config, warnings } = load({
      database: {
        url: `mysql://repl:${encodeURIComponent('p@ss/w:rd')}@mysql.internal:3307/shop?sslmode=verify-full`,
        host: 'other-host',
        user: undefined,
        password: undefined,
        database: undefined,
      },
    });
    expect(config.database).toMatchObject({
      type: 'mysql',
      host: 'mysql.internal',
      port: 3307,
      user: 'repl',
      password: 'p@ss/w:rd',
      database: 'shop',
      sslmode: 'verify-full',
    });
    expect(warnings).toEqual(['database.host is ignored: database.url gives a different host']);
  });

  it('does not require host, user or database with a postgres URL', () => {
    const { config } = parseConfig('database:\n  url: postgresql://app@pg/\n  table: t\nwebhook:\n  url: https://h/\n', {}, 't.yaml');
    expect(config.database).toMatchObject({ type: 'postgres', host: 'pg', port: 5432, user: 'app', database: 'app' });
    expect(config.database.url).toBe('postgresql://app@pg/');
  });
});

describe('webhook extensions', () => {
  it('accepts several secrets and extra headers', () => {
    const second = 'whsec_' + Buffer.from('another-secret-of-24-bytes!').toString('base64');
    const { config } = load({
      webhook: { secret: `${SECRET}  ${second}`, headers: { Authorization: 'Bearer x', 'X-Env': 'prod' } },
    });
    expect(config.webhook.secrets).toEqual([SECRET, second]);
    expect(config.webhook.headers).toEqual({ Authorization: 'Bearer x', 'X-Env': 'prod' });
  });

  it('warns about a short secret without showing it', () => {
    const short = 'whsec_' + Buffer.from('short').toString('base64');
    const { warnings } = load({ webhook: { secret: short } });
    expect(warnings).toEqual(['webhook.secret: the secret has only 5 bytes; use at least 24 random bytes']);
  });

  it('reads logging.level case-insensitively, with warning as warn', () => {
    expect(load({ logging: { level: 'WARNING', format: 'JSON' } }).config.logging).toEqual({ level: 'warn', format: 'json' });
  });
});

describe('http.listen', () => {
  it.each([
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:9464', { host: '::1', port: 9464 }],
    [':9000', { host: '0.0.0.0', port: 9000 }],
    ['off', null],
    ['false', null],
    [false, null],
    [null, { host: '127.0.0.1', port: 9464 }],
  ])('reads %j', (listen, expected) => {
    const { config } = load({ http: { listen } });
    expect(config.http.listen).toEqual(expected);
  });

  it.each(['9464', 'localhost', 'host:99999', 'host:port', 'a b:1'])('rejects %j and names the key', (listen) => {
    const err = configError(() => load({ http: { listen } }));
    expect(err.message).toContain('http.listen must be "host:port"');
  });
});

describe('unknown keys', () => {
  it('are warnings that name the full key path, never errors', () => {
    const text = [
      'database:',
      '  database: shop',
      '  table: t',
      '  pasword: x',
      'webhook:',
      '  url: http://h/',
      '  retries: 5',
      '  timout: 3',
      '  pool_size: 4',
      'metrics:',
      '  port: 9090',
    ].join('\n');
    const { config, warnings } = parseConfig(text, {}, 'app.yaml');
    expect(config.webhook.timeout).toBe(30);
    expect(warnings).toEqual([
      'app.yaml line 4: unknown key "database.pasword" (ignored), did you mean "database.password"?',
      'app.yaml line 7: unknown key "webhook.retries" (ignored)',
      'app.yaml line 8: unknown key "webhook.timout" (ignored), did you mean "webhook.timeout"?',
      'app.yaml line 9: unknown key "webhook.pool_size" (ignored), did you mean "worker.pool_size"?',
      'app.yaml line 10: unknown key "metrics" (ignored)',
    ]);
  });

  it('are listed in the error when the configuration is also invalid', () => {
    const err = configError(() => parseConfig('database:\n  database: d\n  table: t\nwebhok:\n  url: http://h/\n', {}, 'a.yaml'));
    expect(err.message).toContain('webhook.url is required');
    expect(err.message).toContain('note: a.yaml line 4: unknown key "webhok" (ignored), did you mean "webhook"?');
  });
});

interface InvalidCase {
  name: string;
  patch?: Patch;
  text?: string;
  code?: ConfigErrorCode;
  /** Key path of the issue ('' for the whole file). */
  path: string;
  fragment: string;
  line?: number;
}

/** A `destinations:` entry with a broker's keys, and the issue expected at destinations[0].<key>. */
function brokerCase(name: string, entry: Record<string, unknown>, key: string, fragment: string): InvalidCase[] {
  return [{ name, patch: { destinations: [{ name: 'broker', ...entry }] }, path: `destinations[0].${key}`, fragment }];
}

const INVALID: InvalidCase[] = [
  { name: 'non-numeric port', patch: { database: { port: 'abc' } }, path: 'database.port', fragment: 'must be an integer between 1 and 65535, got "abc"' },
  { name: 'port out of range', patch: { database: { port: 70000 } }, path: 'database.port', fragment: 'must be an integer between 1 and 65535, got "70000"' },
  { name: 'negative timeout', patch: { webhook: { timeout: -1 } }, path: 'webhook.timeout', fragment: 'must be a number of seconds greater than 0 and at most 3600, got "-1"' },
  { name: 'unknown capture', patch: { listener: { capture: 'wal' } }, path: 'listener.capture', fragment: 'must be one of "trigger" or "log", got "wal"' },
  { name: 'unknown database type', patch: { database: { type: 'oracle' } }, path: 'database.type', fragment: 'must be one of "postgres" or "mysql", got "oracle"' },
  { name: 'missing webhook url', patch: { webhook: { url: undefined } }, path: 'webhook.url', fragment: 'is required' },
  { name: 'empty webhook url', patch: { webhook: { url: '' } }, path: 'webhook.url', fragment: 'is required: the http:// or https:// URL that receives the events, got ""' },
  {
    name: 'ftp webhook url (credentials hidden)',
    patch: { webhook: { url: `ftp://hooks:${URL_PASSWORD}@files.example.com/in` } },
    path: 'webhook.url',
    fragment: 'must be an http:// or https:// URL with a host name, got "ftp://***@files.example.com/in"',
  },
  { name: 'unknown mode', patch: { listener: { modes: 'insert,truncate' } }, path: 'listener.modes', fragment: '"truncate" is not an operation' },
  { name: 'empty modes', patch: { listener: { modes: '' } }, path: 'listener.modes', fragment: 'must list one or more of insert, update, delete' },
  { name: 'pool_size 0', patch: { worker: { pool_size: 0 } }, path: 'worker.pool_size', fragment: 'must be an integer between 1 and 1000, got "0"' },
  { name: 'pool_size too large', patch: { worker: { pool_size: 5000 } }, path: 'worker.pool_size', fragment: 'between 1 and 1000' },
  { name: 'unknown log level', patch: { logging: { level: 'verbose' } }, path: 'logging.level', fragment: 'must be one of "debug", "info", "warn" or "error", got "verbose"' },
  { name: 'unknown log format', patch: { logging: { format: 'xml' } }, path: 'logging.format', fragment: 'must be one of "text" or "json"' },
  { name: 'secret that is not base64', patch: { webhook: { secret: 'whsec_***' } }, path: 'webhook.secret', fragment: 'the secret is not standard base64 after whsec_' },
  { name: 'secret without prefix', patch: { webhook: { secret: SECRET_BYTES } }, path: 'webhook.secret', fragment: 'the secret does not start with whsec_, got <redacted>' },
  {
    name: 'second secret bad',
    patch: { webhook: { secret: `${SECRET} whsec_` } },
    path: 'webhook.secret',
    fragment: 'secret 2 of 2 has nothing after whsec_',
  },
  {
    name: 'reserved header',
    patch: { webhook: { headers: { 'Webhook-Signature': `v1,${PASSWORD}` } } },
    path: 'webhook.headers.Webhook-Signature',
    fragment: 'cannot be set: app-db-listener sets this header itself',
  },
  ...brokerCase('nats destination with an http url', { type: 'nats', url: 'http://127.0.0.1:4222' }, 'url', 'must be a nats:// or tls:// URL with a host name for a destination of type nats'),
  ...brokerCase('rabbitmq destination without a url', { type: 'rabbitmq' }, 'url', 'is required: the amqp:// or amqps:// URL of the rabbitmq server'),
  ...brokerCase('a broker url with a wrong scheme (credentials hidden)', { type: 'redis', url: `amqp://u:${URL_PASSWORD}@127.0.0.1/` }, 'url', 'got "amqp://***@127.0.0.1/"'),
  ...brokerCase("another type's key", { type: 'redis', url: 'redis://127.0.0.1:6379', subject: 'x' }, 'subject', 'applies to destinations of type nats only (this one is redis)'),
  ...brokerCase('an unknown placeholder', { type: 'mqtt', url: 'mqtt://127.0.0.1', topic: 'db/{tabel}' }, 'topic', 'has an unknown placeholder {tabel}: use {schema}, {table} or {operation}'),
  ...brokerCase('an unmatched brace', { type: 'rabbitmq', url: 'amqp://127.0.0.1', routing_key: '{schema.{table}' }, 'routing_key', 'has an unmatched { or }'),
  ...brokerCase('a wildcard subject', { type: 'nats', url: 'nats://127.0.0.1', subject: 'db.>' }, 'subject', 'without spaces, empty tokens or the wildcards * and >'),
  ...brokerCase('a wildcard topic', { type: 'mqtt', url: 'mqtt://127.0.0.1', topic: 'db/+/{table}' }, 'topic', 'must not contain + or # (MQTT wildcards)'),
  ...brokerCase('a webhook secret on a broker', { type: 'nats', url: 'nats://127.0.0.1', secret: SECRET }, 'secret', 'applies to webhook destinations only'),
  ...brokerCase('a redis url whose path is not a database number', { type: 'redis', url: 'redis://127.0.0.1:6379/abc' }, 'url', 'must end with a database number (or nothing), e.g. redis://127.0.0.1:6379/0'),
  ...brokerCase('maxlen 0', { type: 'redis', url: 'redis://127.0.0.1', maxlen: 0 }, 'maxlen', 'must be an integer'),
  ...brokerCase('create_stream without a name', { type: 'nats', url: 'nats://127.0.0.1', create_stream: { subjects: ['db.>'] } }, 'create_stream.name', 'is required: the JetStream stream name'),
  { name: 'header name with a space', patch: { webhook: { headers: { 'X Bad': 'v' } } }, path: 'webhook.headers.X Bad', fragment: 'is not a valid header name' },
  { name: 'headers not a mapping', patch: { webhook: { headers: ['X-A: b'] } }, path: 'webhook.headers', fragment: 'must be a mapping of header names to values (Name: value), got a list' },
  { name: 'retry_count 1.5', patch: { webhook: { retry_count: 1.5 } }, path: 'webhook.retry_count', fragment: 'must be an integer between 0 and 10000, got "1.5"' },
  { name: 'retry_delay negative', patch: { webhook: { retry_delay: '-5' } }, path: 'webhook.retry_delay', fragment: 'between 0 and 86400' },
  { name: 'retry_max_delay below retry_delay', patch: { webhook: { retry_delay: 10, retry_max_delay: 5 } }, path: 'webhook.retry_max_delay', fragment: 'must be at least webhook.retry_delay (10), got "5"' },
  { name: 'poll_interval 0', patch: { listener: { poll_interval: 0 } }, path: 'listener.poll_interval', fragment: 'must be a number of seconds greater than 0 and at most 3600, got "0"' },
  { name: 'poll_interval not a number', patch: { listener: { poll_interval: '2s' } }, path: 'listener.poll_interval', fragment: 'got "2s"' },
  { name: 'auto_install not a boolean', patch: { listener: { auto_install: 'maybe' } }, path: 'listener.auto_install', fragment: 'must be true or false, got "maybe"' },
  { name: 'schema name with a dash', patch: { listener: { schema: 'my-schema' } }, path: 'listener.schema', fragment: 'must start with a letter or underscore' },
  { name: 'schema name too long', patch: { listener: { schema: 'a'.repeat(41) } }, path: 'listener.schema', fragment: 'at most 40 characters' },
  { name: 'missing table', patch: { database: { table: undefined } }, path: 'database.table', fragment: 'is required: name at least one table' },
  { name: 'table with three parts', patch: { database: { table: 'a.b.c' } }, path: 'database.table', fragment: 'must be "table" or "schema.table"' },
  { name: 'bad item in tables', patch: { database: { tables: ['ok', '"unclosed'] } }, path: 'database.tables[1]', fragment: 'has a double quote that is not closed' },
  { name: 'table name too long for PostgreSQL', patch: { database: { table: 'x'.repeat(64) } }, path: 'database.table', fragment: 'has a name longer than PostgreSQL allows (63 bytes), got "xxx' },
  { name: 'missing database name', patch: { database: { database: undefined } }, path: 'database.database', fragment: 'is required (the database name), unless database.url is set' },
  { name: 'unknown sslmode', patch: { database: { sslmode: 'sometimes' } }, path: 'database.sslmode', fragment: 'must be one of "disable", "allow", "prefer", "require", "verify-ca" or "verify-full"' },
  {
    name: 'database url with another scheme (credentials hidden)',
    patch: { database: { url: `http://dbuser:${URL_PASSWORD}@db/shop` } },
    path: 'database.url',
    fragment: 'must be a postgres://, postgresql:// or mysql:// URL, got "http://***@db/shop"',
  },
  {
    name: 'database url contradicting type',
    patch: { database: { type: 'postgres', url: `mysql://u:${URL_PASSWORD}@db/shop` } },
    path: 'database.url',
    fragment: 'is a mysql URL but database.type is "postgres"',
  },
  { name: 'password that is not text', patch: { database: { password: { value: PASSWORD } } }, path: 'database.password', fragment: 'must be a text value, got <redacted>' },
  { name: 'section that is not a mapping', patch: { worker: 'ten' }, path: 'worker', fragment: 'must be a mapping of keys' },
  { name: 'not a mapping at all', text: '- database\n- webhook\n', path: '', fragment: 'the configuration must be a YAML mapping' },
  {
    name: 'YAML syntax error',
    text: `database:\n  password: "${PASSWORD}\n  host: x\n`,
    code: 'CONFIG_YAML',
    path: '',
    fragment: 'Missing closing "quote',
    line: 4,
  },
  { name: 'duplicate key', text: 'webhook:\n  url: http://a/\n  url: http://b/\n', code: 'CONFIG_YAML', path: '', fragment: 'Map keys must be unique', line: 3 },
  { name: 'tab indentation', text: 'webhook:\n\turl: http://a/\n', code: 'CONFIG_YAML', path: '', fragment: 'Tabs are not allowed', line: 2 },
];

describe('broker destinations', () => {
  const yaml = (entry: string) => `database:\n  url: "postgres://u@127.0.0.1/db"\n  table: t\ndestinations:\n  - name: b\n${entry}`;
  it('take their own keys with the defaults settled', () => {
    const [nats] = parseConfig(yaml('    type: nats\n    url: nats://127.0.0.1:4222\n')).config.destinations;
    expect(nats).toMatchObject({ type: 'nats', nats: { subject: 'db.{schema}.{table}' } });
    const [rabbit] = parseConfig(yaml('    type: rabbitmq\n    url: amqp://127.0.0.1\n    routing_key: "{table}"\n')).config.destinations;
    expect(rabbit).toMatchObject({ rabbitmq: { exchange: 'db.changes', routing_key: '{table}' } });
    const [redis] = parseConfig(yaml('    type: redis\n    url: redis://127.0.0.1/2\n    maxlen: 1000\n')).config.destinations;
    expect(redis).toMatchObject({ redis: { stream: 'db:{schema}.{table}', maxlen: 1000 } });
    const [mqtt] = parseConfig(yaml('    type: mqtt\n    url: mqtt://127.0.0.1\n')).config.destinations;
    expect(mqtt).toMatchObject({ mqtt: { topic: 'db/{schema}/{table}' } });
  });

  it('take cloudevents-binary with a batch (one message per event), which a webhook does not', () => {
    const entry = '    format: cloudevents-binary\n    batch: { max_events: 10 }\n';
    expect(parseConfig(yaml(`    type: nats\n    url: nats://127.0.0.1\n${entry}`)).config.destinations[0]!.batch).toBeDefined();
    expect(() => parseConfig(yaml(`    url: https://h.example/x\n${entry}`))).toThrow(/destinations\[0\]\.batch cannot be used with format cloudevents-binary/);
  });
});

describe('invalid configurations', () => {
  it('has at least 15 cases', () => {
    expect(INVALID.length).toBeGreaterThanOrEqual(15);
  });

  it.each(INVALID)('$name → $path', (c) => {
    const err = configError(() => (c.text !== undefined ? parseConfig(c.text, {}, 'bad.yaml') : load(c.patch)));
    expect(err.code).toBe(c.code ?? 'CONFIG_INVALID');
    expect(err.source).toBe(c.text !== undefined ? 'bad.yaml' : 'test.yaml');
    const issue = err.issues.find((i) => i.path === c.path && formatIssue(i).includes(c.fragment));
    expect(issue, `no issue at "${c.path}" with ${JSON.stringify(c.fragment)} in:\n${err.message}`).toBeDefined();
    // The message has a line that starts with the key and says what is wrong.
    const line = err.message.split('\n').find((l) => l.includes(c.fragment));
    expect(line).toBeDefined();
    if (c.path !== '') expect(line).toMatch(new RegExp(`(^|: |- )${c.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `));
    if (c.line !== undefined) expect(issue!.line).toBe(c.line);
    expectNoSecrets(err.message);
    expectNoSecrets(JSON.stringify(err.issues));
  });

  it('reports every problem at once, in file order, one line each', () => {
    const text = [
      'database:',
      '  port: abc',
      '  type: oracle',
      '  database: d',
      '  table: t',
      'webhook:',
      '  url: ftp://x/',
      'worker:',
      '  pool_size: 0',
    ].join('\n');
    const err = configError(() => parseConfig(text, {}, 'many.yaml'));
    expect(err.message.split('\n')).toEqual([
      'many.yaml: invalid configuration (4 problems):',
      '  - database.port must be an integer between 1 and 65535, got "abc" (line 2)',
      '  - database.type must be one of "postgres" or "mysql", got "oracle" (line 3)',
      '  - webhook.url must be an http:// or https:// URL with a host name, got "ftp://x/" (line 7)',
      '  - worker.pool_size must be an integer between 1 and 1000, got "0" (line 9)',
    ]);
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'adl-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the path of a missing file', () => {
    const file = path.join(dir, 'nope', 'config.yaml');
    const err = configError(() => loadConfig(file));
    expect(err.code).toBe('CONFIG_NOT_FOUND');
    expect(err.message).toBe(`${file}: configuration file not found: no file at ${file}`);
  });

  it('says when the path is a directory', () => {
    const err = configError(() => loadConfig(dir));
    expect(err.code).toBe('CONFIG_READ');
    expect(err.message).toContain('it is a directory');
  });

  it('reads a file with a byte order mark and reports lines in it', () => {
    const file = path.join(dir, 'bom.yaml');
    writeFileSync(file, '\uFEFF' + yamlWith({ database: { port: 'x' } }));
    const err = configError(() => loadConfig(file, {}));
    expect(err.source).toBe(file);
    expect(err.issues[0]).toMatchObject({ path: 'database.port', got: '"x"' });
    expect(err.issues[0]!.line).toBeGreaterThan(0);
  });
});
