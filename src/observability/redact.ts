/**
 * Removing credentials from text before it reaches a log line or an error message.
 *
 * Config error messages and log output both go through these helpers, so a
 * password in a connection URL or a webhook signing secret never ends up in a
 * terminal, a log file or a bug report.
 */

/** What replaces the user information (`user:password@`) of a URL. */
const USERINFO_MASK = '***';

// scheme "://" then the authority. The user information ends at the last "@"
// before the first "/", "?" or "#": that is how URL parsers read it, and it keeps
// a password with an unescaped "@" hidden.
const SCHEME_AUTHORITY = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)/;

/**
 * Replaces the `user:password@` part of a URL with `***@`.
 *
 * Never throws. A string that is not a valid URL is handled too: everything up
 * to the last `@` of its first word is hidden when it looks like user
 * information (`user:pw@host`, `postgres://u:p/w@h`), since a password that
 * breaks URL syntax is exactly the one a parser cannot locate.
 */
export function redactUrl(url: string): string {
  if (typeof url !== 'string' || !url.includes('@')) return url;

  const match = SCHEME_AUTHORITY.exec(url);
  if (match) {
    const scheme = match[1] ?? '';
    const authority = match[2] ?? '';
    const at = authority.lastIndexOf('@');
    if (at >= 0) return `${scheme}${USERINFO_MASK}${url.slice(scheme.length + at)}`;
    if (isParsableUrl(url)) return url;
    // Unparsable and the "@" is beyond a "/", "?" or "#": most likely a
    // password containing one of those characters. Hide up to the last "@"
    // of the first word.
    return scheme + hideUpToLastAt(url.slice(scheme.length));
  }

  // No scheme: `user:password@host:5432/db`.
  const firstWord = /^\S*/.exec(url)?.[0] ?? '';
  const at = firstWord.lastIndexOf('@');
  if (at > 0 && firstWord.slice(0, at).includes(':')) {
    return USERINFO_MASK + url.slice(at);
  }
  return url;
}

function hideUpToLastAt(rest: string): string {
  const firstWord = /^\S*/.exec(rest)?.[0] ?? '';
  const at = firstWord.lastIndexOf('@');
  return at >= 0 ? USERINFO_MASK + rest.slice(at) : rest;
}

function isParsableUrl(text: string): boolean {
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}

// A URL with user information anywhere in free text. The user information stops
// at white space, quotes and URL delimiters, and is taken up to the last "@" of
// that run (greedy), so `https://u:p@ss@host` is hidden completely.
const URL_CREDENTIALS_IN_TEXT = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/?#"'<>@]*(?:@[^\s/?#"'<>@]*)*@/g;

// Standard Webhooks secrets: "whsec_" followed by base64.
const WEBHOOK_SECRET_IN_TEXT = /whsec_[A-Za-z0-9+/=_-]*/g;

/**
 * Hides credentials inside free text (a log line, an error message): URL user
 * information becomes `***@` and `whsec_…` secrets become `whsec_[redacted]`.
 */
export function redactText(text: string): string {
  let out = text;
  if (out.includes('@')) out = out.replace(URL_CREDENTIALS_IN_TEXT, `$1${USERINFO_MASK}@`);
  if (out.includes('whsec_')) out = out.replace(WEBHOOK_SECRET_IN_TEXT, 'whsec_[redacted]');
  return out;
}

/** Literal secrets shorter than this are not searched for: they would mask ordinary words. */
const MIN_LITERAL_SECRET_LENGTH = 6;

/**
 * `redactText`, then every literal occurrence of `secrets` replaced by `***`. For
 * text another party wrote, such as a receiver's error answer: it may repeat a
 * credential the daemon sent it (the Authorization header), in a form no pattern
 * recognises.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = redactText(text);
  for (const secret of secrets) {
    if (secret.length >= MIN_LITERAL_SECRET_LENGTH && out.includes(secret)) out = out.split(secret).join(USERINFO_MASK);
  }
  return out;
}
