/**
 * Errors raised while loading the configuration.
 *
 * Every failure carries a stable `code` (for programs and tests) and a list of
 * issues (one per problem found), and its message is meant for a person: one
 * line per issue, each naming the key, what is wrong and the value found, with
 * passwords, secrets and URL credentials hidden.
 */

/** Exit status of the command line when the configuration cannot be used. */
export const CONFIG_EXIT_CODE = 2;

export type ConfigErrorCode =
  /** The file does not exist. */
  | 'CONFIG_NOT_FOUND'
  /** The file exists but cannot be read (permissions, a directory, ...). */
  | 'CONFIG_READ'
  /** The file is not valid YAML. */
  | 'CONFIG_YAML'
  /** A `${VAR}` reference cannot be substituted. */
  | 'CONFIG_ENV'
  /** The YAML is valid but a value is missing or wrong. */
  | 'CONFIG_INVALID';

/** One problem found in the configuration. */
export interface ConfigIssue {
  /** Key path such as `database.port` or `database.tables[1]`; empty for the whole file. */
  readonly path: string;
  /** What is wrong, phrased to follow the key: `must be an integer between 1 and 65535`. */
  readonly message: string;
  /** The value found, already quoted and redacted; absent when the key is missing. */
  readonly got?: string;
  /** 1-based line (and column) in the file, when known. */
  readonly line?: number;
  readonly column?: number;
}

/** `database.port must be an integer between 1 and 65535, got "abc" (line 4)` */
export function formatIssue(issue: ConfigIssue): string {
  let text = issue.path === '' ? issue.message : `${issue.path} ${issue.message}`;
  if (issue.got !== undefined) text += `, got ${issue.got}`;
  if (issue.line !== undefined) {
    text += issue.column !== undefined ? ` (line ${issue.line}, column ${issue.column})` : ` (line ${issue.line})`;
  }
  return text;
}

const HEADLINES: Record<ConfigErrorCode, string> = {
  CONFIG_NOT_FOUND: 'configuration file not found',
  CONFIG_READ: 'cannot read the configuration file',
  CONFIG_YAML: 'the configuration file is not valid YAML',
  CONFIG_ENV: 'cannot substitute environment variables in the configuration',
  CONFIG_INVALID: 'invalid configuration',
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code: ConfigErrorCode;
  /** Every problem found, in file order. Never empty. */
  readonly issues: readonly ConfigIssue[];
  /** The file path (or the name given to `parseConfig`). */
  readonly source: string;
  /**
   * Warnings found before the failure (unknown keys, mostly). They are part of
   * the message because a misspelt key is often the cause of a "required" error.
   */
  readonly warnings: readonly string[];

  constructor(
    code: ConfigErrorCode,
    source: string,
    issues: readonly ConfigIssue[],
    options: { cause?: unknown; warnings?: readonly string[] } = {},
  ) {
    const warnings = options.warnings ?? [];
    super(buildMessage(code, source, issues, warnings), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.source = source;
    this.issues = Object.freeze([...issues]);
    this.warnings = Object.freeze([...warnings]);
  }
}

function buildMessage(
  code: ConfigErrorCode,
  source: string,
  issues: readonly ConfigIssue[],
  warnings: readonly string[],
): string {
  const headline = `${source}: ${HEADLINES[code]}`;
  const notes = warnings.map((w) => `  note: ${w}`);
  if (issues.length === 0) return [headline, ...notes].join('\n');
  if (issues.length === 1 && code !== 'CONFIG_INVALID' && notes.length === 0) {
    return `${headline}: ${formatIssue(issues[0]!)}`;
  }
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  return [`${headline} (${count}):`, ...issues.map((i) => `  - ${formatIssue(i)}`), ...notes].join('\n');
}
