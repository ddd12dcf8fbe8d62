/**
 * The resolved configuration, as produced by `loadConfig` (see `schema.ts`).
 *
 * Keys keep the YAML spelling of the original program (snake_case), so the
 * documentation, the file and the code use one vocabulary. The object is frozen
 * after loading and passed explicitly; no module keeps a copy.
 */
export type DatabaseType = 'postgres' | 'mysql';
export type Operation = 'INSERT' | 'UPDATE' | 'DELETE';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** One watched table. `schema` is undefined when the config names the table without one. */
export interface TableRef {
  readonly schema?: string;
  readonly name: string;
}

export interface DatabaseConfig {
  readonly type: DatabaseType;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** Connection URL; when set it wins over host/port/user/password/database. */
  readonly url?: string;
  /** Every watched table: `table` (the original's single key) followed by `tables`, without duplicates. */
  readonly tables: readonly TableRef[];
  readonly sslmode: SslMode;
  /** CA bundle for verify-ca / verify-full. */
  readonly sslrootcert?: string;
}

export interface ListenerConfig {
  /** Operations captured, from `modes: "insert,update,delete"`. Default: all three. */
  readonly modes: readonly Operation[];
  /** Seconds between polls when idle (PostgreSQL: the floor under LISTEN/NOTIFY). Default 1. */
  readonly poll_interval: number;
  /** Schema (PostgreSQL) or table prefix (MySQL) of what we install. Default `app_db_listener`. */
  readonly schema: string;
  /** Install missing migrations and triggers at start. Default true. */
  readonly auto_install: boolean;
  /** Seconds delivered events are kept in the journal before removal. Default 0 (removed at once). */
  readonly retention: number;
}

export interface WebhookConfig {
  readonly url: string;
  /** Seconds per attempt. Default 30. */
  readonly timeout: number;
  /** Retries after the first attempt. Default 3 (so 4 attempts). */
  readonly retry_count: number;
  /** Seconds before the first retry; later retries back off exponentially. Default 5. */
  readonly retry_delay: number;
  /** Upper bound of one retry delay, seconds. Default 300. */
  readonly retry_max_delay: number;
  /** Standard Webhooks secrets (`whsec_…`); several sign with each (rotation). */
  readonly secrets: readonly string[];
  /** Extra request headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** PEM bundle of extra CAs trusted for an https URL. */
  readonly ca_file?: string;
}

export interface LoggingConfig {
  /** Log file; its directory is created. Default: standard output. */
  readonly file?: string;
  readonly level: LogLevel;
  /** `text` (the original's line shape) or `json`. Default text. */
  readonly format: 'text' | 'json';
}

export interface WorkerConfig {
  /** Concurrent deliveries. Default 10. */
  readonly pool_size: number;
  /** Seconds a graceful stop waits for in-flight deliveries. Default: webhook.timeout + 5. */
  readonly shutdown_timeout: number;
}

export interface HttpListen {
  readonly host: string;
  /** 0 picks a free port (the address actually bound is logged). */
  readonly port: number;
}

export interface HttpConfig {
  /** Where the admin server (/metrics, /healthz, /readyz) listens; null when disabled. Default 127.0.0.1:9464. */
  readonly listen: HttpListen | null;
}

export interface Config {
  readonly database: DatabaseConfig;
  readonly listener: ListenerConfig;
  readonly webhook: WebhookConfig;
  readonly logging: LoggingConfig;
  readonly worker: WorkerConfig;
  readonly http: HttpConfig;
}
