/** doctor's pure policy: privilege matching, migration versions, secret scrubbing. */
import { describe, expect, it } from 'vitest';
import { granteeOf, hasPrivilege, type Grant } from '../../src/doctor/mysql.js';
import { buildReport, check, scrubReport } from '../../src/doctor/report.js';
import { migrationsCheck } from '../../src/doctor/shared.js';
import { parseConfig } from '../../src/config/index.js';

describe('hasPrivilege (MySQL grants)', () => {
  const grants: Grant[] = [
    { db: null, tbl: null, privilege: 'PROCESS' },
    { db: 'shop', tbl: null, privilege: 'CREATE' },
    { db: 'app\\_%', tbl: null, privilege: 'TRIGGER' },
    { db: 'shop', tbl: 'orders', privilege: 'TRIGGER' },
  ];
  it.each([
    ['PROCESS', 'anything', undefined, true],
    ['CREATE', 'shop', undefined, true],
    ['CREATE', 'shop', 'orders', true],
    ['CREATE', 'shop2', undefined, false],
    ['TRIGGER', 'shop', 'orders', true],
    ['TRIGGER', 'shop', 'customers', false],
    ['TRIGGER', 'app_eu', 'x', true],
    ['TRIGGER', 'appXeu', 'x', false],
    ['SELECT', 'shop', 'orders', false],
  ])('%s on %s.%s: %s', (privilege, db, table, expected) => {
    expect(hasPrivilege(grants, privilege, db, table)).toBe(expected);
  });
  it('splits an account at its last @', () => {
    expect(granteeOf('we@ird@10.0.0.%')).toEqual({ user: 'we@ird', host: '10.0.0.%' });
  });
});

describe('migrationsCheck', () => {
  const shipped = [1, 2, 3].map((version) => ({ version, name: `m${version}`, template: '' }));
  it.each([
    [null, 'problem', 'nothing is installed'],
    [2, 'problem', '1 migration pending'],
    [3, 'ok', 'at version 3, current'],
    [4, 'problem', 'newer than this app-db-listener knows'],
  ] as const)('installed %s: %s', (installed, status, detail) => {
    const c = migrationsCheck(installed, shipped, 'schema s', 'app-db-listener install');
    expect(c.status).toBe(status);
    expect(c.detail).toContain(detail);
  });
});

describe('scrubReport', () => {
  it('hides the configured passwords and secrets wherever they appear', () => {
    const { config } = parseConfig(
      [
        'database:',
        '  type: "postgres"',
        '  url: "postgres://u:Db-Secret-1@db:5432/x"',
        '  table: "t"',
        'webhook:',
        '  url: "https://h:Url-Secret-2@hooks.example.com/x"',
        '  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"',
      ].join('\n'),
      {},
    );
    const leaky = buildReport([
      check('database', 'problem', 'server said: password Db-Secret-1 rejected', 'see https://h:Url-Secret-2@hooks.example.com/x'),
      check('webhook', 'ok', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'),
    ]);
    const text = JSON.stringify(scrubReport(leaky, config));
    expect(text).not.toMatch(/Db-Secret-1|Url-Secret-2|MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/);
  });
});
