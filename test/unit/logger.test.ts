import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import type { LoggingConfig } from '../../src/config/types.js';
import { createLogger, formatLocalTime, formatTextLine, type LoggerHandle } from '../../src/observability/logger.js';
import { redactText, redactUrl } from '../../src/observability/redact.js';
import { waitUntil } from '../support/wait.js';

const dir = mkdtempSync(path.join(tmpdir(), 'adl-logger-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stream that keeps what it receives. */
function collector(): { stream: Writable; text: () => string; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const text = () => chunks.join('');
  return { stream, text, lines: () => text().split('\n').filter((l) => l !== '') };
}

function textLogger(cfg: Partial<LoggingConfig> = {}) {
  const out = collector();
  const handle = createLogger({ level: 'debug', format: 'text', ...cfg }, { destination: out.stream });
  return { ...out, handle, log: handle.logger };
}

/** Waits until the collected output has `count` lines. */
async function linesOf(out: { lines: () => string[] }, count: number): Promise<string[]> {
  return waitUntil(
    () => (out.lines().length >= count ? out.lines() : undefined),
    5000,
    () => `${count} log lines, have ${JSON.stringify(out.lines())}`,
  );
}

function readIfExists(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

async function fileContaining(file: string, needle: string): Promise<string> {
  return waitUntil(
    () => {
      const text = readIfExists(file);
      return text.includes(needle) ? text : undefined;
    },
    5000,
    () => `${file} to contain ${JSON.stringify(needle)}; it has ${JSON.stringify(readIfExists(file))}`,
  );
}

describe('text format', () => {
  it('writes the original line shape, in local time, with extra fields as key=value', async () => {
    const out = textLogger();
    const before = Date.now();
    out.log.info({ table: 'users', id: 42, op: 'INSERT' }, 'Delivered event');
    const [line] = await linesOf(out, 1);
    expect(line).toMatch(/^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] INFO: Delivered event table=users id=42 op=INSERT$/);

    // The timestamp is local time, within a few seconds of the call.
    const m = /^\[(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\]/.exec(line!)!;
    const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [number, number, number, number, number, number];
    const stamped = new Date(year, month - 1, day, hour, minute, second).getTime();
    expect(Math.abs(stamped - before)).toBeLessThan(5000);
  });

  it('names the levels DEBUG, INFO, WARN and ERROR', async () => {
    const out = textLogger();
    out.log.debug('d');
    out.log.info('i');
    out.log.warn('w');
    out.log.error('e');
    const lines = await linesOf(out, 4);
    expect(lines.map((l) => l.replace(/^\[[^\]]+\] /, ''))).toEqual(['DEBUG: d', 'INFO: i', 'WARN: w', 'ERROR: e']);
  });

  it('quotes text with spaces, prints errors as their message and child bindings as fields', async () => {
    const out = textLogger();
    const child = out.log.child({ component: 'dispatch' });
    child.warn({ reason: 'connect refused by peer', empty: '', flag: true, nothing: null, obj: { a: [1, 2] } }, 'Retrying');
    child.error({ err: new Error('socket hang up') }, 'Delivery failed');
    child.error(new Error('boom'));
    out.log.info('two\nlines');
    const lines = (await linesOf(out, 4)).map((l) => l.replace(/^\[[^\]]+\] /, ''));
    expect(lines).toEqual([
      'WARN: Retrying component=dispatch reason="connect refused by peer" empty="" flag=true nothing=null obj={"a":[1,2]}',
      'ERROR: Delivery failed component=dispatch err="socket hang up"',
      'ERROR: boom component=dispatch',
      'INFO: two\\nlines',
    ]);
  });

  it('formats a pino JSON line, and passes other text through', () => {
    const time = new Date(2026, 10, 26, 18, 0, 33).getTime();
    expect(formatTextLine(JSON.stringify({ level: 30, time, msg: 'Notification sent', table: 'users' }))).toBe(
      '[2026-11-26 18:00:33] INFO: Notification sent table=users\n',
    );
    expect(formatTextLine('not json\n')).toBe('not json\n');
    expect(formatLocalTime(new Date(2026, 0, 2, 3, 4, 5))).toBe('2026-01-02 03:04:05');
  });
});

describe('json format', () => {
  it('writes pino JSON lines with an ISO time', async () => {
    const out = collector();
    const { logger } = createLogger({ level: 'info', format: 'json' }, { destination: out.stream });
    logger.info({ table: 'users', id: 7 }, 'Delivered');
    const [line] = await linesOf(out, 1);
    const record = JSON.parse(line!) as Record<string, unknown>;
    expect(record).toMatchObject({ level: 30, msg: 'Delivered', table: 'users', id: 7 });
    expect(record.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Math.abs(Date.parse(record.time as string) - Date.now())).toBeLessThan(5000);
  });
});

describe('levels', () => {
  it.each([
    ['debug', ['debug', 'info', 'warn', 'error']],
    ['info', ['info', 'warn', 'error']],
    ['warn', ['warn', 'error']],
    ['error', ['error']],
  ] as const)('at %s writes %j', async (level, expected) => {
    const out = textLogger({ level });
    out.log.debug('debug');
    out.log.info('info');
    out.log.warn('warn');
    out.log.error('error');
    out.log.error('end');
    const lines = await linesOf(out, expected.length + 1);
    expect(lines.map((l) => l.replace(/^.*?: /, ''))).toEqual([...expected, 'end']);
  });
});

describe('log file', () => {
  it('creates missing directories and appends to an existing file', async () => {
    const file = path.join(dir, 'created', 'nested', 'app.log');
    const first = createLogger({ level: 'info', format: 'text', file });
    first.logger.info('first run');
    await fileContaining(file, 'first run');
    await first.close();

    const second = createLogger({ level: 'info', format: 'text', file });
    second.logger.info('second run');
    const text = await fileContaining(file, 'second run');
    await second.close();
    expect(text.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(/^\[[^\]]+\] INFO: first run$/),
      expect.stringMatching(/^\[[^\]]+\] INFO: second run$/),
    ]);
  });

  it('reopens the path after the file was renamed (log rotation)', async () => {
    const file = path.join(dir, 'rotate', 'app.log');
    const rotated = `${file}.1`;
    const handle: LoggerHandle = createLogger({ level: 'info', format: 'text', file });
    try {
      handle.logger.info('before rotation');
      await fileContaining(file, 'before rotation');

      renameSync(file, rotated);
      handle.reopen();
      handle.logger.info('after rotation');

      const fresh = await fileContaining(file, 'after rotation');
      expect(fresh).not.toContain('before rotation');
      const old = readFileSync(rotated, 'utf8');
      expect(old).toContain('before rotation');
      expect(old).not.toContain('after rotation');
    } finally {
      await handle.close();
    }
  });

  it('flushes and closes; logging after close is ignored, closing twice is fine', async () => {
    const file = path.join(dir, 'close', 'app.log');
    const handle = createLogger({ level: 'info', format: 'json', file });
    handle.logger.info('last words');
    await handle.flush();
    await handle.close();
    expect(() => handle.logger.info('too late')).not.toThrow();
    await handle.close();
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('last words');
    expect(text).not.toContain('too late');
  });

  it('fails at creation when the file cannot be opened', () => {
    const blocker = path.join(dir, 'a-file');
    writeFileSync(blocker, '');
    expect(() => createLogger({ level: 'info', format: 'text', file: path.join(blocker, 'app.log') })).toThrow(/ENOTDIR|EEXIST/);
  });
});

