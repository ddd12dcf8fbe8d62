/**
 * The library: what the CLI calls, for a program that embeds app-db-listener.
 *
 *   import { loadConfig, startDaemon, createLogger } from 'app-db-listener';
 *   const { config } = loadConfig('config.yaml');
 *   const daemon = await startDaemon(config, { logger: createLogger(config.logging).logger });
 *   // ... later
 *   await daemon.stop();
 */
export { startDaemon, type DaemonOptions, type RunningDaemon } from './app.js';
export * from './config/index.js';
export { openAdmin, parseEventRef, type AdminOps, type DeadLetter, type DeadLetterFilter, type TableStatus } from './capture/admin.js';
export { runDoctor, type DoctorOptions, type DoctorCheck, type DoctorReport } from './doctor/index.js';
export { createLogger, type LoggerHandle } from './observability/logger.js';
export { DaemonEventBus, type DaemonEvents } from './observability/events.js';
export { VERSION } from './version.js';
