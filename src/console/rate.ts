/**
 * Deliveries per second over the last 15 minutes, per destination, for the
 * console's live chart: a ring of 10-second buckets fed by `delivery:succeeded`
 * (the events the metrics count), so sampling costs the delivery path one array
 * increment per event and memory stays fixed (90 numbers per destination).
 */
export const BUCKET_MS = 10_000;
export const BUCKETS = 90;

export interface RateSeries {
  readonly bucketSeconds: number;
  /** Start of the oldest bucket, ms since the epoch. */
  readonly startMs: number;
  /** Per destination: events per second in each bucket, oldest first (the last bucket is still filling). */
  readonly destinations: Readonly<Record<string, readonly number[]>>;
  /** Every destination together. */
  readonly total: readonly number[];
}

export class RateRing {
  private readonly counts = new Map<string, number[]>();
  /** Index of the bucket `epochBucket` lives in. */
  private current = -1;

  constructor(
    destinations: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    for (const d of destinations) this.counts.set(d, new Array<number>(BUCKETS).fill(0));
  }

  /** Counts `n` deliveries of `destination` now. */
  note(destination: string, n = 1): void {
    this.advance();
    let ring = this.counts.get(destination);
    if (!ring) this.counts.set(destination, (ring = new Array<number>(BUCKETS).fill(0)));
    ring[this.current % BUCKETS]! += n;
  }

  series(): RateSeries {
    this.advance();
    const destinations: Record<string, number[]> = {};
    const total = new Array<number>(BUCKETS).fill(0);
    for (const [name, ring] of this.counts) {
      const out: number[] = [];
      for (let i = 0; i < BUCKETS; i++) {
        const v = ring[(this.current + 1 + i) % BUCKETS]! / (BUCKET_MS / 1000);
        out.push(v);
        total[i]! += v;
      }
      destinations[name] = out;
    }
    return { bucketSeconds: BUCKET_MS / 1000, startMs: (this.current - BUCKETS + 1) * BUCKET_MS, destinations, total };
  }

  /** Moves to the bucket of now, clearing the buckets skipped since the last event. */
  private advance(): void {
    const bucket = Math.floor(this.now() / BUCKET_MS);
    if (bucket === this.current) return;
    const steps = this.current < 0 ? BUCKETS : Math.min(BUCKETS, bucket - this.current);
    for (const ring of this.counts.values()) {
      for (let s = 1; s <= steps; s++) ring[(bucket - steps + s) % BUCKETS] = 0;
    }
    this.current = bucket;
  }
}
