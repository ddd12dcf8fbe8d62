/**
 * Reading the configuration file: YAML, `${VAR}` substitution, validation.
 *
 * Order: read the file, parse the YAML (every scalar as text, so `0123` keeps
 * its zero and `5432` and `"5432"` mean the same), drop unknown keys with a
 * warning, substitute `${VAR}` inside the values, validate and resolve with the
 * schema, freeze. Every step that fails throws a `ConfigError` naming the keys.
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { $ZodIssue } from 'zod/v4/core';
import { redactText, redactUrl } from '../observability/redact.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { checkWebhookSecret, configSchema, destinationEntry, parseDatabaseUrl, SECTIONS } from './schema.js';
import { substituteTree, type Env, type Path } from './substitute.js';
import type { Config } from './types.js';

export type { Env } from './substitute.js';

export interface LoadResult {
  /** The resolved, deeply frozen configuration. */
  readonly config: Config;
  /** Things worth telling the operator that do not stop the program (unknown keys, ignored keys). */
  readonly warnings: string[];
}

/**
 * Reads and validates a configuration file.
 * @throws ConfigError with code CONFIG_NOT_FOUND, CONFIG_READ, CONFIG_YAML, CONFIG_ENV or CONFIG_INVALID.
 */
export function loadConfig(path: string, env: Env = process.env): LoadResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError('CONFIG_NOT_FOUND', path, [{ path: '', message: `no file at ${resolvePath(path)}` }], {
        cause: err,
      });
    }
    const reason = code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : String(code ?? err);
    throw new ConfigError('CONFIG_READ', path, [{ path: '', message: `cannot read ${resolvePath(path)}: ${reason}` }], {
      cause: err,
    });
  }
  return parseConfig(text, env, path);
}

/**
 * Validates configuration text. `sourceName` is used in messages (a file name).
 * @throws ConfigError with code CONFIG_YAML, CONFIG_ENV or CONFIG_INVALID.
 */
export function parseConfig(text: string, env: Env = process.env, sourceName = 'config'): LoadResult {
  const warnings: string[] = [];
  const { tree, positions } = readYaml(text.replace(/^\uFEFF/, ''), sourceName, warnings);
  const known = keepKnownKeys(tree, positions, sourceName, warnings);

  const substituted = substituteTree(known, env, isSensitivePath);
  if (substituted.problems.length > 0) {
    throw new ConfigError(
      'CONFIG_ENV',
      sourceName,
      sortByLine(substituted.problems.map((p) => withPosition({ path: formatPath(p.path), message: p.message }, positions))),
      { warnings },
    );
  }

  const input = substituted.value;
  const result = configSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError('CONFIG_INVALID', sourceName, sortByLine(toIssues(result.error.issues, input, positions)), {
      warnings,
    });
  }
  warnings.push(...explain(input, result.data));
  return { config: deepFreeze(result.data), warnings };
}

// ---------------------------------------------------------------------------
// YAML

interface Position {
  line: number;
  column: number;
}

function readYaml(
  text: string,
  sourceName: string,
  warnings: string[],
): { tree: unknown; positions: Map<string, Position> } {
  const lineCounter = new LineCounter();
  // failsafe: every scalar is text (the schema reads numbers and booleans from
  // it); the null tag keeps `key:` / `~` / `null` meaning "no value".
  const doc = parseDocument(text, {
    schema: 'failsafe',
    customTags: ['null'],
    merge: true,
    prettyErrors: false,
    uniqueKeys: true,
    lineCounter,
  });
  if (doc.errors.length > 0) {
    // Messages only: the source excerpt that pretty errors add could show a password.
    const issues = doc.errors.map((error): ConfigIssue => {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      return { path: '', message: firstLine(error.message), line, column: col };
    });
    throw new ConfigError('CONFIG_YAML', sourceName, issues);
  }
  for (const warning of doc.warnings) {
    const { line } = lineCounter.linePos(warning.pos[0]);
    warnings.push(`${sourceName} line ${line}: ${firstLine(warning.message)}`);
  }

  let tree: unknown;
  try {
    tree = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError('CONFIG_YAML', sourceName, [{ path: '', message: firstLine((err as Error).message) }], {
      cause: err,
    });
  }
  const positions = new Map<string, Position>();
  collectPositions(doc.contents, [], positions, lineCounter);
  return { tree, positions };
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').trim();
}