describe('text lines written without the JSON line', () => {
  it('are the same lines pino\'s JSON gives, secrets hidden', async () => {
    const text = textLogger({ level: 'info' });
    const json = collector();
    const jsonHandle = createLogger({ level: 'info', format: 'json' }, { destination: json.stream });
    const calls: Array<[Record<string, unknown>, string] | [string]> = [
      [{ event_id: 'evt_a_1', attempt: 1, status: 200, duration_ms: 3, latency_ms: 12, ok: true, none: null }, 'Webhook delivered: INSERT on table t'],
      [{ note: 'two words', quote: 'a"b', empty: '', url: 'https://u:pw@h/x', password: 'pw-123456' }, 'fields that need quoting'],
      ['a message alone'],
    ];
    for (const call of calls) {
      (text.log.info as (...a: unknown[]) => void)(...call);
      (jsonHandle.logger.info as (...a: unknown[]) => void)(...call);
    }
    const got = await linesOf(text, calls.length);
    // The JSON format carries pid and hostname, which the text format has no room for.
    const withoutBase = (l: string) => {
      const { pid: _pid, hostname: _host, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return JSON.stringify(rest);
    };
    const want = (await linesOf(json, calls.length)).map((l) => formatTextLine(withoutBase(l)).trimEnd());
    const withoutTime = (l: string) => l.replace(/^\[[^\]]+\] /, '');
    expect(got.map(withoutTime)).toEqual(want.map(withoutTime));
    expect(got.join('\n')).not.toContain('pw-123456');
    expect(got[1]).toContain('url=https://***@h/x');
  });
});

