/** The shipped example configs load without warnings, with the documented defaults filled in. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';

describe('example configs', () => {
  it.each([
    ['examples/config.yaml', 'postgres', 5432],
    ['examples/config.mysql.yaml', 'mysql', 3306],
  ])('%s loads cleanly', (file, type, port) => {
    const { config, warnings } = loadConfig(file, {});
    expect(warnings).toEqual([]);
    expect(config.database).toMatchObject({ type, port, host: '127.0.0.1', tables: [{ name: 'users' }] });
    expect(config.webhook).toMatchObject({ url: 'http://127.0.0.1:8080/webhook', timeout: 30, retry_count: 3 });
  });
});
