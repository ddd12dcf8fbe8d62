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
import { mkdirSync, openSync } from 'node:fs';
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

/**
 * What is hidden in a logged object, at any depth (up to WALK_DEPTH), by one walk
 * over it (pino's `formatters.log`, and `child` for bindings):
 * - keys that name a secret (`password`, `db_password`, `apiToken`, `clientSecret`,
 *   `secrets`, `authorization`, `webhook-signature`) lose their value;
 * - `url` values keep everything but their `user:password@`.
 * One walk replaces pino's `redact` paths: its wildcard paths (`*.password` to
 * three levels) cost ~25 µs per line, 25 times the rest of the line, and every
 * delivery logs one at info.
 */
const SECRET_KEY = /(?:password|passwd|secrets?|token|authorization|signature)$/i;
const URL_KEY = 'url';
const WALK_DEPTH = 8;
const CENSOR = '[redacted]';

/**
 * Returns `value` itself when nothing needs hiding, else a copy with secret-named
 * keys censored and URL credentials masked. `done` maps each object already walked
 * to its result, so an object referenced twice is censored both times, and a cycle
 * becomes "[Circular]" instead of leading back to the uncensored original.
 */
function censorSecrets<T>(value: T, depth = 0, done = new Map<object, unknown>()): T {
  if (value === null || typeof value !== 'object' || depth > WALK_DEPTH || value instanceof Error) return value;
  if (done.has(value)) return done.get(value) as T;
  if (Array.isArray(value)) {
    done.set(value, '[Circular]');
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, index) => {
      const censored = censorSecrets(item, depth + 1, done);
      if (censored !== item) (copy ??= [...value])[index] = censored;
    });
    done.set(value, copy ?? value);
    return (copy ?? value) as T;
  }
  // Only plain records: class instances (Dates, Buffers) keep their own JSON form.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  done.set(value, '[Circular]');
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    const child = (value as Record<string, unknown>)[key];
    let censored: unknown;
    if (child === undefined || child === null) censored = child;
    else if (key === URL_KEY) censored = typeof child === 'string' ? redactUrl(child) : child instanceof URL ? redactUrl(child.href) : censorSecrets(child, depth + 1, done);
    else if (SECRET_KEY.test(key)) censored = CENSOR;
    else censored = censorSecrets(child, depth + 1, done);
    if (censored !== child) (copy ??= { ...(value as Record<string, unknown>) })[key] = censored;
  }
  done.set(value, copy ?? value);
  return (copy ?? value) as T;
}

