/**
 * The configuration schema: the one place that says which keys exist, what
 * each accepts, its default and the message given when it is wrong.
 *
 * Input is what the YAML file holds after `${VAR}` substitution. Scalars may
 * arrive as text (the loader reads every YAML scalar as text, so `port: 5432`,
 * `port: "5432"` and `port: ${DB_PORT}` are the same thing) or as numbers and
 * booleans when the schema is used directly. Output is the resolved `Config`
 * of `types.ts`: every default applied, every cross-key rule settled.
 *
 * Messages are written to follow the key path: the loader prints
 * `<key> <message>, got <value>`, e.g.
 * `database.port must be an integer between 1 and 65535, got "abc"`.
 */
import { addressTemplateProblem } from '../delivery/address.js';
import * as z from 'zod';
import { isReservedHeader } from '../delivery/headers.js';
import { compileFilter } from '../dispatch/filter.js';
import { checkWebhookSecret } from '../delivery/sign.js';
import { parseTableName, splitTableList, tableKey } from './tables.js';
import type {
  DatabaseType,
  HttpListen,
  LogLevel,
  Operation,
  SslMode,
  TableRef,
} from './types.js';

// ---------------------------------------------------------------------------
// Defaults

export const DATABASE_TYPES = ['postgres', 'mysql'] as const satisfies readonly DatabaseType[];
/** How changes are captured (listener.capture): see docs/capture.md. */
export type CaptureMode = 'trigger' | 'log';
export const CAPTURE_MODES = ['trigger', 'log'] as const satisfies readonly CaptureMode[];
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const satisfies readonly SslMode[];
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const satisfies readonly LogLevel[];
export const LOG_FORMATS = ['text', 'json'] as const;
export const OPERATIONS = ['INSERT', 'UPDATE', 'DELETE'] as const satisfies readonly Operation[];
export const DESTINATION_TYPES = ['webhook', 'nats', 'rabbitmq', 'redis', 'mqtt'] as const;
export type DestinationType = (typeof DESTINATION_TYPES)[number];

/** Per destination type: the URL schemes it takes, and an example for messages. */
const DESTINATION_URLS: Record<DestinationType, { schemes: readonly string[]; example: string }> = {
  webhook: { schemes: ['http:', 'https:'], example: 'https://billing.internal/hooks/orders' },
  nats: { schemes: ['nats:', 'tls:'], example: 'nats://127.0.0.1:4222' },
  rabbitmq: { schemes: ['amqp:', 'amqps:'], example: 'amqp://guest:guest@127.0.0.1:5672/' },
  redis: { schemes: ['redis:', 'rediss:'], example: 'redis://127.0.0.1:6379/0' },
  mqtt: { schemes: ['mqtt:', 'mqtts:'], example: 'mqtt://127.0.0.1:1883' },
};

/** The keys only one broker type takes, and where its message goes by default. */
const BROKER_KEYS = {
  subject: 'nats',
  create_stream: 'nats',
  exchange: 'rabbitmq',
  routing_key: 'rabbitmq',
  stream: 'redis',
  maxlen: 'redis',
  topic: 'mqtt',
} as const satisfies Record<string, Exclude<DestinationType, 'webhook'>>;
export const BROKER_DEFAULTS = {
  subject: 'db.{schema}.{table}',
  exchange: 'db.changes',
  routing_key: '{schema}.{table}.{operation}',
  stream: 'db:{schema}.{table}',
  topic: 'db/{schema}/{table}',
} as const;
export const PAYLOAD_FORMATS = ['original', 'cloudevents', 'cloudevents-binary'] as const;
/** Name of the destination the `webhook:` section describes. */
export const DEFAULT_DESTINATION = 'default';
const DESTINATION_NAME = /^[a-z0-9_-]{1,40}$/;

/** Headers the delivery sets itself (one list, in delivery/headers.ts); `headers:` may not set them. */
export { RESERVED_HEADERS } from '../delivery/headers.js';

/** Every default, in one place (docs/configuration.md lists the same values). */
export const DEFAULTS = {
  database: {
    type: 'postgres' as DatabaseType,
    host: 'localhost',
    port: { postgres: 5432, mysql: 3306 } as Record<DatabaseType, number>,
    user: { postgres: 'postgres', mysql: 'root' } as Record<DatabaseType, string>,
    password: '',
    sslmode: 'disable' as SslMode,
  },
  listener: {
    modes: OPERATIONS,
    poll_interval: 1,
    schema: 'app_db_listener',
    auto_install: true,
    retention: 0,
    capture: 'trigger' as CaptureMode,
  },
  webhook: {
    timeout: 30,
    retry_count: 3,
    retry_delay: 5,
    /** The default grows to `retry_delay` when that is larger. */
    retry_max_delay: 300,
  },
  logging: {
    level: 'info' as LogLevel,
    format: 'text' as 'text' | 'json',
  },
  http: {
    listen: '127.0.0.1:9464',
    console: true,
    attempt_log: true,
    attempt_log_max_rows: 10_000,
    /** Seconds (24 h). */
    attempt_log_max_age: 86_400,
  },
  worker: {
    pool_size: 10,
    /** `shutdown_timeout` defaults to `webhook.timeout` plus this many seconds. */
    shutdown_margin: 5,
  },
} as const;

/** Longest `listener.schema`: our object names append suffixes to it and must stay under 64 characters. */
export const MAX_SCHEMA_NAME_LENGTH = 40;

// ---------------------------------------------------------------------------
// Coercion: the YAML loader gives text; numbers and booleans are read from it.

