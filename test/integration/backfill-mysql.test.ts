import { mysqlDriver } from '../conformance/drivers.js';
import { backfillSuite } from './backfill-suite.js';

backfillSuite('mysql', mysqlDriver);
