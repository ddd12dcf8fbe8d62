import { describe, expect, it } from 'vitest';
import { EndpointHealth, type EndpointHealthOptions, type HealthTransition } from '../../src/delivery/health.js';

/**
 * Each scenario is a table of steps: set the clock, do one thing, and check
 * what came back and the state after it.
 */
type Step =
  | { at: number; do: 'fail' | 'answer'; spared: boolean; state: 'up' | 'down'; emits?: HealthTransition }
  | { at: number; do: 'success'; state: 'up' | 'down'; emits?: HealthTransition }
  | { at: number; do: 'probe'; granted: boolean; nextProbeAt?: number }
  | { at: number; do: 'probeFailed'; nextProbeAt: number };

function run(steps: Step[], opts: Omit<EndpointHealthOptions, 'now' | 'onTransition'> = {}) {
  let clock = 0;
  const transitions: HealthTransition[] = [];
  const health = new EndpointHealth({ ...opts, now: () => clock, onTransition: (t) => transitions.push(t) });
  steps.forEach((step, i) => {
    clock = step.at;
    const where = `step ${i} (${step.do} at ${step.at})`;
    const before = transitions.length;
    switch (step.do) {
      case 'fail':
      case 'answer':
        expect(health.recordFailure(step.do === 'fail', 'HTTP 503'), where).toBe(step.spared);
        expect(health.state, where).toBe(step.state);
        break;
      case 'success':
        health.recordSuccess();
        expect(health.state, where).toBe(step.state);
        break;
      case 'probe':
        expect(health.beginProbe(), where).toBe(step.granted);
        if (step.nextProbeAt !== undefined) expect(health.nextProbeAt(), where).toBe(step.nextProbeAt);
        break;
      case 'probeFailed':
        health.probeFailed();
        expect(health.nextProbeAt(), where).toBe(step.nextProbeAt);
        break;
    }
    const emitted = transitions.slice(before);
    const expected = 'emits' in step && step.emits ? [step.emits] : [];
    expect(emitted, where).toEqual(expected);
  });
  return { health, transitions };
}

