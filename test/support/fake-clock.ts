import type { Clock } from '../../xds-server/clock.ts';

/** A clock that moves only when told to; sleepers wake in time order as it passes their deadline. */
export class FakeClock implements Clock {
  private time: number;
  private sleepers: { at: number; wake: () => void }[] = [];

  constructor(start = Date.parse('2026-11-30T12:00:00Z')) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const onAbort = (): void => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        resolve();
      };
      // A long-lived signal sees many sleeps: the listener goes when the sleep ends, however it ends.
      const sleeper = {
        at: this.time + ms,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  get pendingSleepers(): number {
    return this.sleepers.length;
  }

  /** Moves time forward in steps, letting woken code run (and sleep again) before the next step. */
  async advance(ms: number, stepMs = 10): Promise<void> {
    const end = this.time + ms;
    while (this.time < end) {
      this.time = Math.min(end, this.time + stepMs);
      const due = this.sleepers.filter((s) => s.at <= this.time);
      this.sleepers = this.sleepers.filter((s) => s.at > this.time);
      for (const s of due) s.wake();
      await settle();
    }
  }
}

/** Lets every promise chain that is ready to run, run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}