const NUMBER_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TRUE_WORDS = new Set(['true', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', '0']);

/** null, and text that is empty or only spaces, mean "not set": the default applies. */
function isBlank(value: unknown): boolean {
  return value === null || value === undefined || (typeof value === 'string' && value.trim() === '');
}

function blankToUndefined(value: unknown): unknown {
  return isBlank(value) ? undefined : value;
}

function toNumber(value: unknown): unknown {
  if (isBlank(value)) return undefined;
  if (typeof value === 'string' && NUMBER_TEXT.test(value.trim())) return Number(value.trim());
  return value;
}

function toBoolean(value: unknown): unknown {
  if (isBlank(value)) return undefined;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  return value;
}

function toText(value: unknown): unknown {
  return typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' ? String(value) : value;
}

function quoteList(values: readonly string[]): string {
  const quoted = values.map((v) => `"${v}"`);
  return quoted.length <= 2 ? quoted.join(' or ') : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
}

// ---------------------------------------------------------------------------
// Field builders. Each returns a schema whose every failure has one message.

interface NumberRule {
  min: number;
  max: number;
  /** `min` itself is not allowed (`> 0`). */
  minExclusive?: boolean;
  integer?: boolean;
  /** Noun used in the message: "number of seconds". */
  noun?: string;
}

function describeNumberRule(rule: NumberRule): string {
  const noun = rule.integer ? 'an integer' : `a ${rule.noun ?? 'number'}`;
  return rule.minExclusive
    ? `must be ${noun} greater than ${rule.min} and at most ${rule.max}`
    : `must be ${noun} between ${rule.min} and ${rule.max}`;
}

function numberIn(rule: NumberRule) {
  const message = describeNumberRule(rule);
  return z
    .number({ error: message })
    .refine(
      (n) =>
        Number.isFinite(n) &&
        (rule.minExclusive ? n > rule.min : n >= rule.min) &&
        n <= rule.max &&
        (!rule.integer || Number.isInteger(n)),
      { error: message },
    );
}

/** A number with a default. */
function numberField(rule: NumberRule, fallback: number) {
  return z.preprocess(toNumber, numberIn(rule).default(fallback));
}

/** A number whose default depends on other keys (resolved later). */
function optionalNumberField(rule: NumberRule) {
  return z.preprocess(toNumber, numberIn(rule).optional());
}

function booleanField(fallback: boolean) {
  return z.preprocess(toBoolean, z.boolean({ error: 'must be true or false' }).default(fallback));
}

/** Optional text; blank means not set. Kept exactly as written (no trimming). */
function optionalText() {
  return z.preprocess((v) => blankToUndefined(toText(v)), z.string({ error: 'must be a text value' }).optional());
}

/**
 * One of fixed words, case-insensitive, with optional aliases.
 * Blank means not set.
 */
function choice<const T extends readonly [string, ...string[]]>(values: T, aliases: Record<string, T[number]> = {}) {
  const message = `must be one of ${quoteList(values)}`;
  return z.preprocess((v) => {
    const value = blankToUndefined(toText(v));
    if (typeof value !== 'string') return value;
    const word = value.trim().toLowerCase();
    return aliases[word] ?? word;
  }, z.enum(values, { error: message }).optional());
}

/** Adds an issue to the current value (or to `path` below it) and returns nothing. */
function fail(ctx: z.core.$RefinementCtx, message: string, path?: (string | number)[]): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message, ...(path ? { path } : {}) });
  return z.NEVER;
}

// ---------------------------------------------------------------------------
// Structured fields

const WEBHOOK_URL_REQUIRED = 'is required: the http:// or https:// URL that receives the events';

/**
 * http(s) URL of the receiver. Blank is "not set": whether it is required depends on
 * other keys (webhook.url, unless destinations are listed), checked by the caller.
 */
/** A destination's URL: checked against its type in destinationEntry. */
const destinationUrl = z.preprocess(
  (v) => blankToUndefined(toText(v)),
  z
    .string({ error: 'must be a URL' })
    .transform((text) => text.trim())
    .optional(),
);

/** `create_stream: { name: DB, subjects: ["db.>"] }` of a NATS destination. */
const createStream = z.preprocess(
  blankToUndefined,
  z
    .object(
      {
        name: z.preprocess(
          (v) => blankToUndefined(toText(v)),
          z
            .string({ error: 'is required: the JetStream stream name, e.g. DB' })
            .regex(/^[^\s.*>/\\]{1,255}$/, { error: 'must be a stream name without spaces, dots, *, >, / or \\, e.g. DB' }),
        ),
        subjects: z.preprocess(
          (v) => (typeof v === 'string' ? [v] : v),
          z.array(z.string({ error: 'must be a subject' }).min(1), { error: 'must be a list of subjects, e.g. ["db.>"]' }).min(1, { error: 'must name at least one subject' }),
        ),
      },
      { error: 'must be a mapping: { name: DB, subjects: ["db.>"] }' },
    )
    .optional(),
);

const webhookUrl = z.preprocess(
  (v) => blankToUndefined(toText(v)),
  z
    .string({ error: 'must be an http:// or https:// URL' })
    .transform((text, ctx) => {
      const url = text.trim();
      if (!isHttpUrl(url)) return fail(ctx, 'must be an http:// or https:// URL with a host name');
      return url;
    })
    .optional(),
);

