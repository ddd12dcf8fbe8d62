/**
 * The sink conformance suite: the same cases against every destination type, through
 * the Sink interface the dispatcher uses (src/delivery/sink.ts), each sink opened by
 * openSink from a parsed `destinations:` entry, against its real endpoint. What a case
 * asserts comes from the results the sink returned and from what the endpoint
 * accepted, read back by the harness.
 *
 *   sinkSuite(webhookSinkHarness, 'webhook')   // test/conformance/sink-webhook.test.ts
 *
 * A new transport (a broker) passes the same suite with a harness of its own.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Sink, SinkMessage, SinkResult } from '../../src/delivery/sink.js';
import { parseConfig } from '../../src/config/load.js';
import { openSink } from '../../src/delivery/sinks.js';
import { waitUntil } from '../support/wait.js';

/** What the endpoint does with the next messages. */
export type EndpointBehaviour = 'ok' | 'refuse' | 'unavailable' | 'hang';

export interface AcceptedMessage {
  /** The event ids the message carried (several for a batch). */
  readonly eventIds: readonly string[];
  readonly body: string;
}

export interface SinkHarness {
  /** How the transport takes a refusal: a dead letter at once (a webhook's 4xx) or a retry (a broker's nack). */
  readonly refusedIs: 'dead' | 'retry';
  /** Whether the destination type takes `batch:` (several events in one message). */
  readonly batches: boolean;
  /** A sink of this type on the endpoint, opened as the daemon opens it (openSink). */
  open(options: { readonly timeoutMs: number; readonly batched?: boolean }): Sink;
  /** The credential the sink's config carries, which nothing it says may contain. */
  readonly secret: string;
  /** Messages the endpoint accepted, in arrival order. */
  accepted(): Promise<AcceptedMessage[]>;
  /** Resolves once the endpoint behaves so (a broker's behaviour is a change on the server). */
  behave(b: EndpointBehaviour): void | Promise<void>;
  /** Takes the endpoint away (connections lost, new ones refused), then gives it back where it was. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Forgets what was accepted and behaves 'ok'. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A sink as the daemon opens it (openSink), from one parsed `destinations:` entry named
 * "conformance": `keys` are its lines (`type: nats`, `url: "…"`), then the case's timeout
 * and, for a batched sink, a batch.
 */
export function openConformanceSink(keys: readonly string[], o: { readonly timeoutMs: number; readonly batched?: boolean }): Sink {
  const lines = [...keys, `timeout: ${o.timeoutMs / 1000}`, ...(o.batched === true ? ['batch: { max_events: 100, max_wait: 0.01 }'] : [])];
  const yaml = `database:\n  url: "postgres://u@127.0.0.1/db"\n  table: t\ndestinations:\n  - name: conformance\n${lines.map((l) => `    ${l}\n`).join('')}`;
  return openSink(parseConfig(yaml).config.destinations[0]!, 'destinations[0]', 'test');
}

let seq = 0;
/** A message as the dispatcher hands it over: formatted, with its event id. */
function message(): SinkMessage {
  const eventId = `evt_conformance_${++seq}`;
  return {
    eventId,
    body: `{"id":"${eventId}","n":${seq},"big":9007199254740993}`,
    contentType: 'application/json',
    headers: {},
    schema: 'public',
    table: 'conformance',
    operation: 'insert',
  };
}

export function sinkSuite(makeHarness: () => Promise<SinkHarness>, label: string): void {
  let h: SinkHarness;
  const sinks: Sink[] = [];
  const open = (o: { timeoutMs: number; batched?: boolean }) => {
    const s = h.open(o);
    sinks.push(s);
    return s;
  };
  beforeAll(async () => {
    h = await makeHarness();
  });
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((s) => s.close()));
    await h.start();
    await h.reset();
  });
  afterAll(async () => {
    await h?.close();
  });

  const kinds = (results: readonly SinkResult[]) => results.map((r) => r.kind);

  describe(`sink conformance: ${label}`, () => {
    it('delivers each message as it was given, with its event id, one result per message', async () => {
      const sink = open({ timeoutMs: 5_000 });
      const messages = [message(), message(), message()];
      for (const m of messages) {
        const [r] = await sink.send([m]);
        expect(r!.kind).toBe('success');
        expect(r!.durationMs).toBeGreaterThanOrEqual(0);
      }
      const got = await h.accepted();
      expect(got.map((a) => a.eventIds)).toEqual(messages.map((m) => [m.eventId]));
      // The bytes as given: no number passes through a float, nothing is re-serialised.
      expect(got.map((a) => a.body)).toEqual(messages.map((m) => m.body));
    });

    it('a batch gets one result per message, in order, and every event id reaches the endpoint', async () => {
      if (!h.batches) return;
      const sink = open({ timeoutMs: 5_000, batched: true });
      const messages = [message(), message(), message()];
      expect(kinds(await sink.send(messages))).toEqual(['success', 'success', 'success']);
      expect((await h.accepted()).flatMap((a) => a.eventIds)).toEqual(messages.map((m) => m.eventId));
    });

    it('an endpoint that is unavailable: a retry, counted as the endpoint failing', async () => {
      const sink = open({ timeoutMs: 5_000 });
      await h.behave('unavailable');
      const [r] = await sink.send([message()]);
      expect(r).toMatchObject({ kind: 'retry', endpointFailure: true });
      expect(await h.accepted()).toEqual([]);
    });

    it('no acknowledgement within the timeout: a retry, counted as the endpoint failing', async () => {
      const sink = open({ timeoutMs: 300 });
      await h.behave('hang');
      const [r] = await sink.send([message()]);
      expect(r).toMatchObject({ kind: 'retry', endpointFailure: true });
      expect(r!.kind === 'retry' ? r!.error : '').not.toBe('');
    });

    it('a refused message is never a success: a dead letter or a retry, as the transport says', async () => {
      const sink = open({ timeoutMs: 5_000 });
      await h.behave('refuse');
      const [r] = await sink.send([message()]);
      expect(r!.kind).toBe(h.refusedIs);
    });

    it('the connection lost: retries while the endpoint is gone, delivered by the same sink once it is back', async () => {
      const sink = open({ timeoutMs: 1_000 });
      expect(kinds(await sink.send([message()]))).toEqual(['success']);
      await h.stop();
      const [lost] = await sink.send([message()]);
      expect(lost).toMatchObject({ kind: 'retry', endpointFailure: true });
      await h.start();
      const m = message();
      await waitUntil(async () => (await sink.send([m]))[0]!.kind === 'success', 15_000, 'a send to succeed after the endpoint came back');
      expect((await h.accepted()).some((a) => a.eventIds.includes(m.eventId))).toBe(true);
    });

    it('cancelled (the daemon stops): a retry, never a success or a dead letter', async () => {
      const sink = open({ timeoutMs: 10_000 });
      await h.behave('hang');
      const stop = new AbortController();
      const pending = sink.send([message()], stop.signal);
      setTimeout(() => stop.abort(), 100);
      const [r] = await pending;
      expect(r!.kind).toBe('retry');
    });

    it('check: ok while the endpoint is there, not ok once it is gone; no credential in what it says', async () => {
      const sink = open({ timeoutMs: 1_000 });
      const up = await sink.check();
      expect(up.ok).toBe(true);
      await h.stop();
      const down = await sink.check();
      expect(down.ok).toBe(false);
      expect(down.fix ?? '').not.toBe('');
      for (const said of [up, down, { description: sink.description }]) expect(JSON.stringify(said)).not.toContain(h.secret);
      // A check never sends an event.
      await h.start();
      expect(await h.accepted()).toEqual([]);
    });
  });
}
