/** The backfill's pure parts: pacing (a simulated clock), progress figures, and MySQL's keyset parameters. */
import { describe, expect, it } from 'vitest';
import { Pacer, STEPS_PER_SECOND, formatDuration, progressLine, progressOf, runRate } from '../../src/capture/backfill/pacing.js';
import { keyCodec, keysetParams } from '../../src/capture/mysql/queries.js';
import type { MySqlColumn } from '../../src/capture/mysql/triggers.js';

/** Runs a paced backfill on a simulated clock for `seconds`; each batch takes `batchMs`. Returns the rows read. */
function simulate(rate: number | undefined, batchSize: number, seconds: number, batchMs = 1): { rows: number; batches: number; slice: number } {
  let now = 0;
  const pacer = new Pacer(rate, batchSize, now);
  let rows = 0;
  let batches = 0;
  while (now < seconds * 1000) {
    now += pacer.waitMs(now);
    if (now >= seconds * 1000) break;
    now += batchMs;
    rows += pacer.slice;
    batches++;
    pacer.spend(pacer.slice, now);
  }
  return { rows, batches, slice: pacer.slice };
}

describe('Pacer', () => {
  it('never reads more than the rate allows, over any run, and comes close to it', () => {
    for (const rate of [1, 7, 100, 1_000, 12_345]) {
      for (const seconds of [1, 3.5, 20]) {
        const { rows, slice } = simulate(rate, 500, seconds);
        // The first slice goes at once; after that, no faster than the rate.
        expect(rows).toBeLessThanOrEqual(Math.ceil(rate * seconds) + slice);
        expect(rows).toBeGreaterThanOrEqual(Math.floor(rate * seconds * 0.95) - slice);
      }
    }
  });

  it('spends a rate in small slices: a live change waits behind one slice at most', () => {
    expect(new Pacer(1_000, 500, 0).slice).toBe(1_000 / STEPS_PER_SECOND);
    expect(new Pacer(5, 500, 0).slice).toBe(1);
    // Never more than a batch.
    expect(new Pacer(1_000_000, 500, 0).slice).toBe(500);
    // No rate: whole batches, no wait.
    const free = new Pacer(undefined, 500, 0);
    expect(free.slice).toBe(500);
    free.spend(500, 0);
    expect(free.waitMs(0)).toBe(0);
  });

  it('batches smaller than a slice (the queues have room for few) still reach the rate', () => {
    let now = 0;
    const pacer = new Pacer(2_000, 500, now);
    let rows = 0;
    while (now < 10_000) {
      now += pacer.waitMs(now, 20) + 1;
      rows += 20;
      pacer.spend(20, now);
    }
    expect(rows).toBeGreaterThanOrEqual(19_000);
    expect(rows).toBeLessThanOrEqual(20_000 + pacer.slice);
  });

  it('saves up no burst while paused', () => {
    const pacer = new Pacer(100, 500, 0);
    pacer.spend(pacer.slice, 0);
    // An hour later (the backlog gate held it back): one slice, not an hour of rows.
    expect(pacer.waitMs(3_600_000)).toBe(0);
    pacer.spend(pacer.slice, 3_600_000);
    expect(pacer.waitMs(3_600_000)).toBeGreaterThan(0);
  });

  it('a batch that read fewer rows than asked leaves the difference for the next', () => {
    const pacer = new Pacer(100, 500, 0);
    pacer.spend(1, 0);
    expect(pacer.waitMs(0)).toBe(10);
  });
});

describe('progress', () => {
  it('figures: fraction, a total raised to what was done, the time left', () => {
    expect(progressOf(50, 100, 10)).toEqual({ rowsDone: 50, rowsTotal: 100, ratePerSecond: 10, etaSeconds: 5, fraction: 0.5 });
    // The estimate was short: the total follows what was done, the end is not known yet.
    expect(progressOf(120, 100, 10)).toMatchObject({ rowsTotal: 120, fraction: 1, etaSeconds: 0 });
    expect(progressOf(10, null, 10)).toMatchObject({ rowsTotal: null, fraction: null, etaSeconds: null });
    expect(progressOf(10, 100, 0).etaSeconds).toBeNull();
    expect(progressOf(7, 100, 3, true)).toMatchObject({ rowsTotal: 7, fraction: 1 });
    expect(progressOf(0, 0, 0)).toMatchObject({ fraction: 1, etaSeconds: 0 });
  });

  it('one line, with a bar on a terminal', () => {
    expect(progressLine(progressOf(45_000, 100_000, 1_200), { bar: 20 })).toBe('[#########...........]   45%  45,000/100,000 rows  1,200 rows/s  ETA 46s');
    expect(progressLine(progressOf(45_000, 100_000, 1_200))).toBe(' 45%  45,000/100,000 rows  1,200 rows/s  ETA 46s');
    expect(progressLine(progressOf(10, null, 0), { bar: 20 })).toBe('10 rows  0 rows/s');
    expect(progressLine(progressOf(10, 20, 0), { paused: 'more than 1000 events queued for delivery' })).toBe(' 50%  10/20 rows  0 rows/s  paused: more than 1000 events queued for delivery');
  });

  it('durations and the rate of a run', () => {
    expect(formatDuration(42)).toBe('42s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(3_720)).toBe('1h02m');
    expect(runRate(1_500, 500, new Date(0), new Date(10_000))).toBe(100);
    expect(runRate(1_500, 500, new Date(0), new Date(500))).toBe(0);
  });
});

describe('MySQL keyset', () => {
  const col = (dataType: string, columnType = dataType): MySqlColumn => ({ name: 'k', dataType, columnType, charset: null, datetimePrecision: null, json: false });

  it('parameters: after (a, b) is a > ?, or a = ? and b > ?; up to adds the equal key', () => {
    expect(keysetParams(['1'], '>')).toEqual(['1']);
    expect(keysetParams(['1', 'x'], '>')).toEqual(['1', '1', 'x']);
    expect(keysetParams(['1', 'x'], '<=')).toEqual(['1', '1', 'x', '1', 'x']);
  });

  it('key values travel as exact text and are compared as their own type', () => {
    // A string compared with an integer column is a double: 2^53 + 1 would be lost.
    expect(keyCodec(col('bigint', 'bigint(20)')).bind).toBe('CAST(? AS SIGNED)');
    expect(keyCodec(col('bigint', 'bigint(20) unsigned')).bind).toBe('CAST(? AS UNSIGNED)');
    expect(keyCodec(col('decimal', 'decimal(12,3)')).bind).toBe('CAST(? AS DECIMAL(12,3))');
    expect(keyCodec(col('varbinary', 'varbinary(16)'))).toMatchObject({ bind: 'UNHEX(?)' });
    expect(keyCodec(col('varbinary', 'varbinary(16)')).read('r')).toBe('HEX(r.`k`)');
    expect(keyCodec(col('enum', "enum('a','b')")).read('r')).toBe('CAST(r.`k` + 0 AS CHAR)');
    expect(keyCodec(col('varchar', 'varchar(20)')).bind).toBe('?');
  });
});
