/** redactSecrets: URL credentials and `whsec_` secrets as redactText does, plus the literal secrets it is given. */
import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../src/observability/redact.js';

const BASIC = 'Basic dXNlcjpzM2NyZXQtcGFzcw==';

describe('redactSecrets', () => {
  it.each([
    ['a receiver echoing the Authorization header', `HTTP 401: bad authorization ${BASIC}`, [BASIC], 'HTTP 401: bad authorization ***'],
    ['only the token of it', 'token dXNlcjpzM2NyZXQtcGFzcw== refused', ['dXNlcjpzM2NyZXQtcGFzcw=='], 'token *** refused'],
    ['URL credentials without a list', 'POST http://user:s3cret-pass@host/hook', [], 'POST http://***@host/hook'],
    ['a password alone, twice', 's3cret-pass and s3cret-pass', ['s3cret-pass'], '*** and ***'],
    ['a webhook secret', 'key whsec_abcdefgh', ['whsec_abcdefgh'], 'key whsec_[redacted]'],
    ['too short to search for', 'the word pass stays', ['pass'], 'the word pass stays'],
    ['nothing to hide', 'HTTP 500 Internal Server Error', ['s3cret-pass'], 'HTTP 500 Internal Server Error'],
  ])('%s', (_what, text, secrets, expected) => {
    expect(redactSecrets(text, secrets)).toBe(expected);
  });
});