describe('buffered file writes', () => {
  it('a line is not written by the log call itself, and reaches the file within a second', async () => {
    const file = path.join(dir, 'buffered', 'app.log');
    const handle = createLogger({ level: 'info', format: 'text', file });
    handle.logger.info('first line');
    // No synchronous write(2) per line: the call returned with the line still in memory.
    expect(readIfExists(file)).not.toContain('first line');
    await fileContaining(file, 'INFO: first line');
    await handle.close();
  });

  it('close() writes every buffered line, in order', async () => {
    const file = path.join(dir, 'buffered', 'close.log');
    const handle = createLogger({ level: 'info', format: 'json', file });
    for (let i = 0; i < 5000; i++) handle.logger.info({ n: i }, 'line');
    await handle.close();
    const numbers = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n);
    expect(numbers).toEqual(Array.from({ length: 5000 }, (_, i) => i));
  });

  it('process.exit right after logging loses nothing', async () => {
    const file = path.join(dir, 'buffered', 'exit.log');
    const script = `
      import { createLogger } from ${JSON.stringify(new URL('../../src/observability/logger.ts', import.meta.url).href)};
      const h = createLogger({ level: 'info', format: 'text', file: ${JSON.stringify(file)} });
      for (let i = 0; i < 100; i++) h.logger.info('line ' + i);
      h.logger.info('last line');
      process.exit(3);`;
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(3);
    const text = readFileSync(file, 'utf8');
    expect(text.trim().split('\n')).toHaveLength(101);
    expect(text).toMatch(/INFO: last line\n$/);
  });
});

describe('redaction', () => {
  const PASSWORD = 'Db-pa55word-Q7';
  const SECRET = 'whsec_' + Buffer.from('a-signing-secret-of-32-bytes-ok!').toString('base64');
  const URL_PASSWORD = 'UrlPw-91z';
  const TOKEN = 'tok-88af';
  const leaks = [PASSWORD, SECRET.slice('whsec_'.length), URL_PASSWORD, TOKEN];

  function logEverything(handle: LoggerHandle): void {
    const { logger } = handle;
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      logger[level]({ password: PASSWORD }, 'top-level password');
      logger[level]({ config: { database: { password: PASSWORD }, webhook: { secrets: [SECRET], url: `https://u:${URL_PASSWORD}@h/x` } } }, 'whole config');
      logger[level]({ headers: { Authorization: `Bearer ${TOKEN}`, 'webhook-signature': `v1,${TOKEN}` } }, 'request');
      logger[level]({ url: `https://user:${URL_PASSWORD}@hooks.example.com/in`, token: TOKEN, secret: SECRET }, 'fields');
      logger[level](`connecting to postgres://app:${URL_PASSWORD}@db:5432/shop with ${SECRET}`);
      logger[level]({ err: new Error(`request to https://x:${URL_PASSWORD}@h failed`) }, 'error message');
      logger.child({ password: PASSWORD, url: `mysql://r:${URL_PASSWORD}@m/db` })[level]('child bindings');
      logger[level]({ db_password: PASSWORD, apiToken: TOKEN, deep: { a: { b: { c: { d: { clientSecret: TOKEN } } } } } }, 'secret-like names');
      logger.child({ db: { adminPassword: PASSWORD } })[level]('child with a secret-like name');
      const shared = { accessToken: TOKEN };
      logger.child({ component: 'x' }).child({ a: shared, b: shared })[level]('grandchild, shared object');
    }
  }

  it.each(['text', 'json'] as const)('keeps passwords, secrets and URL credentials out of %s output at every level', async (format) => {
    const out = collector();
    const handle = createLogger({ level: 'debug', format }, { destination: out.stream });
    logEverything(handle);
    const lines = await linesOf(out, 40);
    const text = lines.join('\n');
    for (const leak of leaks) expect(text).not.toContain(leak);
    expect(text).toContain('[redacted]');
    expect(text).toContain('https://***@hooks.example.com/in');
    expect(text).toContain('postgres://***@db:5432/shop');
    expect(text).toContain('whsec_[redacted]');
  });

  it('keeps them out of a log file too', async () => {
    const file = path.join(dir, 'redact', 'app.log');
    const handle = createLogger({ level: 'debug', format: 'text', file });
    logEverything(handle);
    handle.logger.info('done');
    const text = await fileContaining(file, 'INFO: done');
    await handle.close();
    for (const leak of leaks) expect(text).not.toContain(leak);
  });
});

describe('redactUrl', () => {
  it.each([
    ['https://user:pw@host/x', 'https://***@host/x'],
    ['postgres://app:s3cret@db:5432/shop?sslmode=require', 'postgres://***@db:5432/shop?sslmode=require'],
    ['https://token@host', 'https://***@host'],
    ['postgres://u:p@ss@db/shop', 'postgres://***@db/shop'],
    ['postgres://u:pa/ss@db/shop', 'postgres://***@db/shop'],
    ['user:pw@db:5432/shop', '***@db:5432/shop'],
    ['https://host/path/@me', 'https://host/path/@me'],
    ['https://host/x?to=a@b', 'https://host/x?to=a@b'],
    ['http://h:8080/', 'http://h:8080/'],
    ['not a url', 'not a url'],
    ['', ''],
  ])('%s → %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });

  it('hides credentials and webhook secrets inside free text', () => {
    expect(redactText('GET https://a:b@h/x and mysql://r:p@ss@m/db, see whsec_abc+/= ok')).toBe(
      'GET https://***@h/x and mysql://***@m/db, see whsec_[redacted] ok',
    );
    expect(redactText('{"url":"https://h/x","b":"y@z"}')).toBe('{"url":"https://h/x","b":"y@z"}');
  });
});
