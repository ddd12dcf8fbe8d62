/** The web console's API and pages on MariaDB (console-suite.ts). */
import { consoleSuite } from './console-suite.js';
import { MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, createMySqlTestDatabase, type MySqlTestDatabase } from '../support/mysql.js';

let db: MySqlTestDatabase;

consoleSuite({
  name: 'MariaDB',
  async setup() {
    db = await createMySqlTestDatabase('console');
  },
  teardown: () => db?.drop(),
  databaseYaml: () => [
    'database:',
    '  type: "mysql"',
    `  host: ${JSON.stringify(MYSQL_HOST)}`,
    `  port: ${MYSQL_PORT}`,
    `  user: ${JSON.stringify(MYSQL_USER)}`,
    `  password: ${JSON.stringify(MYSQL_PASSWORD)}`,
    `  database: ${JSON.stringify(db.name)}`,
  ],
  // The shared server's root has no password (nothing to grep for).
  databaseSecrets: MYSQL_PASSWORD.length >= 6 ? [MYSQL_PASSWORD] : [],
  async exec(sql) {
    await db.exec(sql);
  },
  createOrders: 'CREATE TABLE orders (id BIGINT PRIMARY KEY, note TEXT)',
});
