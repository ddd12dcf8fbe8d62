/** The web console's API and pages on PostgreSQL (console-suite.ts). */
import { consoleSuite } from './console-suite.js';
import { PG_HOST, PG_PORT, PG_USER, createTestDatabase, type TestDatabase } from '../support/pg.js';

// The server trusts local connections, so the password is never asked for: it is only
// in the config, to prove it never reaches a response.
const DB_PASSWORD = 'DatabasePasswordSecret000';
let db: TestDatabase;

consoleSuite({
  name: 'PostgreSQL',
  async setup() {
    db = await createTestDatabase('console');
  },
  teardown: () => db?.drop(),
  databaseYaml: () => [
    'database:',
    '  type: "postgres"',
    `  url: ${JSON.stringify(`postgres://${PG_USER}:${DB_PASSWORD}@${PG_HOST}:${PG_PORT}/${db.name}`)}`,
  ],
  databaseSecrets: [DB_PASSWORD],
  async exec(sql) {
    await db.query(sql);
  },
  createOrders: 'CREATE TABLE orders (id bigint PRIMARY KEY, note text)',
});
