/** The daemon refuses to serve the console beyond loopback without http.token, before touching anything. */
import { describe, expect, it } from 'vitest';
import { spawnDaemon } from '../support/daemon.js';

describe('console exposure', () => {
  it('refuses to start on 0.0.0.0 without a token, naming http.token and the fixes', async () => {
    // The database is never reached: the check comes first (port 9 refuses connections anyway).
    const p = spawnDaemon({ dbUrl: 'postgres://postgres@127.0.0.1:9/none', webhookUrl: 'http://127.0.0.1:9/hook', tables: ['t'], httpListen: '0.0.0.0:0' });
    const exit = await p.closed;
    expect(exit.code).toBe(1);
    const out = p.output();
    expect(out).toContain('http.token is required');
    expect(out).toContain('0.0.0.0');
    expect(out).toContain('http.console: false');
    expect(out).toContain('127.0.0.1');
    expect(out).not.toContain('ECONNREFUSED');
  });
});
