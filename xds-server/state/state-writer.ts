// Writes the state file one write at a time, the newest state winning: states queued while a write runs are
// written once, after it, as the last of them (an older state never lands after a newer one). A caller may
// hold its write back until a moment of its choosing: a config reload holds it until its push is applied,
// because at 5,000 hosts serialising and writing the state (~20-40 ms of CPU and a ~1 MB string, in a fresh
// process) competed with Envoy for the machine's CPUs while Envoy was taking in the new clusters.
//
// What "held" costs nothing in: every queue() resolves only once its state (or a newer one) is on disk, so a
// caller that waits for durability before acting (a scale-down stops replicas only after its mark is written)
// still does; only when the write starts moves. A write that someone wants now is never kept behind a held
// one: an unheld queue(), release() or flush() starts every write waiting, and a hold ends by itself after
// maxHoldMs whatever it waits for.

export class StateWriter<S> {
  private pending: Pending<S> | undefined;
  private writing: Promise<void> | undefined;

  constructor(
    private readonly write: (state: S) => Promise<void>,
    private readonly maxHoldMs: number = DEFAULT_MAX_HOLD_MS,
  ) {}

  /**
   * Resolves once `state()` (or a newer state's) write has landed; rejects if that write failed. The state is
   * made when its write starts (only the newest queued one is ever made). `holdUntil`: the write does not start
   * before that promise settles (nor later than maxHoldMs), unless an unheld write or a flush comes first.
   */
  queue(state: () => S, holdUntil?: Promise<unknown>): Promise<void> {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const waiter = { resolve, reject };
    let p = this.pending;
    if (p === undefined) {
      p = { state, waiters: [waiter], holds: 0, timer: undefined };
      this.pending = p;
    } else {
      p.state = state;
      p.waiters.push(waiter);
    }
    if (holdUntil === undefined) this.unhold(p);
    else if (p.holds >= 0) {
      // A state merged into a write already unheld stays unheld (holds < 0); otherwise one more hold to end.
      p.holds += 1;
      const target = p;
      const end = (): void => {
        if (target.holds > 0 && --target.holds === 0) this.unhold(target);
      };
      holdUntil.then(end, end);
      target.timer ??= setTimeout(() => this.unhold(target), this.maxHoldMs);
      target.timer.unref?.();
    }
    this.pump();
    return done;
  }

  /** Starts a held write now (a change that must be durable soon; it still waits for a write in flight). */
  release(): void {
    if (this.pending !== undefined) this.unhold(this.pending);
    this.pump();
  }

  /** Every queued write started now, held or not; resolves once all have landed or failed (shutdown). */
  async flush(): Promise<void> {
    while (this.pending !== undefined || this.writing !== undefined) {
      this.release();
      await this.writing?.catch(() => {});
    }
  }

  /** Whether a queued write waits for its hold to end (for tests and logs). */
  get held(): boolean {
    return this.pending !== undefined && this.pending.holds > 0;
  }

  private unhold(p: Pending<S>): void {
    p.holds = -1;
    clearTimeout(p.timer);
    p.timer = undefined;
    if (p === this.pending) this.pump();
  }

  private pump(): void {
    const p = this.pending;
    if (this.writing !== undefined || p === undefined || p.holds > 0) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    const settle = (fn: (w: Waiter) => void): void => {
      for (const w of p.waiters) fn(w);
    };
    let written: Promise<void>;
    try {
      written = this.write(p.state());
    } catch (err) {
      written = Promise.reject(err);
    }
    this.writing = written.then(
      () => settle((w) => w.resolve()),
      (err: unknown) => settle((w) => w.reject(err)),
    );
    void this.writing.finally(() => {
      this.writing = undefined;
      this.pump();
    });
  }
}

/** A held write starts at the latest this long after it was queued (a push that never settles, say). */
export const DEFAULT_MAX_HOLD_MS = 10_000;

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Pending<S> {
  state: () => S;
  waiters: Waiter[];
  /** Holds still to end before the write may start; -1 once unheld (nothing may hold it again). */
  holds: number;
  timer: NodeJS.Timeout | undefined;
}
