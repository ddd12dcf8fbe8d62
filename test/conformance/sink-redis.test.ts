/**
 * The sink conformance suite against the Redis Streams sink and the machine's Redis,
 * reached through a TCP proxy so the suite can take it away without stopping the
 * shared server. The sink logs in as a user of its own (ACL, created here, removed at
 * the end) whose keys are this run's only:
 * - unavailable: the user loses the XADD permission (NOPERM, as a server that cannot
 *   take writes answers: OOM, READONLY, LOADING…);
 * - refuse: the stream key holds a string (WRONGTYPE), a retry as the sink documents;
 * - hang: the proxy holds the connections and forwards nothing.
 */
import { randomBytes } from 'node:crypto';
import { createClient } from '@redis/client';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { openConformanceSink, sinkSuite, type AcceptedMessage, type SinkHarness } from './sink-suite.js';

const REDIS_PORT = 6379;

/** A stream entry's fields, from XRANGE's flat [name, value, …] list. */
function fieldsOf(flat: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

async function redisSinkHarness(): Promise<SinkHarness> {
  const run = randomBytes(6).toString('hex');
  const user = `adl_conformance_${run}`;
  const password = `conformance-${randomBytes(8).toString('hex')}`;
  const prefix = `adl:conformance:${run}:`;
  // The suite's messages are all public.conformance: one stream.
  const key = `${prefix}public.conformance`;
  const admin = createClient({ socket: { host: '127.0.0.1', port: REDIS_PORT }, RESP: 2 });
  admin.on('error', () => undefined);
  await admin.connect();
  const command = <T = unknown>(...args: string[]) => admin.sendCommand<T>(args);
  await command('ACL', 'SETUSER', user, 'reset', 'on', `>${password}`, `~${prefix}*`, '+@all');
  const proxy = await startTcpProxy(REDIS_PORT);

  // A behaviour is a change on the server (commands), applied one after another.
  let applied: Promise<unknown> = Promise.resolve();
  const apply = (...steps: string[][]) => {
    applied = applied.then(async () => {
      for (const step of steps) await command(...step);
    });
    return applied;
  };

  return {
    refusedIs: 'retry',
    batches: true,
    secret: password,
    open: (o) => openConformanceSink(['type: redis', `url: "redis://${user}:${password}@127.0.0.1:${proxy.port}/0"`, `stream: "${prefix}{schema}.{table}"`], o),
    async accepted(): Promise<AcceptedMessage[]> {
      await applied;
      if ((await command<string>('TYPE', key)) !== 'stream') return [];
      const entries = await command<Array<[string, string[]]>>('XRANGE', key, '-', '+');
      return entries.map(([, flat]) => {
        const fields = fieldsOf(flat);
        return { eventIds: [fields.id ?? ''], body: fields.body ?? '' };
      });
    },
    behave(b) {
      if (b === 'hang') return proxy.hang();
      if (b === 'unavailable') return apply(['ACL', 'SETUSER', user, '-xadd']).then(() => undefined);
      if (b === 'refuse') return apply(['DEL', key], ['SET', key, 'not a stream']).then(() => undefined);
      return apply(['ACL', 'SETUSER', user, '+xadd'], ['DEL', key]).then(() => undefined);
    },
    stop: () => proxy.cut(),
    start: () => proxy.restore(),
    async reset() {
      await apply(['ACL', 'SETUSER', user, '+xadd'], ['DEL', key]);
    },
    async close() {
      await proxy.close();
      await command('DEL', key);
      await command('ACL', 'DELUSER', user);
      admin.destroy();
    },
  };
}

sinkSuite(redisSinkHarness, 'redis');
