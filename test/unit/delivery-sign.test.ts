import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { decodeSecret, sign } from '../../src/delivery/sign.js';

const secretA = 'whsec_' + randomBytes(32).toString('base64');
const secretB = 'whsec_' + randomBytes(24).toString('base64');
const body = '{"id":"evt_1","operation":"INSERT","data":{"big":9007199254740993,"price":12.50,"s":"Zoé <>&\\""}}';

function headers(id: string, ts: number, signature: string): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signature };
}

describe('sign', () => {
  const now = Math.floor(Date.now() / 1000);

  it('produces one v1 signature that standardwebhooks verifies', () => {
    const signature = sign('evt_1', now, body, [secretA]);
    expect(signature).toMatch(/^v1,[A-Za-z0-9+/]+={0,2}$/);
    expect(() => new Webhook(secretA).verify(body, headers('evt_1', now, signature))).not.toThrow();
  });

  it('matches the reference implementation byte for byte', () => {
    const reference = new Webhook(secretA).sign('evt_1', new Date(now * 1000), body);
    expect(sign('evt_1', now, body, [secretA])).toBe(reference);
  });

  it('signs with every secret during rotation; each one verifies alone', () => {
    const signature = sign('evt_2', now, body, [secretA, secretB]);
    expect(signature.split(' ')).toHaveLength(2);
    expect(() => new Webhook(secretA).verify(body, headers('evt_2', now, signature))).not.toThrow();
    expect(() => new Webhook(secretB).verify(body, headers('evt_2', now, signature))).not.toThrow();
  });

  it.each([
    ['another body', { id: 'evt_3', body: body + ' ' }],
    ['another id', { id: 'evt_other', body }],
  ])('fails verification for %s', (_name, tampered) => {
    const signature = sign('evt_3', now, body, [secretA]);
    expect(() => new Webhook(secretA).verify(tampered.body, headers(tampered.id, now, signature))).toThrow();
  });

  it('fails verification with a secret that did not sign', () => {
    const signature = sign('evt_4', now, body, [secretA]);
    expect(() => new Webhook(secretB).verify(body, headers('evt_4', now, signature))).toThrow();
  });

  it('signs an empty list as an empty string', () => {
    expect(sign('evt_5', now, body, [])).toBe('');
  });
});

describe('decodeSecret', () => {
  it('decodes a whsec_ secret', () => {
    expect(decodeSecret('whsec_' + Buffer.from('0123456789abcdef').toString('base64')).toString('utf8')).toBe('0123456789abcdef');
  });

  // One rule for the config and the signer (checkWebhookSecret): the prefix is required.
  it.each([['whsec_'], ['whsec_not base64!'], ['whsec_é'], ['whsec_abcde'], [Buffer.from('0123456789abcdef').toString('base64')]])('rejects %j', (secret) => {
    expect(() => decodeSecret(secret)).toThrow(/secret/);
  });
});
