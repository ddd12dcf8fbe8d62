/**
 * `${VAR}` substitution in configuration values.
 *
 * Substitution runs on the parsed YAML, inside each text value, so a variable
 * holding quotes, `#`, `: ` or line breaks is taken literally and cannot change
 * the structure of the file. Only values are substituted, never keys.
 *
 * - `${NAME}`: the variable's value; an error when it is not set.
 * - `${NAME:-default}`: the default when the variable is unset or empty (as in
 *   a POSIX shell). The default is literal text up to the first `}`.
 * - `$${`: a literal `${`. A `$` anywhere else is literal.
 *
 * A substituted value is not scanned again, so a `${…}` inside a variable's
 * value stays as it is.
 */

export type Env = Readonly<Record<string, string | undefined>>;

export type Path = readonly (string | number)[];

export interface SubstitutionProblem {
  readonly path: Path;
  /** Follows the key path: `uses ${DB_USER}, but ...`. */
  readonly message: string;
}

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;
const LITERAL_HINT = 'write $${ for a literal ${';

/**
 * Substitutes one text value. `quoteReference` says whether the text of a bad
 * reference may appear in the message (false for secret keys).
 */
export function substituteText(
  text: string,
  env: Env,
  quoteReference = true,
): { value: string; problems: string[] } {
  if (!text.includes('${')) return { value: text, problems: [] };
  const problems: string[] = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i];
      i++;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close < 0) {
      problems.push(`has "\${" without a closing "}" (${LITERAL_HINT})`);
      out += text.slice(i);
      break;
    }
    const body = text.slice(i + 2, close);
    const match = REFERENCE.exec(body);
    if (!match) {
      const shown = quoteReference ? ` ${JSON.stringify('${' + body + '}')}` : '';
      problems.push(
        `has an invalid reference${shown}: use \${NAME} or \${NAME:-default} with a name of letters, digits and underscores (${LITERAL_HINT})`,
      );
    } else {
      const name = match[1]!;
      const fallback = match[2];
      const value = env[name];
      if (value !== undefined && (value !== '' || fallback === undefined)) {
        out += value;
      } else if (fallback !== undefined) {
        out += fallback;
      } else {
        problems.push(
          `uses \${${name}}, but the environment variable ${name} is not set (set it, or give a default with \${${name}:-value})`,
        );
      }
    }
    i = close + 1;
  }
  return { value: out, problems };
}

/**
 * Substitutes every text value of a parsed YAML tree. Returns a new tree and
 * every problem found (with the key path where it was found).
 */
export function substituteTree(
  tree: unknown,
  env: Env,
  isSensitive: (path: Path) => boolean,
): { value: unknown; problems: SubstitutionProblem[] } {
  const problems: SubstitutionProblem[] = [];
  const walk = (node: unknown, path: Path): unknown => {
    if (typeof node === 'string') {
      const result = substituteText(node, env, !isSensitive(path));
      for (const message of result.problems) problems.push({ path, message });
      return result.value;
    }
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...path, index]));
    if (node !== null && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(node)) out[key] = walk(value, [...path, key]);
      return out;
    }
    return node;
  };
  return { value: walk(tree, []), problems };
}
