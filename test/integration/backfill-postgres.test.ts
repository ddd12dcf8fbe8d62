import { postgresDriver } from '../conformance/drivers.js';
import { backfillSuite } from './backfill-suite.js';

backfillSuite('postgres', postgresDriver);