function hasScheme(text: string, schemes: readonly string[]): boolean {
  try {
    const url = new URL(text);
    return schemes.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** The parts of a database URL, decoded. */
export interface DatabaseUrlParts {
  type: DatabaseType;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  sslmode?: SslMode;
}

const URL_SCHEMES: Record<string, DatabaseType> = {
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
};

function decodePart(text: string): string | undefined {
  if (text === '') return undefined;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Reads `postgres://user:password@host:port/database?sslmode=…` (also
 * `postgresql://` and `mysql://`). Returns the parts, or what is wrong.
 */
export function parseDatabaseUrl(text: string): DatabaseUrlParts | { problem: string } {
  const expected = 'must be a postgres://, postgresql:// or mysql:// URL';
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return { problem: `${expected} (it cannot be parsed; percent-encode special characters in the password)` };
  }
  const type = URL_SCHEMES[url.protocol];
  if (type === undefined) return { problem: expected };

  const parts: DatabaseUrlParts = { type };
  const host = url.searchParams.get('host') ?? url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host !== '') parts.host = host;
  if (url.port !== '') {
    const port = Number(url.port);
    if (port < 1) return { problem: 'must have a port between 1 and 65535' };
    parts.port = port;
  }
  const user = decodePart(url.username);
  if (user !== undefined) parts.user = user;
  const password = decodePart(url.password);
  if (password !== undefined) parts.password = password;
  const database = decodePart(url.pathname.replace(/^\//, ''));
  if (database !== undefined) parts.database = database;
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode !== null) {
    const mode = sslmode.toLowerCase();
    if (!(SSL_MODES as readonly string[]).includes(mode)) {
      return { problem: `has sslmode=${JSON.stringify(sslmode)}; sslmode must be one of ${quoteList(SSL_MODES)}` };
    }
    parts.sslmode = mode as SslMode;
  }
  return parts;
}

const databaseUrl = z.preprocess(
  (v) => blankToUndefined(toText(v)),
  z
    .string({ error: 'must be a postgres://, postgresql:// or mysql:// URL' })
    .transform((text, ctx) => {
      const parts = parseDatabaseUrl(text);
      if ('problem' in parts) return fail(ctx, parts.problem);
      return text.trim();
    })
    .optional(),
);

/**
 * `table` and `tables`: a name, a comma-separated string of names, or a list.
 * Output: the tables in order (duplicates are removed when both keys merge).
 */
const tableNames = z.preprocess(
  blankToUndefined,
  z
    .unknown()
    .transform((value, ctx): TableRef[] | undefined => {
      if (value === undefined) return undefined;
      const items: { text: string; path?: number[] }[] = [];
      let malformed = false;
      if (Array.isArray(value)) {
        value.forEach((item: unknown, index) => {
          const text = toText(item);
          if (typeof text === 'string') items.push({ text, path: [index] });
          else {
            malformed = true;
            fail(ctx, 'must be a table name', [index]);
          }
        });
      } else {
        const text = toText(value);
        if (typeof text !== 'string') return fail(ctx, 'must be a table name, a comma-separated list of names or a YAML list');
        items.push({ text });
      }
      const tables: TableRef[] = [];
      for (const item of items) {
        for (const piece of splitTableList(item.text)) {
          if (piece.trim() === '') continue; // "a,,b" and a trailing comma are harmless
          const parsed = parseTableName(piece);
          if (parsed.ok) tables.push(parsed.table);
          else {
            malformed = true;
            fail(ctx, `${parsed.problem} (in ${JSON.stringify(piece.trim())})`, item.path);
          }
        }
      }
      // A malformed name was given: saying "is required" as well would mislead.
      return malformed ? z.NEVER : tables;
    }),
);

/**
 * `modes`: "insert,update,delete" (any case), or a YAML list. Unlike other keys,
 * empty text is an error rather than the default: capturing nothing is never
 * what was meant, and capturing everything instead would be a surprise.
 */
const operations = operationList(() => [...DEFAULTS.listener.modes]);

function operationList<D extends Operation[] | undefined>(fallback: () => D) {
  return z.preprocess(
  (v) => (v === null ? undefined : v),
  z.unknown().transform((value, ctx): Operation[] | D => {
    const expected = 'must list one or more of insert, update, delete (comma-separated)';
    if (value === undefined) return fallback();
    const words: string[] = [];
    for (const item of Array.isArray(value) ? value : [value]) {
      const text = toText(item);
      if (typeof text !== 'string') return fail(ctx, expected);
      words.push(...text.split(','));
    }
    const chosen = new Set<Operation>();
    for (const word of words) {
      const op = word.trim().toUpperCase();
      if (op === '') continue;
      if (!(OPERATIONS as readonly string[]).includes(op)) {
        return fail(ctx, `${expected}; ${JSON.stringify(word.trim())} is not an operation`);
      }
      chosen.add(op as Operation);
    }
    if (chosen.size === 0) return fail(ctx, expected);
    return OPERATIONS.filter((op) => chosen.has(op));
  }),
  );
}

export { checkWebhookSecret } from '../delivery/sign.js';

/** `secret`: one or more `whsec_…` separated by spaces (or a YAML list). Output: the secrets, without duplicates. */
const webhookSecrets = z.preprocess(
  blankToUndefined,
  z.unknown().transform((value, ctx): string[] => {
    const expected = 'must be one or more whsec_<base64> secrets separated by spaces';
    if (value === undefined) return [];
    const secrets: string[] = [];
    for (const item of Array.isArray(value) ? value : [value]) {
      if (typeof item !== 'string') return fail(ctx, expected);
      secrets.push(...item.split(/\s+/).filter((s) => s !== ''));
    }
    let ok = true;
    secrets.forEach((secret, index) => {
      const problem = checkWebhookSecret(secret);
      if (problem !== undefined) {
        ok = false;
        const which = secrets.length === 1 ? 'the secret' : `secret ${index + 1} of ${secrets.length}`;
        fail(ctx, `${expected}; ${which} ${problem}`);
      }
    });
    if (!ok) return z.NEVER;
    return [...new Set(secrets)];
  }),
);

// RFC 9110 token characters.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** `headers`: extra request headers, `Name: value`. */
const webhookHeaders = z.preprocess(
  blankToUndefined,
  z.unknown().transform((value, ctx): Record<string, string> => {
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return fail(ctx, 'must be a mapping of header names to values (Name: value)');
    }
    const headers: Record<string, string> = {};
    const seen = new Map<string, string>();
    for (const [name, raw] of Object.entries(value)) {
      const lower = name.toLowerCase();
      const text = raw === null || raw === undefined ? '' : toText(raw);
      if (!HEADER_NAME.test(name)) {
        fail(ctx, 'is not a valid header name (letters, digits and !#$%&\'*+-.^_`|~ only)', [name]);
      } else if (isReservedHeader(lower)) {
        fail(ctx, 'cannot be set: app-db-listener sets this header itself', [name]);
      } else if (seen.has(lower)) {
        fail(ctx, `repeats the header ${JSON.stringify(seen.get(lower))} (header names ignore case)`, [name]);
      } else if (typeof text !== 'string') {
        fail(ctx, 'must have a text value', [name]);
      } else if (/[\r\n\0]/.test(text)) {
        fail(ctx, 'must have a value without line breaks or NUL characters', [name]);
      } else {
        headers[name] = text;
      }
      seen.set(lower, name);
    }
    return headers;
  }),
);

const IDENTIFIER = new RegExp(`^[A-Za-z_][A-Za-z0-9_]{0,${MAX_SCHEMA_NAME_LENGTH - 1}}$`);

const schemaName = z.preprocess(
  (v) => blankToUndefined(toText(v)),
  z
    .string({ error: 'must be a name' })
    .trim()
    .regex(IDENTIFIER, {
      error: `must start with a letter or underscore and contain only letters, digits and underscores (at most ${MAX_SCHEMA_NAME_LENGTH} characters)`,
    })
    .default(DEFAULTS.listener.schema),
);

// ---------------------------------------------------------------------------
// Sections

const always = () => true;

function sectionError(name: string) {
  return `must be a mapping of keys (for example "${name}:" followed by indented "key: value" lines)`;
}

export const databaseSection = z
  .object(
    {
      type: choice(DATABASE_TYPES, { postgresql: 'postgres', pg: 'postgres', mariadb: 'mysql' }),
      host: optionalText(),
      port: optionalNumberField({ min: 1, max: 65535, integer: true }),
      user: optionalText(),
      // Kept as written: a password may be spaces, and "" is a valid (empty) password.
      password: z.preprocess((v) => (v === null ? undefined : toText(v)), z.string({ error: 'must be a text value' }).optional()),
      database: optionalText(),
      url: databaseUrl,
      table: tableNames,
      tables: tableNames,
      sslmode: choice(SSL_MODES),
      sslrootcert: optionalText(),
    },
    { error: sectionError('database') },
  )
  .superRefine((section, ctx) => {
    // Runs even when some keys are invalid, so a missing table is reported with
    // the rest; every value is therefore checked for its type before use.
    const value = section as Record<string, unknown>;
    const hasTables = [value.table, value.tables].some((t) => Array.isArray(t) ? t.length > 0 : !isBlank(t));
    if (!hasTables) {
      ctx.addIssue({
        code: 'custom',
        path: ['table'],
        message: 'is required: name at least one table with database.table or database.tables',
      });
    }

    const url = typeof value.url === 'string' ? parseDatabaseUrl(value.url) : undefined;
    const parts = url && !('problem' in url) ? url : undefined;
    const type = typeof value.type === 'string' ? (value.type as DatabaseType) : (parts?.type ?? DEFAULTS.database.type);
    if (parts && typeof value.type === 'string' && parts.type !== value.type) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: `is a ${parts.type} URL but database.type is "${value.type}"`,
      });
    }

    if (value.url === undefined && isBlank(value.database)) {
      ctx.addIssue({ code: 'custom', path: ['database'], message: 'is required (the database name), unless database.url is set' });
    } else if (parts && parts.database === undefined && type === 'mysql' && isBlank(value.database)) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: 'must name the database (mysql://host/database), or set database.database',
      });
    }

    // PostgreSQL truncates identifiers to 63 bytes without an error; MySQL rejects names over 64 characters.
    for (const key of ['table', 'tables'] as const) {
      const list = value[key];
      if (!Array.isArray(list)) continue;
      for (const table of list as TableRef[]) {
        for (const part of [table.schema, table.name]) {
          if (part === undefined) continue;
          const tooLong = type === 'postgres' ? Buffer.byteLength(part) > 63 : [...part].length > 64;
          if (tooLong) {
            ctx.addIssue({
              code: 'custom',
              path: [key],
              message: `has a name longer than ${type === 'postgres' ? 'PostgreSQL allows (63 bytes)' : 'MySQL allows (64 characters)'}`,
            });
          }
        }
      }
    }
  }, { when: always });

