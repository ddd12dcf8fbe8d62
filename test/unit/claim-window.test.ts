import { describe, expect, it } from 'vitest';
import { CLAIM_FROM_START_EVERY_MS, ClaimCursor, hintBusyRows, MAX_HEADS_PER_CLAIM, nextFloor, type WalkReport } from '../../src/journal/claim-window.js';

describe('nextFloor', () => {
  const report = (r: Partial<WalkReport>): WalkReport => ({ lo: '100', walked: 0, walkMin: null, nextLo: null, ...r });
  it.each([
    ['an empty journal: from the start', report({ lo: null }), '0'],
    ['a full walk stays at its lowest candidate', report({ walked: 10, walkMin: '140', nextLo: null }), '140'],
    ['a short walk moves to the first event past its window', report({ walked: 3, walkMin: '150', nextLo: '900' }), '900'],
    ['a short walk with nothing past its window: from the start', report({ walked: 3, walkMin: '150', nextLo: null }), '0'],
    ['an empty walk over waiting events: on to the next window', report({ walked: 0, nextLo: '356' }), '356'],
  ])('%s', (_, r, floor) => {
    expect(nextFloor(r, 10)).toBe(floor);
  });
});

describe('ClaimCursor', () => {
  it('starts from the lowest id, follows the reports, and starts over at least every CLAIM_FROM_START_EVERY_MS', () => {
    let t = 1_000;
    const c = new ClaimCursor(() => t);
    expect(c.next().floor).toBe('0');
    c.report({ lo: '1', walked: 10, walkMin: '5', nextLo: null }, 10);
    t += 10;
    expect(c.next().floor).toBe('5');
    c.report({ lo: '5', walked: 2, walkMin: '7', nextLo: '300' }, 10);
    t += 10;
    expect(c.next().floor).toBe('300');
    t += CLAIM_FROM_START_EVERY_MS;
    expect(c.next().floor).toBe('0');
  });

  it('after a walk from the start that came back short, resumes where the walk had got to', () => {
    let t = 1_000;
    const c = new ClaimCursor(() => t);
    c.next();
    // Crossing a long run of events that are not due, a window at a time.
    c.report({ lo: '1', walked: 0, walkMin: null, nextLo: '257' }, 10);
    t += 10;
    expect(c.next().floor).toBe('257');
    c.report({ lo: '257', walked: 0, walkMin: null, nextLo: '513' }, 10);
    expect(c.moreAhead).toBe(true);
    t += CLAIM_FROM_START_EVERY_MS;
    // The walk from the start finds nothing due down there (short), and does not send
    // the next walk back to the second window: it resumes at the third.
    expect(c.next().floor).toBe('0');
    c.report({ lo: '1', walked: 0, walkMin: null, nextLo: '257' }, 10);
    expect(c.moreAhead).toBe(true);
    t += 10;
    expect(c.next().floor).toBe('513');
    // A walk from the start that finds a full claim's worth keeps its own floor.
    c.report({ lo: '513', walked: 0, walkMin: null, nextLo: '769' }, 10);
    t += CLAIM_FROM_START_EVERY_MS;
    expect(c.next().floor).toBe('0');
    c.report({ lo: '1', walked: 10, walkMin: '3', nextLo: null }, 10);
    t += 10;
    expect(c.next().floor).toBe('3');
  });

  it('hands each busy row to one claim, at most MAX_HEADS_PER_CLAIM at a time, and takes back those of a failed claim', () => {
    const c = new ClaimCursor();
    for (let i = 0; i < MAX_HEADS_PER_CLAIM + 5; i++) c.hint(String(i));
    c.hint('3'); // twice: looked up once
    const first = c.next().heads;
    expect(first).toHaveLength(MAX_HEADS_PER_CLAIM);
    const second = c.next().heads;
    expect(second).toHaveLength(5);
    expect(new Set([...first, ...second]).size).toBe(MAX_HEADS_PER_CLAIM + 5);
    expect(c.next().heads).toEqual([]);
    c.giveBack(second);
    expect(c.next().heads.sort()).toEqual([...second].sort());
  });

  it('hints only the rows of delivered and dead-lettered events that had more waiting', () => {
    const c = new ClaimCursor();
    hintBusyRows(c, [
      { kind: 'delivered', id: '1', token: 't', rowHash: 'a' },
      { kind: 'delivered', id: '2', token: 't' },
      { kind: 'dead', id: '3', token: 't', error: 'x', rowHash: 'b' },
      // A retry keeps its row's place: the row's next event must wait for it.
      { kind: 'retry', id: '4', token: 't', delayMs: 0, refund: false },
    ]);
    expect(c.next().heads.sort()).toEqual(['a', 'b']);
  });
});
