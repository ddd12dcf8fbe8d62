import { describe, expect, it } from 'vitest';
import { batchPlan } from '../../src/dispatch/batching.js';

describe('batchPlan', () => {
  it('claims a whole small pool at a time, and waits for two claims of it', () => {
    expect(batchPlan(10)).toEqual({ minClaim: 10, claimAhead: 20, outcomesPerWrite: 10 });
    expect(batchPlan(5)).toEqual({ minClaim: 5, claimAhead: 10, outcomesPerWrite: 5 });
  });

  it('a pool of one claims one event at a time and keeps two waiting', () => {
    expect(batchPlan(1)).toEqual({ minClaim: 1, claimAhead: 2, outcomesPerWrite: 1 });
  });

  it('large pools claim a quarter of the pool and keep half of it waiting', () => {
    expect(batchPlan(100)).toEqual({ minClaim: 25, claimAhead: 50, outcomesPerWrite: 25 });
    expect(batchPlan(40)).toEqual({ minClaim: 16, claimAhead: 32, outcomesPerWrite: 16 });
  });

  it('never plans less than one event', () => {
    for (const pool of [0, -3, 0.5]) {
      const plan = batchPlan(pool);
      expect(plan.minClaim).toBeGreaterThanOrEqual(1);
      expect(plan.claimAhead).toBeGreaterThanOrEqual(plan.minClaim);
    }
  });
});
