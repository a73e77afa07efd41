// A small cache for the API server's answers to TokenReviews and SubjectAccessReviews: each answer is kept
// for a short time (so an admin client polling the API does not cost two API calls per request, and a
// revoked token or binding stops working within that time) and the cache never holds more than a fixed
// number of answers (the oldest go first), so a flood of distinct tokens cannot grow memory. Concurrent
// identical questions share one review.
import type { Clock } from '../clock.ts';

export interface ReviewCacheOptions {
  ttlMs: number;
  maxEntries: number;
}

export class ReviewCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private readonly pending = new Map<string, Promise<V>>();

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    private readonly options: ReviewCacheOptions,
  ) {
    if (!(options.ttlMs >= 0) || !(options.maxEntries >= 1)) throw new Error('review cache: ttlMs must be >= 0 and maxEntries >= 1');
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached answer, or `review()`'s (shared with concurrent askers; kept only when it resolves). */
  async get(key: string, review: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit) {
      if (hit.expiresAt > this.clock.now()) return hit.value;
      this.entries.delete(key);
    }
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const p = review().then(
      (value) => {
        this.pending.delete(key);
        this.put(key, value);
        return value;
      },
      (err: unknown) => {
        this.pending.delete(key);
        throw err;
      },
    );
    this.pending.set(key, p);
    return p;
  }

  private put(key: string, value: V): void {
    if (this.options.ttlMs === 0) return;
    this.entries.delete(key);
    while (this.entries.size >= this.options.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(key, { value, expiresAt: this.clock.now() + this.options.ttlMs });
  }
}
