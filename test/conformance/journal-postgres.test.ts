/** The journal conformance suite against the real PostgreSQL (127.0.0.1:5432). */
import { journalSuite } from './journal-suite.js';
import { postgresJournalHarness } from './journal-drivers.js';

journalSuite(postgresJournalHarness, 'postgres');
