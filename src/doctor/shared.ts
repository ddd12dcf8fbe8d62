/** Policy shared by the PostgreSQL and MySQL checks: pure functions over what was read. */
import type { InstallPlan, InstallStep } from '../capture/postgres/install.js';
import type { Migration } from '../schema/migrations.js';
import { check, plural, worst, type CheckName, type CheckStatus, type DoctorCheck } from './report.js';

/** One thing a check found wrong, with what fixes it. */
export interface Finding {
  readonly status: Exclude<CheckStatus, 'ok'>;
  readonly what: string;
  readonly fix?: string;
}

/** A check from its findings: ok with `okDetail` when there are none, else the worst of them. */
export function findingsCheck(name: CheckName, found: readonly Finding[], okDetail: string, subject?: string, sql?: string): DoctorCheck {
  if (found.length === 0) return check(name, 'ok', okDetail);
  const detail = (subject ? `${subject}: ` : '') + found.map((f) => f.what).join('; ');
  const fixes = [...new Set(found.flatMap((f) => (f.fix ? [f.fix] : [])))];
  return check(name, worst(found.map((f) => f.status)), detail, fixes.join('\n') || undefined, sql);
}

/** Installed migration version (null: nothing installed) against the files shipped in migrations/. */
export function migrationsCheck(installed: number | null, shipped: readonly Migration[], where: string, installFix: string): DoctorCheck {
  const latest = shipped.at(-1)?.version ?? 0;
  if (installed === null || installed === 0) {
    return check('migrations', 'problem', `nothing is installed: ${where} has no applied migration (this version ships ${latest})`, installFix);
  }
  if (installed < latest) {
    return check('migrations', 'problem', `${plural(latest - installed, 'migration')} pending: ${where} is at version ${installed} of ${latest}`, installFix);
  }
  if (installed > latest) {
    return check(
      'migrations',
      'problem',
      `${where} is at version ${installed}, newer than this app-db-listener knows (${latest})`,
      'upgrade app-db-listener to the version that installed it, or a newer one',
    );
  }
  return check('migrations', 'ok', `${where} at version ${installed}, current`);
}

/**
 * The plan's trigger steps (optionally of one table). The installers describe them as
 * `capture trigger(s) on <schema>.<table> (<operations>)`; migration steps come first.
 */
export function triggerSteps(plan: InstallPlan, table?: { schema: string; name: string }): InstallStep[] {
  const head = table ? `on ${table.schema}.${table.name} (` : 'on ';
  return plan.steps.filter((s) => /^capture triggers? /.test(s.description) && s.description.replace(/^capture triggers? /, '').startsWith(head));
}

/** The fix for anything `install` repairs, with how to see its SQL first. */
export function installFix(configArg: string): string {
  return `app-db-listener install --config ${configArg}\n(to see the SQL first: app-db-listener install --dry-run --config ${configArg})`;
}
