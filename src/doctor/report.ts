/** What `doctor` finds: checks with a status, a one-line detail and, for a problem, the fix. */
import type { DestinationType } from '../config/schema.js';
import type { Config } from '../config/types.js';
import { redactText } from '../observability/redact.js';
import { AppError, describeError } from '../util/errors.js';

export type CheckStatus = 'ok' | 'warning' | 'problem';

export type CheckName = 'config' | 'database' | 'privileges' | 'migrations' | 'triggers' | 'capture' | DestinationType;

export interface DoctorCheck {
  readonly name: CheckName;
  readonly status: CheckStatus;
  /** One line: what was found. */
  readonly detail: string;
  /** The command or SQL that fixes a problem (or a warning), one per line. */
  readonly fix?: string;
  /** For install problems: the SQL `install` would run (what `install --dry-run` prints). */
  readonly sql?: string;
}

export interface DoctorReport {
  /** True when no check found a problem (warnings allowed). */
  readonly ok: boolean;
  readonly problems: number;
  readonly warnings: number;
  /** In order: config, database, privileges, migrations, triggers, webhook. */
  readonly checks: readonly DoctorCheck[];
}

export function check(name: CheckName, status: CheckStatus, detail: string, fix?: string, sql?: string): DoctorCheck {
  return { name, status, detail, ...(fix ? { fix } : {}), ...(sql ? { sql } : {}) };
}

/** A problem from an error: its message, and its hint as the fix. */
export function errorCheck(name: CheckName, err: unknown): DoctorCheck {
  return err instanceof AppError ? check(name, 'problem', err.message, err.hint) : check(name, 'problem', describeError(err));
}

/** Runs a check; an error it meets (a permission denied, a lost connection) is its problem. */
export async function guard(name: CheckName, fn: () => Promise<DoctorCheck>): Promise<DoctorCheck> {
  try {
    return await fn();
  } catch (err) {
    return errorCheck(name, err);
  }
}

/** The worst of several statuses. */
export function worst(statuses: readonly CheckStatus[]): CheckStatus {
  return statuses.includes('problem') ? 'problem' : statuses.includes('warning') ? 'warning' : 'ok';
}

export function buildReport(checks: readonly DoctorCheck[]): DoctorReport {
  const problems = checks.filter((c) => c.status === 'problem').length;
  const warnings = checks.filter((c) => c.status === 'warning').length;
  return { ok: problems === 0, problems, warnings, checks };
}

/** `s` or `s` + "s": "1 table", "2 tables". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A path as a shell argument: as is when plain, else in single quotes. */
export function shellArg(text: string): string {
  return /^[\w./:@%+=-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The config's secrets, as they could appear in text: passwords and webhook secrets. */
function secretsOf(config: Config): string[] {
  const hooks = [config.webhook, ...config.destinations.map((d) => d.webhook)];
  const out = [config.database.password, ...hooks.flatMap((h) => h.secrets.flatMap((s) => [s, s.replace(/^whsec_/, '')]))];
  for (const raw of [...hooks.map((h) => h.url), config.database.url ?? '']) {
    try {
      const u = new URL(raw);
      out.push(u.password, decodeURIComponent(u.password));
    } catch {
      // Not a URL: nothing to take from it.
    }
  }
  return [...new Set(out.filter((s) => s.length >= 3))].sort((a, b) => b.length - a.length);
}

/**
 * Hides credentials in every text of the report: URL user information and
 * `whsec_` secrets (redactText), and any literal occurrence of the configured
 * passwords and secrets, wherever a server or library message might echo them.
 */
export function scrubReport(report: DoctorReport, config: Config | undefined): DoctorReport {
  const secrets = config ? secretsOf(config) : [];
  const scrub = (text: string): string => secrets.reduce((t, s) => t.split(s).join('***'), redactText(text));
  return {
    ...report,
    checks: report.checks.map((c) => ({
      ...c,
      detail: scrub(c.detail),
      ...(c.fix ? { fix: scrub(c.fix) } : {}),
      ...(c.sql ? { sql: scrub(c.sql) } : {}),
    })),
  };
}