export const listenerSection = z.object(
  {
    modes: operations,
    poll_interval: numberField({ min: 0, max: 3600, minExclusive: true, noun: 'number of seconds' }, DEFAULTS.listener.poll_interval),
    schema: schemaName,
    auto_install: booleanField(DEFAULTS.listener.auto_install),
    retention: numberField({ min: 0, max: 315_360_000, noun: 'number of seconds' }, DEFAULTS.listener.retention),
    capture: choice(CAPTURE_MODES),
  },
  { error: sectionError('listener') },
);

export const webhookSection = z
  .object(
    {
      url: webhookUrl,
      timeout: numberField({ min: 0, max: 3600, minExclusive: true, noun: 'number of seconds' }, DEFAULTS.webhook.timeout),
      retry_count: numberField({ min: 0, max: 10_000, integer: true }, DEFAULTS.webhook.retry_count),
      retry_delay: numberField({ min: 0, max: 86_400, noun: 'number of seconds' }, DEFAULTS.webhook.retry_delay),
      retry_max_delay: optionalNumberField({ min: 0, max: 86_400, noun: 'number of seconds' }),
      secret: webhookSecrets,
      headers: webhookHeaders,
      ca_file: optionalText(),
    },
    { error: sectionError('webhook') },
  )
  .superRefine((section, ctx) => {
    const { retry_delay: delay, retry_max_delay: max } = section as Record<string, unknown>;
    if (typeof delay === 'number' && typeof max === 'number' && max < delay) {
      ctx.addIssue({ code: 'custom', path: ['retry_max_delay'], message: `must be at least webhook.retry_delay (${delay})` });
    }
  }, { when: always });

