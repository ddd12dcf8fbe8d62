/**
 * The process logger: pino, writing either the original program's text lines
 * or JSON lines, to standard output or to a file that can be reopened after
 * log rotation.
 *
 * Text lines keep the original shape that operators grep:
 * `[2026-11-26 18:00:33] INFO: Delivered INSERT on users id=42` (local time).
 *
 * Secrets never reach the output: known secret keys are censored by pino's
 * `redact`, keys whose name ends in password/secret/token by a walk over the
 * logged object, `url` fields lose their credentials, and as a last guard
 * every finished line has URL credentials and `whsec_` secrets masked.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type { LoggingConfig } from '../config/types.js';
import { redactText, redactUrl } from './redact.js';

export interface LoggerHandle {
  readonly logger: Logger;
  /**
   * Reopens the log file at its path (wire it to SIGHUP): after logrotate has
   * renamed the file, new lines go to a new file at the configured path.
   * Does nothing when logging to standard output or a given stream.
   */
  reopen(): void;
  /** Resolves when every line logged so far has been handed to the operating system. */
  flush(): Promise<void>;
  /** Flushes and closes the file. Lines logged afterwards are dropped. Idempotent. */
  close(): Promise<void>;
}

export interface CreateLoggerOptions {
  /** Write here instead of standard output or `cfg.file` (tests, embedding). Never closed by us. */
  readonly destination?: NodeJS.WritableStream;
}

/** Keys whose values are replaced by `[redacted]`, at the top level and up to three levels down. */
const SECRET_KEYS = [
  'password',
  'secret',
  'secrets',
  'token',
  'authorization',
  'Authorization',
  'webhook-signature',
  'Webhook-Signature',
];
/** Keys whose values keep everything but their `user:password@`. */
const URL_KEYS = ['url'];
const REDACT_DEPTH = 3;
const CENSOR = '[redacted]';

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const key of [...SECRET_KEYS, ...URL_KEYS]) {
    const leaf = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
    for (let depth = 0; depth <= REDACT_DEPTH; depth++) {
      const prefix = '*.'.repeat(depth);
      paths.push(leaf.startsWith('[') ? `${prefix.slice(0, -1)}${leaf}` : `${prefix}${leaf}`);
    }
  }
  return paths;
}

/**
 * Key names that end like a secret (`db_password`, `apiToken`, `clientSecret`)
 * cannot be listed as pino redact paths; they are censored by a walk over the
 * logged object instead (pino's `formatters.log`, and `child` for bindings).
 */
const SECRET_SUFFIX = /(?:password|passwd|secrets?|token)$/i;
const WALK_DEPTH = 8;

/**
 * Returns `value` itself when nothing needs hiding, else a copy with
 * secret-named keys censored. `done` maps each object already walked to its
 * result, so an object referenced twice is censored both times, and a cycle
 * becomes "[Circular]" instead of leading back to the uncensored original.
 */
function censorSecretNamedKeys<T>(value: T, depth = 0, done = new Map<object, unknown>()): T {
  if (value === null || typeof value !== 'object' || depth > WALK_DEPTH || value instanceof Error) return value;
  if (done.has(value)) return done.get(value) as T;
  if (Array.isArray(value)) {
    done.set(value, '[Circular]');
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, index) => {
      const censored = censorSecretNamedKeys(item, depth + 1, done);
      if (censored !== item) (copy ??= [...value])[index] = censored;
    });
    done.set(value, copy ?? value);
    return (copy ?? value) as T;
  }
  // Only plain records: class instances (Dates, Buffers, URLs) keep their own JSON form.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  done.set(value, '[Circular]');
  let copy: Record<string, unknown> | undefined;
  for (const [key, child] of Object.entries(value)) {
    const censored =
      SECRET_SUFFIX.test(key) && child !== undefined && child !== null ? CENSOR : censorSecretNamedKeys(child, depth + 1, done);
    if (censored !== child) (copy ??= { ...(value as Record<string, unknown>) })[key] = censored;
  }
  done.set(value, copy ?? value);
  return (copy ?? value) as T;
}

function censor(value: unknown, path: string[]): unknown {
  if (URL_KEYS.includes(path[path.length - 1] ?? '')) {
    if (typeof value === 'string') return redactUrl(value);
    if (value instanceof URL) return redactUrl(value.href);
    return value;
  }
  return CENSOR;
}

/** Where finished lines go. */
interface Sink {
  write(line: string): void;
  reopen(): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A file opened in append mode through pino's destination (sonic-boom), which
 * can reopen the same path. Writes are synchronous: a line is in the file when
 * the log call returns, so a crash or `process.exit` loses nothing and a
 * reopen takes effect at once. At this program's log volume (a few lines per
 * delivery) the cost of one write(2) per line is negligible.
 */