function collectPositions(node: unknown, path: Path, out: Map<string, Position>, lines: LineCounter): void {
  const mark = (p: Path, n: unknown) => {
    const range = (n as YamlNode | null)?.range;
    if (range) {
      const { line, col } = lines.linePos(range[0]);
      out.set(formatPath(p), { line, column: col });
    }
  };
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const childPath = [...path, key];
      mark(childPath, pair.key);
      collectPositions(pair.value, childPath, out, lines);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => {
      const childPath = [...path, index];
      mark(childPath, item);
      collectPositions(item, childPath, out, lines);
    });
  }
}

// ---------------------------------------------------------------------------
// Key paths, positions, values in messages

/** `database.tables[1]` */
export function formatPath(path: Path): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text === '' ? segment : `.${segment}`;
  }
  return text;
}

function withPosition(issue: ConfigIssue, positions: Map<string, Position>): ConfigIssue {
  const position = positions.get(issue.path);
  return position ? { ...issue, line: position.line } : issue;
}

const SENSITIVE_KEY = /password|secret|token/i;

/** Values of these keys are never shown in messages. */
function isSensitivePath(path: Path): boolean {
  return path.some((segment) => typeof segment === 'string' && SENSITIVE_KEY.test(segment)) || isHeaderValue(path);
}

function isHeaderValue(path: Path): boolean {
  return (
    (path.length > 2 && path[0] === 'webhook' && path[1] === 'headers') ||
    (path.length > 3 && path[0] === 'destinations' && path[2] === 'headers')
  );
}

function valueAt(tree: unknown, path: Path): unknown {
  let node = tree;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}

const MAX_SHOWN = 80;

/** The value as shown after "got": quoted, shortened, without secrets. */
function describeValue(path: Path, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (isHeaderValue(path)) return undefined; // the header name is the problem; values may be tokens
  if (isSensitivePath(path)) return '<redacted>';
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'nothing';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value !== 'string') return String(value);
  let text = redactText(redactUrl(value));
  if (text.length > MAX_SHOWN) text = `${text.slice(0, MAX_SHOWN)}…`;
  return JSON.stringify(text);
}

/** File order; issues about missing keys (no line) come last, in schema order. */
function sortByLine(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.index - b.index)
    .map(({ issue }) => issue);
}