/** `columns:` `{ include: [a, b] }` or `{ exclude: [c] }`: a list of names, or names separated by commas. */
const columnNames = z.preprocess(
  blankToUndefined,
  z.unknown().transform((value, ctx): string[] | undefined => {
    if (value === undefined) return undefined;
    const names: string[] = [];
    for (const item of Array.isArray(value) ? value : [value]) {
      const text = toText(item);
      if (typeof text !== 'string') return fail(ctx, 'must be a list of column names');
      names.push(...text.split(',').map((n) => n.trim()).filter((n) => n !== ''));
    }
    if (names.length === 0) return fail(ctx, 'must name at least one column');
    return [...new Set(names)];
  }),
);

const columnsSelection = z
  .object({ include: columnNames, exclude: columnNames }, { error: 'must be a mapping with include: [columns] or exclude: [columns]' })
  .superRefine((c, ctx) => {
    if (c.include !== undefined && c.exclude !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'takes include or exclude, not both' });
    } else if (c.include === undefined && c.exclude === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must have include: [columns] or exclude: [columns]' });
    }
  })
  .optional();

const batchSettings = z
  .object(
    {
      max_events: numberField({ min: 1, max: 10_000, integer: true }, 100),
      // At most 5 s: an event waits for its batch while claimed, and its claim must
      // outlast the wait and the request (see the lease in app.ts).
      max_wait: numberField({ min: 0, max: 5, noun: 'number of seconds' }, 0.05),
    },
    { error: 'must be a mapping: { max_events: 100, max_wait: 0.05 }' },
  )
  .optional();

/**
 * One entry of `destinations:`. Every key of `webhook:` is accepted, with the same
 * defaults (not inherited from the `webhook:` section: each destination says what it
 * needs); the rest says what the destination takes and how it is written.
 */
export const destinationEntry = z
  .object(
    {
      name: z.preprocess(
        (v) => blankToUndefined(toText(v)),
        z
          .string({ error: 'is required: a unique name of lower-case letters, digits, - and _ (at most 40), e.g. billing' })
          .regex(DESTINATION_NAME, { error: 'must be lower-case letters, digits, - and _ (1 to 40 characters), e.g. billing' }),
      ),
      type: choice(DESTINATION_TYPES),
      url: destinationUrl,
      timeout: numberField({ min: 0, max: 3600, minExclusive: true, noun: 'number of seconds' }, DEFAULTS.webhook.timeout),
      retry_count: numberField({ min: 0, max: 10_000, integer: true }, DEFAULTS.webhook.retry_count),
      retry_delay: numberField({ min: 0, max: 86_400, noun: 'number of seconds' }, DEFAULTS.webhook.retry_delay),
      retry_max_delay: optionalNumberField({ min: 0, max: 86_400, noun: 'number of seconds' }),
      secret: webhookSecrets,
      headers: webhookHeaders,
      ca_file: optionalText(),
      pool_size: optionalNumberField({ min: 1, max: 1000, integer: true }),
      tables: tableNames,
      operations: operationList(() => undefined),
      filter: optionalText(),
      columns: columnsSelection,
      format: choice(PAYLOAD_FORMATS),
      source: optionalText(),
      type_prefix: optionalText(),
      batch: batchSettings,
      subject: optionalText(),
      create_stream: createStream,
      exchange: optionalText(),
      routing_key: optionalText(),
      stream: optionalText(),
      maxlen: optionalNumberField({ min: 1, max: 1e15, integer: true }),
      topic: optionalText(),
    },
    { error: 'must be a mapping of keys (- name: billing, followed by url: …)' },
  )
  .superRefine((entry, ctx) => {
    const e = entry as Record<string, unknown>;
    const type = (typeof e.type === 'string' && e.type in DESTINATION_URLS ? e.type : 'webhook') as DestinationType;
    const urls = DESTINATION_URLS[type];
    const schemes = urls.schemes.map((x) => `${x}//`).join(' or ');
    if (e.url === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message:
          type === 'webhook'
            ? 'is required: the http:// or https:// URL that receives the events'
            : `is required: the ${schemes} URL of the ${type} server, e.g. ${urls.example}`,
      });
    } else if (typeof e.url === 'string' && !hasScheme(e.url, urls.schemes)) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message:
          type === 'webhook'
            ? 'must be an http:// or https:// URL with a host name'
            : `must be a ${schemes} URL with a host name for a destination of type ${type}, e.g. ${urls.example}`,
      });
    }
    if (type === 'redis' && typeof e.url === 'string' && hasScheme(e.url, urls.schemes) && !/^\/?\d*$/.test(new URL(e.url).pathname)) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: `must end with a database number (or nothing), e.g. redis://${new URL(e.url).host}/0` });
    }
    for (const [key, owner] of Object.entries(BROKER_KEYS)) {
      if (e[key] !== undefined && owner !== type) {
        ctx.addIssue({ code: 'custom', path: [key], message: `applies to destinations of type ${owner} only (this one is ${type})` });
      }
    }
    if (type !== 'webhook') {
      if (Array.isArray(e.secret) && e.secret.length > 0) {
        ctx.addIssue({ code: 'custom', path: ['secret'], message: `applies to webhook destinations only (a ${type} server authenticates the connection: put credentials in the url)` });
      }
      if (typeof e.headers === 'object' && e.headers !== null && Object.keys(e.headers).length > 0) {
        ctx.addIssue({ code: 'custom', path: ['headers'], message: 'applies to webhook destinations only' });
      }
    }
    if (typeof e.subject === 'string' && (/\s/.test(e.subject) || e.subject.split('.').some((t) => t === '' || t === '*' || t === '>'))) {
      ctx.addIssue({ code: 'custom', path: ['subject'], message: 'must be a NATS subject without spaces, empty tokens or the wildcards * and > (messages are published to one subject)' });
    }
    if (typeof e.topic === 'string' && (/[+#]/.test(e.topic) || e.topic.includes('\u0000'))) {
      ctx.addIssue({ code: 'custom', path: ['topic'], message: 'must not contain + or # (MQTT wildcards) or NUL: messages are published to one topic' });
    }
    for (const key of ['subject', 'routing_key', 'stream', 'topic'] as const) {
      const problem = typeof e[key] === 'string' ? addressTemplateProblem(e[key]) : undefined;
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: problem });
    }
    if (typeof e.retry_delay === 'number' && typeof e.retry_max_delay === 'number' && e.retry_max_delay < e.retry_delay) {
      ctx.addIssue({ code: 'custom', path: ['retry_max_delay'], message: `must be at least retry_delay (${e.retry_delay})` });
    }
    // A broker sends one message per event even in a batch, each with its own attributes.
    if (type === 'webhook' && e.format === 'cloudevents-binary' && e.batch !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['batch'],
        message: 'cannot be used with format cloudevents-binary (binary mode carries one event per request); use format cloudevents',
      });
    }
  }, { when: always });

