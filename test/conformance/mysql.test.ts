/** The capture-source conformance suite against the real MariaDB (127.0.0.1:3306), in MySQL mode. */
import { mysqlDriver } from './drivers.js';
import { conformanceSuite } from './suite.js';

conformanceSuite(mysqlDriver, 'mysql');
