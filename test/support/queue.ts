/**
 * One destination's queue of a journal, for tests at the journal's level: `claim`
 * first moves what the inbox holds into the queues (as the daemon's route loop
 * does), then claims from this destination's queue. Each move takes the route locks
 * and gives them up again, so the many queues a test opens on one journal (instances)
 * all route; the daemon's router keeps them.
 */
import type { SourceJournal } from '../../src/capture/source.js';
import type { Operation } from '../../src/config/types.js';
import type { Completion, Journal, JournalEvent, Router } from '../../src/journal/types.js';

const ALL: readonly Operation[] = ['INSERT', 'UPDATE', 'DELETE'];

export interface TestQueue extends Journal {
  readonly journal: SourceJournal;
  /** Moves everything the inbox holds now; returns how many changes moved. */
  route(): Promise<number>;
  close(): Promise<void>;
}

const open = new Set<TestQueue>();

export function testQueue(
  journal: SourceJournal,
  tables: ReadonlyArray<{ readonly schema: string; readonly name: string }>,
  destinations: readonly string[] = ['default'],
): TestQueue {
  const destination = destinations[0]!;
  const routes = destinations.flatMap((d) => tables.map((t) => ({ destination: d, schema: t.schema, table: t.name, operations: ALL })));
  const queue = journal.destination(destination);
  let router: Router | undefined;
  const route = async (): Promise<number> => {
    router = journal.router(routes);
    try {
      let moved = 0;
      for (;;) {
        const r = await router.route(256);
        moved += r.moved;
        if (r.moved < 256) return moved;
      }
    } finally {
      await router.close();
      router = undefined;
    }
  };
  const q: TestQueue = {
    destination,
    journal,
    route,
    async claim(limit: number): Promise<JournalEvent[]> {
      await route();
      return queue.claim(limit);
    },
    complete: (batch: readonly Completion[]) => queue.complete(batch),
    retryNow: () => queue.retryNow(),
    ...(queue.touchLastDelivery ? { touchLastDelivery: (s: string, t: string) => queue.touchLastDelivery!(s, t) } : {}),
    async close() {
      open.delete(q);
      await router?.close();
    },
  };
  open.add(q);
  return q;
}

/** Closes every queue a test file left open (call in afterAll). */
export async function closeTestQueues(): Promise<void> {
  await Promise.all([...open].map((q) => q.close()));
}