export const destinationsSection = z.preprocess(
  blankToUndefined,
  z.array(destinationEntry, { error: 'must be a list of destinations, each "- name: …" with its keys' }).optional(),
);

export const loggingSection = z.object(
  {
    file: optionalText(),
    level: choice(LOG_LEVELS, { warning: 'warn' }),
    format: choice(LOG_FORMATS),
  },
  { error: sectionError('logging') },
);

export const workerSection = z.object(
  {
    pool_size: numberField({ min: 1, max: 1000, integer: true }, DEFAULTS.worker.pool_size),
    shutdown_timeout: optionalNumberField({ min: 0, max: 86_400, minExclusive: true, noun: 'number of seconds' }),
  },
  { error: sectionError('worker') },
);

/**
 * `http.listen`: `host:port` (`[::1]:9464` for IPv6, port 0 for any free port),
 * or `off` / `false` / empty-string `""` to run without the admin server.
 */
const listenAddress = z.preprocess(
  (value) => (value === false ? 'off' : value === null ? undefined : toText(value)),
  z
    .string({ error: 'must be "host:port" (for example "127.0.0.1:9464") or "off"' })
    .optional()
    .transform((text, ctx): HttpListen | null | undefined => {
      if (text === undefined || text === null) return undefined;
      const trimmed = text.trim();
      if (trimmed === '' || FALSE_WORDS.has(trimmed.toLowerCase())) return null;
      const parsed = parseListenAddress(trimmed);
      if (parsed === undefined) return fail(ctx, 'must be "host:port" (for example "127.0.0.1:9464", "[::1]:9464" or ":9464" for every interface) or "off"');
      return parsed;
    }),
);

/** `host:port`, `[v6]:port` or `:port` (every interface); undefined when malformed. */
export function parseListenAddress(text: string): HttpListen | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (!Number.isInteger(port) || port > 65_535) return undefined;
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export const httpSection = z.object(
  {
    listen: listenAddress,
    token: optionalText(),
    console: booleanField(DEFAULTS.http.console),
    attempt_log: booleanField(DEFAULTS.http.attempt_log),
    attempt_log_max_rows: numberField({ min: 1, max: 10_000_000, integer: true }, DEFAULTS.http.attempt_log_max_rows),
    attempt_log_max_age: numberField({ min: 1, max: 31_536_000, noun: 'number of seconds' }, DEFAULTS.http.attempt_log_max_age),
  },
  { error: sectionError('http') },
);

/** The sections and their schemas; the loader reads the known keys from here. */
export const SECTIONS = {
  database: databaseSection,
  listener: listenerSection,
  webhook: webhookSection,
  logging: loggingSection,
  worker: workerSection,
  http: httpSection,
} as const;

type RawConfig = {
  [K in keyof typeof SECTIONS]: z.output<(typeof SECTIONS)[K]>;
} & { destinations?: z.output<typeof destinationsSection> };

/** Whether a table named in a destination is this watched table (an unqualified name matches any schema). */
export function sameTable(a: TableRef, b: TableRef): boolean {
  return a.name === b.name && (a.schema === undefined || b.schema === undefined || a.schema === b.schema);
}

/** Rules across sections: what `destinations:` may name depends on the watched tables and modes. */
function checkDestinations(raw: RawConfig, ctx: z.core.$RefinementCtx): void {
  const list = raw.destinations ?? [];
  if (raw.webhook.url === undefined && list.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['webhook', 'url'], message: WEBHOOK_URL_REQUIRED });
  }
  const watched = mergeTables(raw.database.table, raw.database.tables);
  const seen = new Map<string, number>();
  list.forEach((d, i) => {
    const at = (...path: (string | number)[]) => ['destinations', i, ...path];
    const first = seen.get(d.name);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: at('name'), message: `repeats the name of destinations[${first}]; names must be unique` });
    } else if (d.name === DEFAULT_DESTINATION && raw.webhook.url !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: at('name'),
        message: `"${DEFAULT_DESTINATION}" is the destination of the webhook: section; choose another name (or remove webhook.url)`,
      });
    }
    seen.set(d.name, i);
    d.tables?.forEach((t, j) => {
      if (!watched.some((w) => sameTable(t, w))) {
        ctx.addIssue({
          code: 'custom',
          path: d.tables!.length > 1 ? at('tables', j) : at('tables'),
          message: `names ${JSON.stringify(tableKey(t))}, which is not a watched table (database.table / database.tables)`,
        });
      }
    });
    if (d.filter !== undefined) {
      // Compiled here, so a filter that cannot work stops the start with its key,
      // the expression and the position of the error.
      const where = `destinations[${i}].filter`;
      try {
        compileFilter(d.filter, where);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        ctx.addIssue({ code: 'custom', path: at('filter'), message: message.startsWith(`${where}: `) ? message.slice(where.length + 2) : message });
      }
    }
    const missing = d.operations?.filter((op) => !raw.listener.modes.includes(op)) ?? [];
    if (missing.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: at('operations'),
        message: `takes ${missing.join(', ').toLowerCase()}, which listener.modes does not capture`,
      });
    }
  });
}

