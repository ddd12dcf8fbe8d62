/** The journal conformance suite against the real MariaDB/MySQL (127.0.0.1:3306). */
import { journalSuite } from './journal-suite.js';
import { mysqlJournalHarness } from './journal-drivers.js';

journalSuite(mysqlJournalHarness, 'mysql');
