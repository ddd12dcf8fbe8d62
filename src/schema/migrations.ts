/**
 * Numbered migration files shipped in `migrations/<family>/NNNNNN_name.sql`.
 * They are read from the package, never edited once shipped, and applied in order.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export type Family = 'postgres' | 'mysql';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** SQL with placeholders (`{{schema}}`, `{{channel}}`, ...) still in it. */
  readonly template: string;
}

/** The package root, from dist/schema or src/schema alike. */
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function migrationsDir(family: Family): string {
  return path.join(packageRoot, 'migrations', family);
}

export function loadMigrations(family: Family): Migration[] {
  const dir = migrationsDir(family);
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const m = /^(\d{6})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) continue;
    out.push({ version: Number(m[1]), name: m[2]!, template: readFileSync(path.join(dir, file), 'utf8') });
  }
  out.forEach((mig, i) => {
    if (mig.version !== i + 1) throw new Error(`migration numbering gap in ${dir}: expected ${i + 1}, found ${mig.version}`);
  });
  return out;
}

/** Replaces `{{name}}` placeholders; an unknown placeholder is a bug, so it throws. */
export function render(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`migration placeholder {{${key}}} has no value`);
    return v;
  });
}