function toIssues(zodIssues: readonly $ZodIssue[], input: unknown, positions: Map<string, Position>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const zodIssue of zodIssues) {
    const path = zodIssue.path.filter((s): s is string | number => typeof s !== 'symbol');
    const key = formatPath(path);
    const got = describeValue(path, valueAt(input, path));
    const issue = withPosition({ path: key, message: zodIssue.message, ...(got !== undefined ? { got } : {}) }, positions);
    const id = `${key}\u0000${issue.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    issues.push(issue);
  }
  return issues;
}

// ---------------------------------------------------------------------------
// Unknown keys

const KNOWN_KEYS: Record<string, readonly string[]> = Object.fromEntries(
  Object.entries(SECTIONS).map(([name, section]) => [name, Object.keys(section.shape)]),
);
/** `destinations:` is a list; these are the keys of each entry. */
const DESTINATION_KEYS: readonly string[] = Object.keys(destinationEntry.shape);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Removes mapping entries whose value is null (a key with no value means "not set"). */
function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (child !== null && child !== undefined) out[key] = dropNulls(child);
  }
  return out;
}

/**
 * Returns the tree with only the keys the schema knows, and a warning for each
 * key left out. Unknown keys are never errors: the original program ignored
 * them, and a config shared by several versions must keep working.
 */
function keepKnownKeys(tree: unknown, positions: Map<string, Position>, sourceName: string, warnings: string[]): unknown {
  const cleaned = dropNulls(tree);
  if (cleaned === null || cleaned === undefined) return {};
  if (!isPlainObject(cleaned)) return cleaned; // the schema reports it

  const warn = (path: Path) => {
    const key = formatPath(path);
    const position = positions.get(key);
    const where = position ? `${sourceName} line ${position.line}: ` : `${sourceName}: `;
    const suggestion = suggestKey(path);
    warnings.push(`${where}unknown key "${key}" (ignored)${suggestion ? `, did you mean "${suggestion}"?` : ''}`);
  };

  const out: Record<string, unknown> = {};
  for (const [sectionName, section] of Object.entries(cleaned)) {
    if (sectionName === 'destinations') {
      out[sectionName] = Array.isArray(section)
        ? section.map((entry: unknown, index) => {
            if (!isPlainObject(entry)) return entry;
            const kept: Record<string, unknown> = {};
            for (const [key, value] of Object.entries(entry)) {
              if (DESTINATION_KEYS.includes(key)) kept[key] = value;
              else warn([sectionName, index, key]);
            }
            return kept;
          })
        : section;
      continue;
    }
    const keys = KNOWN_KEYS[sectionName];
    if (keys === undefined) {
      warn([sectionName]);
      continue;
    }
    if (!isPlainObject(section)) {
      out[sectionName] = section;
      continue;
    }
    const kept: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(section)) {
      if (keys.includes(key)) kept[key] = value;
      else warn([sectionName, key]);
    }
    out[sectionName] = kept;
  }
  return out;
}

/** A known key close to an unknown one: a typo in the same section, or the same key in another section. */
function suggestKey(path: Path): string | undefined {
  const name = String(path[path.length - 1]);
  if (path.length === 1) {
    const section = closest(name, [...Object.keys(KNOWN_KEYS), 'destinations']);
    return section;
  }
  const sectionName = String(path[0]);
  if (sectionName === 'destinations') {
    const sibling = closest(name, DESTINATION_KEYS);
    return sibling === undefined ? undefined : formatPath([...path.slice(0, -1), sibling]);
  }
  const sibling = closest(name, KNOWN_KEYS[sectionName] ?? []);
  if (sibling !== undefined) return `${sectionName}.${sibling}`;
  for (const [other, keys] of Object.entries(KNOWN_KEYS)) {
    if (other !== sectionName && keys.includes(name)) return `${other}.${name}`;
  }
  return undefined;
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const limit = Math.max(1, Math.min(3, Math.floor(name.length / 3)));
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase().replaceAll('-', '_'), candidate);
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Edits between two names; swapping two neighbouring letters ("tabel") counts as one. */
function editDistance(a: string, b: string): number {
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        current[j] = Math.min(current[j]!, beforePrevious[j - 2]! + 1);
      }
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length]!;
}

// ---------------------------------------------------------------------------
// Warnings about valid but doubtful settings

// `type` is not here: a URL contradicting database.type is an error, not a warning.
const URL_PARTS = ['host', 'port', 'user', 'password', 'database', 'sslmode'] as const;

function explain(input: unknown, config: Config): string[] {
  const warnings: string[] = [];
  const database = valueAt(input, ['database']);
  const url = valueAt(input, ['database', 'url']);
  if (isPlainObject(database) && typeof url === 'string' && url.trim() !== '') {
    const parts = parseDatabaseUrl(url);
    if (!('problem' in parts)) {
      for (const key of URL_PARTS) {
        const given = database[key];
        const fromUrl = parts[key];
        if (given === undefined || fromUrl === undefined) continue;
        const same =
          key === 'host' || key === 'sslmode'
            ? String(fromUrl).toLowerCase() === String(given).trim().toLowerCase()
            : String(fromUrl) === (key === 'password' ? String(given) : String(given).trim());
        if (!same) {
          warnings.push(`database.${key} is ignored: database.url gives a different ${key}`);
        }
      }
    }
  }

  const { sslmode, sslrootcert } = config.database;
  if (sslrootcert !== undefined && sslmode !== 'verify-ca' && sslmode !== 'verify-full') {
    warnings.push(`database.sslrootcert is only used with sslmode verify-ca or verify-full (sslmode is "${sslmode}")`);
  }

  config.webhook.secrets.forEach((secret, index) => {
    if (checkWebhookSecret(secret) !== undefined) return;
    const bytes = Buffer.from(secret.slice('whsec_'.length), 'base64').length;
    if (bytes < 24) {
      const which = config.webhook.secrets.length === 1 ? 'the secret' : `secret ${index + 1}`;
      warnings.push(`webhook.secret: ${which} has only ${bytes} bytes; use at least 24 random bytes`);
    }
  });
  return warnings;
}

// ---------------------------------------------------------------------------

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
