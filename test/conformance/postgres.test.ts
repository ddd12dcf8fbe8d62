/** The capture-source conformance suite against the real PostgreSQL (127.0.0.1:5432). */
import { postgresDriver } from './drivers.js';
import { conformanceSuite } from './suite.js';

conformanceSuite(postgresDriver, 'postgres');