/** One destination, resolved: see DestinationConfig in types.ts for what each field means. */
interface ResolvedDestination {
  /** Unique, [a-z0-9_-]{1,40}: in metrics, logs, the CLI and dead letters. The `webhook:` section is "default". */
  name: string;
  type: (typeof DESTINATION_TYPES)[number];
  /** Where and how to send: the keys of the `webhook:` section. */
  webhook: ResolvedWebhook;
  /** Concurrent deliveries. Default worker.pool_size. */
  pool_size: number;
  /** The watched tables this destination takes (names as in the config). Default (undefined): every watched table. */
  tables: TableRef[] | undefined;
  /** Operations it takes. Default listener.modes. */
  operations: Operation[];
  /** CEL row filter; events it does not match are not sent. */
  filter?: string;
  /** Columns sent (key columns always are): only `include`, or all but `exclude`. */
  columns?: { include?: string[]; exclude?: string[] };
  /** How events are written (src/delivery/formats.ts). Default original. */
  format: (typeof PAYLOAD_FORMATS)[number];
  /** CloudEvents `source`; default app-db-listener://<database>/<schema>.<table>. */
  source?: string;
  /** CloudEvents `type` prefix; default com.app-db-listener.row. */
  type_prefix?: string;
  /** Several events per request: sent when max_events are ready or max_wait seconds passed. */
  batch?: { max_events: number; max_wait: number };
  /** A NATS destination: JetStream subject template, and the stream to create or verify at start. */
  nats?: { subject: string; create_stream?: { name: string; subjects: string[] } };
  /** A RabbitMQ destination: the exchange (topic, declared if missing) and the routing key template. */
  rabbitmq?: { exchange: string; routing_key: string };
  /** A Redis destination: the stream key template, and the approximate length it is trimmed to. */
  redis?: { stream: string; maxlen?: number };
  /** An MQTT destination: the topic template (QoS 1). */
  mqtt?: { topic: string };
}

type ResolvedWebhook = ReturnType<typeof resolveWebhook>;

/** The keys of a webhook (the `webhook:` section, or a destination's), defaults settled. */
function resolveWebhook(w: {
  url?: string | undefined;
  timeout: number;
  retry_count: number;
  retry_delay: number;
  retry_max_delay?: number | undefined;
  secret: string[];
  headers: Record<string, string>;
  ca_file?: string | undefined;
}) {
  return {
    /** http(s) URL of the receiver; '' for a `webhook:` section without one (then it is no destination). */
    url: w.url ?? '',
    /** Seconds per attempt. Default 30. */
    timeout: w.timeout,
    /** Retries after the first attempt. Default 3 (so 4 attempts). */
    retry_count: w.retry_count,
    /** Seconds before the first retry; later retries back off exponentially. Default 5. */
    retry_delay: w.retry_delay,
    /** Upper bound of one retry delay, seconds. Default 300, or retry_delay when larger. */
    retry_max_delay: w.retry_max_delay ?? Math.max(DEFAULTS.webhook.retry_max_delay, w.retry_delay),
    /** Standard Webhooks secrets (`whsec_…`); several sign with each (rotation). */
    secrets: w.secret,
    /** Extra request headers. */
    headers: w.headers,
    /** PEM bundle of extra CAs trusted for an https URL. */
    ...(w.ca_file !== undefined ? { ca_file: w.ca_file as string | undefined } : {}),
  };
}

function resolveDestinations(raw: RawConfig, webhook: ResolvedWebhook): ResolvedDestination[] {
  const out: ResolvedDestination[] = [];
  if (raw.webhook.url !== undefined) {
    out.push({
      name: DEFAULT_DESTINATION,
      type: 'webhook',
      webhook,
      pool_size: raw.worker.pool_size,
      tables: undefined,
      operations: raw.listener.modes,
      format: 'original',
    });
  }
  for (const d of raw.destinations ?? []) {
    out.push({
      name: d.name,
      type: d.type ?? 'webhook',
      webhook: resolveWebhook(d),
      pool_size: d.pool_size ?? raw.worker.pool_size,
      tables: d.tables,
      operations: d.operations ?? raw.listener.modes,
      ...(d.filter !== undefined ? { filter: d.filter } : {}),
      ...(d.columns !== undefined ? { columns: d.columns.include !== undefined ? { include: d.columns.include } : { exclude: d.columns.exclude ?? [] } } : {}),
      format: d.format ?? 'original',
      ...(d.source !== undefined ? { source: d.source } : {}),
      ...(d.type_prefix !== undefined ? { type_prefix: d.type_prefix } : {}),
      ...(d.batch !== undefined ? { batch: d.batch } : {}),
      ...brokerSettings(d),
    });
  }
  return out;
}

/** The settings of a broker destination's own type, defaults settled. */
function brokerSettings(d: z.output<typeof destinationEntry>): Pick<ResolvedDestination, 'nats' | 'rabbitmq' | 'redis' | 'mqtt'> {
  switch (d.type) {
    case 'nats':
      return { nats: { subject: d.subject ?? BROKER_DEFAULTS.subject, ...(d.create_stream !== undefined ? { create_stream: d.create_stream } : {}) } };
    case 'rabbitmq':
      return { rabbitmq: { exchange: d.exchange ?? BROKER_DEFAULTS.exchange, routing_key: d.routing_key ?? BROKER_DEFAULTS.routing_key } };
    case 'redis':
      return { redis: { stream: d.stream ?? BROKER_DEFAULTS.stream, ...(d.maxlen !== undefined ? { maxlen: d.maxlen } : {}) } };
    case 'mqtt':
      return { mqtt: { topic: d.topic ?? BROKER_DEFAULTS.topic } };
    default:
      return {};
  }
}

// ---------------------------------------------------------------------------
// Resolution: defaults that depend on other keys.

function mergeTables(...lists: (readonly TableRef[] | undefined)[]): TableRef[] {
  const seen = new Set<string>();
  const tables: TableRef[] = [];
  for (const table of lists.flatMap((list) => list ?? [])) {
    const key = tableKey(table);
    if (seen.has(key)) continue;
    seen.add(key);
    tables.push(table);
  }
  return tables;
}

