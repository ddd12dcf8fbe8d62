/**
 * undici's connection pool, loaded without the rest of undici. The package's entry
 * point also loads fetch, WebSocket, EventSource, the caches and the mocks, and with
 * them much of Node's web-streams machinery: code the daemon never runs (9 MB resident
 * for undici alone; 4 MB less for the MySQL daemon with the rest of it loaded). The
 * webhook sink needs the pool and its dispatch API only, which the pool's own module
 * has. (The doctor's reachability check, webhook-check.ts, loads the whole package
 * when it runs.)
 *
 * The path is undici's file layout, not its documented API: the version is pinned by
 * the lockfile, and the webhook sink's tests run through this module, so a layout
 * change fails them.
 */
import { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';

const require = createRequire(import.meta.url);

/**
 * What the pool's own module has. The request/stream/pipeline helpers are not here: the
 * package's entry point adds them to every dispatcher, so they would work wherever the
 * whole package happens to be loaded too (the doctor, a test) and fail in the daemon.
 */
export type Pool = Pick<UndiciPool, 'dispatch' | 'close' | 'destroy' | 'closed' | 'destroyed'>;

export const Pool = require('undici/lib/dispatcher/pool.js') as new (origin: string, options?: UndiciPool.Options) => Pool;