describe('EndpointHealth', () => {
  it('a single failure consumes a retry; a success resets the streak', () => {
    run([
      { at: 0, do: 'fail', spared: false, state: 'up' },
      { at: 10, do: 'success', state: 'up' },
      { at: 20, do: 'fail', spared: false, state: 'up' },
      { at: 30, do: 'success', state: 'up' },
    ]);
  });

  it('two endpoint failures in a row make it suspect: no more retries consumed', () => {
    run([
      { at: 0, do: 'fail', spared: false, state: 'up' },
      { at: 10, do: 'fail', spared: true, state: 'up' },
      { at: 20, do: 'fail', spared: true, state: 'up' },
      { at: 30, do: 'success', state: 'up' },
      { at: 40, do: 'fail', spared: false, state: 'up' },
    ]);
  });

  it('an answer (3xx, or a 4xx that dead-letters) counts as the endpoint being reachable', () => {
    run([
      { at: 0, do: 'fail', spared: false, state: 'up' },
      { at: 10, do: 'fail', spared: true, state: 'up' },
      { at: 20, do: 'answer', spared: false, state: 'up' },
      { at: 30, do: 'fail', spared: false, state: 'up' },
      { at: 40, do: 'answer', spared: false, state: 'up' },
      { at: 50, do: 'answer', spared: false, state: 'up' },
    ]);
  });

  it('opens after 5 endpoint failures, once, and closes on the first success, once', () => {
    run([
      { at: 1000, do: 'fail', spared: false, state: 'up' },
      { at: 1100, do: 'fail', spared: true, state: 'up' },
      { at: 1200, do: 'fail', spared: true, state: 'up' },
      { at: 1300, do: 'fail', spared: true, state: 'up' },
      { at: 1400, do: 'fail', spared: true, state: 'down', emits: { type: 'down', since: 1000, consecutiveFailures: 5, lastError: 'HTTP 503' } },
      { at: 1500, do: 'fail', spared: true, state: 'down' }, // stragglers: no second 'down'
      { at: 1600, do: 'fail', spared: true, state: 'down' },
      { at: 9000, do: 'success', state: 'up', emits: { type: 'up', since: 1000, downForMs: 8000, consecutiveFailures: 7 } },
      { at: 9100, do: 'success', state: 'up' }, // no second 'up'
      { at: 9200, do: 'fail', spared: false, state: 'up' }, // fresh streak
    ]);
  });

  it('an answer while down closes it too', () => {
    run(
      [
        { at: 0, do: 'fail', spared: false, state: 'up' },
        { at: 1, do: 'fail', spared: true, state: 'down', emits: { type: 'down', since: 0, consecutiveFailures: 2, lastError: 'HTTP 503' } },
        { at: 500, do: 'answer', spared: false, state: 'up', emits: { type: 'up', since: 0, downForMs: 500, consecutiveFailures: 2 } },
      ],
      { threshold: 2 },
    );
  });

  it('while down: one probe at a time, 1 s after opening, doubling after each failed probe up to 60 s', () => {
    const opened = 1000;
    run([
      { at: 0, do: 'probe', granted: false }, // up: no probes, just send
      { at: 0, do: 'fail', spared: false, state: 'up' },
      { at: 0, do: 'fail', spared: true, state: 'up' },
      { at: 0, do: 'fail', spared: true, state: 'up' },
      { at: 0, do: 'fail', spared: true, state: 'up' },
      { at: opened, do: 'fail', spared: true, state: 'down', emits: { type: 'down', since: 0, consecutiveFailures: 5, lastError: 'HTTP 503' } },
      { at: 1500, do: 'probe', granted: false, nextProbeAt: 2000 },
      { at: 2000, do: 'probe', granted: true },
      { at: 2001, do: 'probe', granted: false }, // one at a time
      { at: 2100, do: 'probeFailed', nextProbeAt: 4100 }, // 2 s
      { at: 4099, do: 'probe', granted: false },
      { at: 4100, do: 'probe', granted: true },
      { at: 4200, do: 'probeFailed', nextProbeAt: 8200 }, // 4 s
      { at: 8200, do: 'probe', granted: true },
      { at: 8200, do: 'probeFailed', nextProbeAt: 16200 }, // 8 s
      { at: 16200, do: 'probe', granted: true },
      { at: 16200, do: 'probeFailed', nextProbeAt: 32200 }, // 16 s
      { at: 32200, do: 'probe', granted: true },
      { at: 32200, do: 'probeFailed', nextProbeAt: 64200 }, // 32 s
      { at: 64200, do: 'probe', granted: true },
      { at: 64200, do: 'probeFailed', nextProbeAt: 124200 }, // 60 s, not 64
      { at: 124200, do: 'probe', granted: true },
      { at: 124200, do: 'probeFailed', nextProbeAt: 184200 }, // stays at 60 s
      { at: 184200, do: 'probe', granted: true },
      { at: 185000, do: 'success', state: 'up', emits: { type: 'up', since: 0, downForMs: 185000, consecutiveFailures: 5 } },
      { at: 185000, do: 'probe', granted: false }, // up again
    ]);
  });

  it('probe interval starts over after recovery', () => {
    run(
      [
        { at: 0, do: 'fail', spared: false, state: 'up' },
        { at: 0, do: 'fail', spared: true, state: 'down', emits: { type: 'down', since: 0, consecutiveFailures: 2, lastError: 'HTTP 503' } },
        { at: 100, do: 'probe', granted: true },
        { at: 100, do: 'probeFailed', nextProbeAt: 300 },
        { at: 300, do: 'probe', granted: true },
        { at: 300, do: 'success', state: 'up', emits: { type: 'up', since: 0, downForMs: 300, consecutiveFailures: 2 } },
        { at: 400, do: 'fail', spared: false, state: 'up' },
        { at: 400, do: 'fail', spared: true, state: 'down', emits: { type: 'down', since: 400, consecutiveFailures: 2, lastError: 'HTTP 503' } },
        { at: 450, do: 'probe', granted: false, nextProbeAt: 500 }, // back to 100 ms
        { at: 500, do: 'probe', granted: true },
      ],
      { threshold: 2, probeInitialMs: 100, probeMaxMs: 1000 },
    );
  });

  it('a probe whose result is never reported is forgotten after the lease', () => {
    run(
      [
        { at: 0, do: 'fail', spared: false, state: 'up' },
        { at: 0, do: 'fail', spared: true, state: 'down', emits: { type: 'down', since: 0, consecutiveFailures: 2, lastError: 'HTTP 503' } },
        { at: 100, do: 'probe', granted: true, nextProbeAt: 5100 },
        { at: 5099, do: 'probe', granted: false },
        { at: 5100, do: 'probe', granted: true },
      ],
      { threshold: 2, probeInitialMs: 100, probeLeaseMs: 5000 },
    );
  });

  it('nextProbeAt is now while up', () => {
    const { health } = run([{ at: 777, do: 'success', state: 'up' }]);
    expect(health.nextProbeAt()).toBe(777);
  });

  it('record() maps outcomes, and a failed probe reschedules', () => {
    let clock = 0;
    const transitions: HealthTransition[] = [];
    const h = new EndpointHealth({ threshold: 3, now: () => clock, onTransition: (t) => transitions.push(t) });
    const fail = { kind: 'retry', error: 'ECONNREFUSED: x', endpointFailure: true } as const;
    expect(h.record(fail)).toBe(false);
    expect(h.record({ kind: 'dead', status: 410, error: 'HTTP 410' })).toBe(false); // answered: reset
    expect(h.consecutiveFailures).toBe(0);
    expect(h.record(fail)).toBe(false);
    expect(h.record(fail)).toBe(true);
    expect(h.suspect).toBe(true);
    expect(h.record(fail)).toBe(true);
    expect(h.state).toBe('down');
    expect(transitions).toEqual([{ type: 'down', since: 0, consecutiveFailures: 3, lastError: 'ECONNREFUSED: x' }]);
    clock = 1000;
    expect(h.beginProbe()).toBe(true);
    expect(h.record(fail, true)).toBe(true);
    expect(h.nextProbeAt()).toBe(3000);
    clock = 3000;
    expect(h.beginProbe()).toBe(true);
    expect(h.record({ kind: 'retry', status: 302, error: 'HTTP 302', endpointFailure: false }, true)).toBe(false);
    expect(h.state).toBe('up');
    expect(h.record({ kind: 'success', status: 200 })).toBe(false);
    expect(transitions).toHaveLength(2);
  });

  it.each([['threshold', 0], ['suspectAfter', -1], ['probeInitialMs', Number.NaN]])('rejects %s = %s', (name, value) => {
    expect(() => new EndpointHealth({ [name]: value })).toThrow(RangeError);
  });
});