/**
 * The resolved configuration: every default applied, every cross-key rule settled.
 * Its type is the config's type (types.ts derives `Config` from this function's
 * result through the schema), so the fields' comments here are the reference.
 */
function resolveConfig(raw: RawConfig) {
  const db = raw.database;
  const parsed = db.url === undefined ? undefined : parseDatabaseUrl(db.url);
  const fromUrl = parsed && !('problem' in parsed) ? parsed : undefined;

  // database.url wins over the separate keys for every part it contains.
  const type = db.type ?? fromUrl?.type ?? DEFAULTS.database.type;
  const user = fromUrl?.user ?? db.user ?? DEFAULTS.database.user[type];
  const webhookTimeout = raw.webhook.timeout;
  const webhook = resolveWebhook(raw.webhook);
  const destinations = resolveDestinations(raw, webhook);
  // A graceful stop waits for the slowest destination's longest attempt.
  const longestTimeout = Math.max(webhookTimeout, ...destinations.map((d) => d.webhook.timeout));

  return {
    database: {
      type,
      host: fromUrl?.host ?? db.host?.trim() ?? DEFAULTS.database.host,
      port: fromUrl?.port ?? db.port ?? DEFAULTS.database.port[type],
      user,
      password: fromUrl?.password ?? db.password ?? DEFAULTS.database.password,
      // A PostgreSQL URL without a database means the database named after the user (as libpq does).
      database: fromUrl?.database ?? db.database ?? user,
      /** Connection URL; when set it wins over host/port/user/password/database. */
      ...(db.url !== undefined ? { url: db.url as string | undefined } : {}),
      /** Every watched table: `table` (the original's single key) followed by `tables`, without duplicates. */
      tables: mergeTables(db.table, db.tables),
      sslmode: fromUrl?.sslmode ?? db.sslmode ?? DEFAULTS.database.sslmode,
      /** CA bundle for verify-ca / verify-full. */
      ...(db.sslrootcert !== undefined ? { sslrootcert: db.sslrootcert as string | undefined } : {}),
    },
    listener: {
      /** Operations captured, from `modes: "insert,update,delete"`. Default: all three. */
      modes: raw.listener.modes,
      /** Seconds between polls when idle (PostgreSQL: the floor under LISTEN/NOTIFY). Default 1. */
      poll_interval: raw.listener.poll_interval,
      /** Schema (PostgreSQL) or table prefix (MySQL) of what we install. Default `app_db_listener`. */
      schema: raw.listener.schema,
      /** Install missing migrations and triggers at start. Default true. */
      auto_install: raw.listener.auto_install,
      /** Seconds delivered events are kept in the journal before removal. Default 0 (removed at once). */
      retention: raw.listener.retention,
      /**
       * How changes are captured: `trigger` (a trigger per watched table, no server settings)
       * or `log` (PostgreSQL logical replication: no triggers, see docs/capture.md). Default `trigger`.
       */
      capture: raw.listener.capture ?? DEFAULTS.listener.capture,
    },
    /** The original section; with a url it is the destination "default". */
    webhook,
    /** Every destination: "default" (from `webhook:`, when it has a url) first, then `destinations:`. */
    destinations,
    logging: {
      /** Log file; its directory is created. Default: standard output. */
      ...(raw.logging.file !== undefined ? { file: raw.logging.file as string | undefined } : {}),
      level: raw.logging.level ?? DEFAULTS.logging.level,
      /** `text` (the original's line shape) or `json`. Default text. */
      format: raw.logging.format ?? DEFAULTS.logging.format,
    },
    worker: {
      /** Concurrent deliveries (of the default destination, and of others without their own). Default 10. */
      pool_size: raw.worker.pool_size,
      /** Seconds a graceful stop waits for in-flight deliveries. Default: the longest timeout + 5. */
      shutdown_timeout: raw.worker.shutdown_timeout ?? longestTimeout + DEFAULTS.worker.shutdown_margin,
    },
    http: {
      /** Where the admin server (/metrics, /healthz, /readyz) listens; null when disabled. Default 127.0.0.1:9464. */
      listen: (raw.http.listen === undefined ? parseListenAddress(DEFAULTS.http.listen)! : raw.http.listen) as HttpListen | null,
      /**
       * The console's and its API's bearer token (a secret: write "${ADMIN_TOKEN}"). Required
       * when the console is on and http.listen is not a loopback address.
       */
      ...(raw.http.token !== undefined ? { token: raw.http.token as string | undefined } : {}),
      /** Serve the web console at / and its JSON API at /api/ (docs/console.md). Default true. */
      console: raw.http.console,
      /** Keep the log of delivery attempts the console shows. Default true. */
      attempt_log: raw.http.attempt_log,
      /** Attempts kept at most (the oldest are pruned). Default 10,000. */
      attempt_log_max_rows: raw.http.attempt_log_max_rows,
      /** Seconds an attempt is kept at most. Default 86,400 (24 h). */
      attempt_log_max_age: raw.http.attempt_log_max_age,
    },
  };
}

// A missing section parses as an empty mapping, so its defaults apply. (The
// cast: the sections' input types list keys whose schemas accept undefined.)
const emptySection = {} as never;

/**
 * The whole configuration: YAML (after substitution) in, resolved `Config` out.
 * A missing section is the same as an empty one.
 */
export const configSchema = z
  .object(
    {
      database: databaseSection.prefault(emptySection),
      listener: listenerSection.prefault(emptySection),
      webhook: webhookSection.prefault(emptySection),
      logging: loggingSection.prefault(emptySection),
      worker: workerSection.prefault(emptySection),
      http: httpSection.prefault(emptySection),
      destinations: destinationsSection,
    },
    {
      error: 'the configuration must be a YAML mapping with the sections database, listener, webhook, destinations, logging, worker and http',
    },
  )
  .superRefine(checkDestinations)
  .transform(resolveConfig);
