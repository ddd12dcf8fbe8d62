/**
 * Configuration: load a YAML file into a validated, frozen `Config`.
 *
 * ```ts
 * const { config, warnings } = loadConfig('config.yaml');
 * ```
 */
export type * from './types.js';
export { loadConfig, parseConfig, formatPath, type LoadResult, type Env } from './load.js';
export { ConfigError, CONFIG_EXIT_CODE, formatIssue, type ConfigErrorCode, type ConfigIssue } from './errors.js';
export {
  configSchema,
  DEFAULTS,
  DATABASE_TYPES,
  SSL_MODES,
  LOG_LEVELS,
  LOG_FORMATS,
  OPERATIONS,
  RESERVED_HEADERS,
  parseDatabaseUrl,
  checkWebhookSecret,
  type DatabaseUrlParts,
} from './schema.js';
export { describeTable, parseTableName, splitTableList, tableKey, type TableParse } from './tables.js';
export { substituteText } from './substitute.js';