/** Where finished lines go. */
interface Sink {
  write(line: string): void;
  reopen(): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Lines are buffered in memory and written asynchronously: a synchronous write(2)
 * per line cost the daemon ~10% of its drain rate at `info` (one line per delivery).
 * A write goes out once BUFFER_BYTES are waiting or FLUSH_EVERY_MS after the first
 * line, so `tail -f` sees a line within a quarter of a second. Every exit path
 * flushes: `close()` (SIGTERM, SIGINT, the end of a command), `flush()` before a
 * forced exit, and a synchronous flush at process exit. Only a kill -9 can lose the
 * last quarter second of lines (never an event: the journal is in the database).
 */
const BUFFER_BYTES = 8 * 1024;
const FLUSH_EVERY_MS = 250;
/**
 * A disk that stops taking writes must not make the daemon's memory grow without
 * bound: past this many bytes waiting, new lines are dropped and counted, and the
 * count is reported on standard error once the log accepts writes again.
 */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/**
 * sonic-boom, pino's destination, buffered and asynchronous (see above), on a file
 * descriptor opened synchronously: a line logged just before `process.exit` can
 * always be flushed. A reopen (SIGHUP) flushes the old descriptor, opens the path
 * again and closes the old one.
 */
function bufferedSink(target: { file?: string; name: string }): Sink {
  let dropped = 0;
  const open = () => {
    const stream = pino.destination({
      fd: target.file === undefined ? 1 : openSync(target.file, 'a'),
      sync: false,
      minLength: BUFFER_BYTES,
      maxLength: MAX_BUFFERED_BYTES,
      periodicFlush: FLUSH_EVERY_MS,
    });
    // A failure after start (disk full, a reopen into a removed directory) must
    // not crash the daemon: report it on stderr and keep going.
    stream.on('error', (err: Error) => {
      process.stderr.write(`app-db-listener: log ${target.name}: ${err.message}\n`);
    });
    stream.on('drop', (data: string) => {
      dropped += (data.match(/\n/g) ?? []).length || 1;
    });
    stream.on('drain', reportDropped);
    return stream;
  };
  const reportDropped = () => {
    if (dropped === 0) return;
    process.stderr.write(`app-db-listener: log ${target.name}: ${dropped} lines dropped while writes were stalled\n`);
    dropped = 0;
  };
  const flushSync = (s: ReturnType<typeof open>) => {
    try {
      s.flushSync();
    } catch {
      // Closed, or the disk refuses: reported through 'error'.
    }
  };
  const end = (s: ReturnType<typeof open>) =>
    new Promise<void>((resolve) => {
      flushSync(s);
      if (target.file === undefined) return resolve(); // standard output stays open
      s.once('close', () => resolve());
      s.once('error', () => resolve());
      s.end();
    });
  let stream = open();
  let closed = false;
  const flushAtExit = () => flushSync(stream);
  process.on('exit', flushAtExit);
  return {
    write(line) {
      if (!closed) stream.write(line);
    },
    reopen() {
      if (closed || target.file === undefined) return;
      let next;
      try {
        next = open();
      } catch (err) {
        process.stderr.write(`app-db-listener: log ${target.name}: cannot reopen: ${(err as Error).message}\n`);
        return;
      }
      void end(stream);
      stream = next;
    },
    async flush() {
      if (!closed) flushSync(stream);
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      process.off('exit', flushAtExit);
      const done = end(stream);
      reportDropped();
      return done;
    },
  };
}

/** A file opened in append mode, which can be reopened at the same path (SIGHUP, after logrotate). */
function fileSink(file: string): Sink {
  // Fail now, with the operating system's reason, rather than in an 'error' event later.
  mkdirSync(dirname(file), { recursive: true });
  return bufferedSink({ file, name: `file ${file}` });
}

/** Standard output. Never closed: `close()` only flushes. */
function stdoutSink(): Sink {
  return bufferedSink({ name: 'standard output' });
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
    formatters: {
      log: (object) => censorSecrets(object),
    },
  };
  if (cfg.format === 'json') {
    options.timestamp = pino.stdTimeFunctions.isoTime;
  } else {
    // The text line has no room for pid and hostname; the time is formatted from epoch ms.
    options.base = null;
    options.timestamp = pino.stdTimeFunctions.epochTime;
  }
  if (cfg.format !== 'json') {
    options.hooks = {
      logMethod(args, method, level) {
        // Children carry bindings that only pino's JSON line holds.
        const line = (this as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym] ? undefined : directTextLine(level, args);
        if (line === undefined) method.apply(this, args);
        else sink.write(redactText(line));
      },
    };
  }
  const logger = pino(options, destination);
  // pino applies no formatter to child bindings, so they are censored here.
  // Children are created from their parent's prototype chain and inherit this.
  const createChild = logger.child;
  logger.child = function (this: Logger, bindings, childOptions) {
    return createChild.call(this, censorSecrets(bindings), childOptions);
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

/** formatLocalTime of the second holding `ms`, computed once per second (every delivery logs a line). */
let cachedSecond = NaN;
let cachedText = '';
function localSecond(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedText = formatLocalTime(new Date(second * 1000));
  }
  return cachedText;
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
  const level = typeof record.level === 'number' ? record.level : 30;
  const time = typeof record.time === 'number' ? record.time : Date.now();
  return textLine(level, time, record, typeof record.msg === 'string' ? record.msg : '');
}

/** The text line of a record: its fields but level, time and msg, in their order. */
function textLine(level: number, time: number, fields: Record<string, unknown>, msg: string): string {
  // One event, one line: a message's line breaks are written as \n.
  const message = msg.replace(/\r?\n/g, '\\n');
  let line = `[${localSecond(time)}] ${LEVEL_NAMES[level] ?? `LEVEL${level}`}: ${message}`;
  let first = message === '';
  for (const key in fields) {
    const value = fields[key];
    if (FIXED_KEYS.has(key) || value === undefined) continue;
    // logger.error(err) puts the error's message in msg; do not repeat it.
    if (isSerializedError(value) && value.message === msg) continue;
    line += `${first ? '' : ' '}${key}=${formatValue(value)}`;
    first = false;
  }
  return line + '\n';
}

/**
 * The text line of a log call made as `log.info(fields, message)` or `log.info(message)`
 * with fields that are all strings, numbers, booleans or null, on the root logger
 * (every per-delivery line): written without pino's JSON line, which the text format
 * would only parse again (two thirds of a line's cost). Anything else (errors,
 * nested objects, interpolation, children) goes through pino. Undefined when it does.
 */
function directTextLine(level: number, args: readonly unknown[]): string | undefined {
  let fields: Record<string, unknown> = {};
  let msg: unknown;
  if (args.length === 1) {
    msg = args[0];
  } else if (args.length === 2 && args[0] !== null && typeof args[0] === 'object' && Object.getPrototypeOf(args[0]) === Object.prototype) {
    fields = args[0] as Record<string, unknown>;
    msg = args[1];
  } else {
    return undefined;
  }
  if (typeof msg !== 'string' || msg.includes('%')) return undefined;
  for (const key in fields) {
    const v = fields[key];
    if (v !== null && v !== undefined && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return undefined;
  }
  return textLine(level, Date.now(), censorSecrets(fields), msg);
}
