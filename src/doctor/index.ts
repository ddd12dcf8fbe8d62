/**
 * `runDoctor(config)`: checks, in order, that the config loads, the database answers
 * and is recent enough, its user may install and run, the migrations and the capture
 * triggers are current, and the webhook endpoint answers. Read-only: it changes
 * nothing and sends no event. Every problem comes with the command or SQL that fixes
 * it, and no text of the report holds a password or a secret.
 */
import type { Config } from '../config/types.js';
import { checkMySql } from './mysql.js';
import { checkPostgres } from './postgres.js';
import { buildReport, check, plural, scrubReport, shellArg, type DoctorCheck, type DoctorReport } from './report.js';
import { installFix } from './shared.js';
import { checkDestination } from './webhook.js';

export type { CheckName, CheckStatus, DoctorCheck, DoctorReport } from './report.js';

export interface DoctorOptions {
  /** The config file, as the fixes should name it. Default `config.yaml`. */
  readonly configPath?: string;
  /** What loading the config warned about (LoadResult.warnings). */
  readonly configWarnings?: readonly string[];
}

export async function runDoctor(config: Config, options: DoctorOptions = {}): Promise<DoctorReport> {
  const path = options.configPath ?? 'config.yaml';
  const warnings = options.configWarnings ?? [];
  const tables = config.database.tables.length;
  const loaded = `${path} loaded: ${config.database.type === 'postgres' ? 'PostgreSQL' : 'MySQL'}, ${plural(tables, 'watched table')}`;
  const checks: DoctorCheck[] = [
    warnings.length === 0
      ? check('config', 'ok', loaded)
      : check('config', 'warning', `${loaded}; ${warnings.join('; ')}`, `edit ${path}`),
  ];
  const fix = installFix(shellArg(path));
  // Every destination's endpoint (the webhook: section is "default"), side by side.
  const listedFrom = config.webhook.url !== '' ? 1 : 0;
  const several = config.destinations.length > 1;
  const [database, ...endpoints] = await Promise.all([
    config.database.type === 'postgres' ? checkPostgres(config, fix) : checkMySql(config, fix),
    ...config.destinations.map((d, i) =>
      checkDestination(d, i < listedFrom ? 'webhook' : `destinations[${i - listedFrom}]`, several || i >= listedFrom ? d.name : undefined),
    ),
  ]);
  checks.push(...database, ...endpoints);
  return scrubReport(buildReport(checks), config);
}

/** The report for a config that cannot be loaded (`message` from the ConfigError). */
export function configProblemReport(path: string, message: string): DoctorReport {
  return scrubReport(
    buildReport([check('config', 'problem', message.replace(/\s*\n\s*/g, '; '), `edit ${path} as the message says`)]),
    undefined,
  );
}
