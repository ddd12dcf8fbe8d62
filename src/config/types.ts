/**
 * The resolved configuration, as produced by `loadConfig` (see `schema.ts`).
 *
 * Keys keep the YAML spelling of the original program (snake_case), so the
 * documentation, the file and the code use one vocabulary. The object is frozen
 * after loading and passed explicitly; no module keeps a copy.
 */
import type * as z from 'zod';
import type { configSchema } from './schema.js';

export type DatabaseType = 'postgres' | 'mysql';
export type Operation = 'INSERT' | 'UPDATE' | 'DELETE';
/**
 * What an event can report: an operation; (log capture only) a TRUNCATE of the table,
 * delivered to the destinations that take DELETE (docs/capture.md); or READ, a row a
 * backfill read as it stood, delivered to every destination of the table whatever its
 * operations (docs/backfill.md).
 */
export type EventOperation = Operation | 'TRUNCATE' | 'READ';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** One watched table. `schema` is undefined when the config names the table without one. */
export interface TableRef {
  readonly schema?: string;
  readonly name: string;
}

export interface HttpListen {
  readonly host: string;
  /** 0 picks a free port (the address actually bound is logged). */
  readonly port: number;
}

/** Every level of a value, read-only (the loaded config is deeply frozen). */
type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * The resolved configuration, as produced by `loadConfig`: derived from the schema
 * (schema.ts, `resolveConfig`, whose fields carry the comments), so the keys, their
 * defaults and their types have one source of truth. Frozen, passed explicitly.
 */
export type Config = DeepReadonly<z.output<typeof configSchema>>;
export type DatabaseConfig = Config['database'];
export type ListenerConfig = Config['listener'];
/** The keys of a webhook: the `webhook:` section's, or a destination's. */
export type WebhookConfig = Config['webhook'];
/** One destination: an independent consumer of the changes, with its own queue, retries and dead letters. */
export type DestinationConfig = Config['destinations'][number];
/** How a destination's events are written: see src/delivery/formats.ts. */
export type PayloadFormat = DestinationConfig['format'];
export type LoggingConfig = Config['logging'];
export type WorkerConfig = Config['worker'];
export type HttpConfig = Config['http'];