function fileSink(file: string): Sink {
  // Fail now, with the operating system's reason, rather than in an 'error' event later.
  mkdirSync(dirname(file), { recursive: true });
  closeSync(openSync(file, 'a'));

  const stream = pino.destination({ dest: file, append: true, mkdir: true, sync: true });
  let closed = false;
  // A failure after start (disk full, a reopen into a removed directory) must
  // not crash the daemon: report it on stderr and keep going.
  stream.on('error', (err: Error) => {
    process.stderr.write(`app-db-listener: log file ${file}: ${err.message}\n`);
  });
  return {
    write(line) {
      if (!closed) stream.write(line);
    },
    reopen() {
      if (!closed) stream.reopen();
    },
    async flush() {
      if (!closed) stream.flushSync();
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => {
        stream.once('close', () => resolve());
        stream.once('error', () => resolve());
        stream.end();
      });
    },
  };
}

/** Standard output, written synchronously (pino's destination for fd 1). Never closed. */
function stdoutSink(): Sink {
  const stream = pino.destination({ dest: 1, sync: true });
  let closed = false;
  return {
    write(line) {
      if (!closed) stream.write(line);
    },
    reopen() {},
    async flush() {
      if (!closed) stream.flushSync();
    },
    async close() {
      if (!closed) stream.flushSync();
      closed = true;
    },
  };
}

/** A caller's stream; it stays open after `close()`. */
function streamSink(stream: NodeJS.WritableStream): Sink {
  let closed = false;
  return {
    write(line) {
      if (!closed) stream.write(line);
    },
    reopen() {},
    flush() {
      return new Promise<void>((resolve) => {
        if (closed) resolve();
        else stream.write('', () => resolve());
      });
    },
    async close() {
      closed = true;
    },
  };
}

/** Creates a logger for `cfg`. Each call makes an independent logger; nothing is global. */
export function createLogger(cfg: LoggingConfig, opts: CreateLoggerOptions = {}): LoggerHandle {
  const sink = opts.destination
    ? streamSink(opts.destination)
    : cfg.file
      ? fileSink(cfg.file)
      : stdoutSink();

  const format = cfg.format === 'json' ? (line: string) => redactText(line) : (line: string) => redactText(formatTextLine(line));
  const destination: DestinationStream = {
    write(line: string) {
      sink.write(format(line));
    },
  };

  const options: LoggerOptions = {
    level: cfg.level,
    redact: { paths: redactPaths(), censor },
    formatters: {
      log: (object) => censorSecretNamedKeys(object),
    },
  };
  if (cfg.format === 'json') {
    options.timestamp = pino.stdTimeFunctions.isoTime;
  } else {
    // The text line has no room for pid and hostname; the time is formatted from epoch ms.
    options.base = null;
    options.timestamp = pino.stdTimeFunctions.epochTime;
  }
  const logger = pino(options, destination);
  // pino applies no formatter to child bindings, so they are censored here.
  // Children are created from their parent's prototype chain and inherit this.
  const createChild = logger.child;
  logger.child = function (this: Logger, bindings, childOptions) {
    return createChild.call(this, censorSecretNamedKeys(bindings), childOptions);
  } as Logger['child'];

  let closing: Promise<void> | undefined;
  return {
    logger,
    reopen: () => sink.reopen(),
    flush: () => sink.flush(),
    close: () => (closing ??= sink.close()),
  };
}

// ---------------------------------------------------------------------------
// Text format

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Keys of the JSON line that the text line shows in its fixed part. */
const FIXED_KEYS = new Set(['level', 'time', 'msg']);

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `YYYY-MM-DD HH:MM:SS` in local time, as the original program wrote. */
export function formatLocalTime(date: Date): string {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

function isSerializedError(value: unknown): value is { message: string } {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.message === 'string' && (typeof v.stack === 'string' || typeof v.type === 'string');
}

/** Empty text, spaces, quotes, `=`, backslashes and control characters would make `key=value` ambiguous. */
function needsQuotes(text: string): boolean {
  if (text === '' || /[\s"=\\]/.test(text)) return true;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** A field value: bare when it is one simple word, JSON otherwise. */
function formatValue(value: unknown): string {
  if (isSerializedError(value)) return formatValue(value.message);
  if (typeof value === 'string') {
    return needsQuotes(value) ? JSON.stringify(value) : value;
  }
  if (value === null || typeof value !== 'object') return String(value);
  return JSON.stringify(value);
}

/**
 * Turns one pino JSON line into `[YYYY-MM-DD HH:MM:SS] LEVEL: message key=value ...\n`.
 * A line that is not JSON is passed through unchanged.
 */
export function formatTextLine(jsonLine: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const level = typeof record.level === 'number' ? (LEVEL_NAMES[record.level] ?? `LEVEL${record.level}`) : 'INFO';
  const time = typeof record.time === 'number' ? new Date(record.time) : new Date();
  // One event, one line: a message's line breaks are written as \n.
  const message = typeof record.msg === 'string' ? record.msg.replace(/\r?\n/g, '\\n') : '';

  const parts: string[] = message === '' ? [] : [message];
  for (const [key, value] of Object.entries(record)) {
    if (FIXED_KEYS.has(key) || value === undefined) continue;
    // logger.error(err) puts the error's message in msg; do not repeat it.
    if (isSerializedError(value) && value.message === record.msg) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  return `[${formatLocalTime(time)}] ${level}: ${parts.join(' ')}\n`;
}
