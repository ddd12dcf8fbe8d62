/** The capture-source conformance suite against MariaDB with log capture ("mysql × log"), on a private server with a ROW binary log. */
import { mysqlLogDriver } from './drivers.js';
import { conformanceSuite } from './suite.js';

conformanceSuite(mysqlLogDriver, 'mysql-log');
