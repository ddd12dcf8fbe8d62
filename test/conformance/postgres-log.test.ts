/** The capture-source conformance suite against PostgreSQL with log capture ("pg × log"), on a private server with wal_level = logical. */
import { postgresLogDriver } from './drivers.js';
import { conformanceSuite } from './suite.js';

conformanceSuite(postgresLogDriver, 'postgres-log');
