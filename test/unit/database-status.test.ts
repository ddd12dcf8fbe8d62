import { describe, expect, it } from 'vitest';
import { databaseProblem, readinessProblem, type DatabaseFacts } from '../../src/observability/database-status.js';

const healthy: DatabaseFacts = { phase: 'running', channelUp: true, failing: new Map(), probeError: undefined };

describe('readinessProblem', () => {
  it.each<[string, Partial<DatabaseFacts>, RegExp | undefined]>([
    ['running and connected', {}, undefined],
    ['starting', { phase: 'starting' }, /^starting/],
    ['stopping', { phase: 'stopping' }, /^stopping/],
    ['a failed backlog query', { probeError: 'connect ECONNREFUSED' }, /^database unreachable: connect ECONNREFUSED/],
    ['a failing claim', { failing: new Map([['claim', 'terminating connection']]) }, /^database error during claim: terminating connection/],
    ['the LISTEN connection down', { channelUp: false }, /LISTEN connection .* down/],
  ])('%s', (_name, change, expected) => {
    const problem = readinessProblem({ ...healthy, ...change });
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });

  it('names an unreachable database before a lost LISTEN connection', () => {
    expect(databaseProblem({ channelUp: false, failing: new Map(), probeError: 'timeout' })).toBe('database unreachable: timeout');
  });
});
