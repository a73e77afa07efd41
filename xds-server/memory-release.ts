// After a large change has been applied, the memory it took to read, build, encode and push it goes back at
// once, instead of whenever V8 next wants the room: V8 lets its old generation grow to 1.5-4x what was live
// before it collects, and its memory reducer acts only seconds after a full collection and only when the
// process is quiet, so after a 5,000-host load ~20-25 MiB of garbage stayed resident for as long as nothing
// else filled the heap (README, "Memory"). Two full collections back to back, when the heap has grown by at
// least `minGrowthBytes` since the last one, once every connected Envoy has applied the change (or the wait
// for them ended): the first frees the garbage, the second compacts the pages the first left sparse (with
// start-up's garbage collected before serving, no full collection runs during a 5,000-host load, and one
// alone left ~4-5 MiB more old space committed than before: RSS 107-108 instead of 101-105 MiB). At 5,000
// hosts they take ~22-26 + ~28 ms, none of it while Envoy waits for the push. A full collection stops the
// process for as long as it marks the whole heap, so above `maxHeapBytes` in use (hundreds of Envoys
// connected keep far more live) it is left to V8's own incremental collector.
//
// It needs V8's gc() (node --expose-gc, one of the production flags: xds-server/node-flags.ts); without it
// (tests run the sources under tsx) it does nothing.
import v8 from 'node:v8';
import type { SettleTargets } from './cache/snapshot-cache.ts';
import type { ResourceKind } from '../snapshots/type-urls.ts';

export interface MemoryReleaseOptions {
  /** Runs a full collection; default: the global gc() of node --expose-gc, if there is one. */
  collect?: () => void;
  /** The V8 heap in use, in bytes; default: v8.getHeapStatistics().used_heap_size. */
  heapUsed?: () => number;
  /** Collect only when the heap grew by at least this much since the last collection (default 16 MiB). */
  minGrowthBytes?: number;
  /** Never collect with more than this in use (default 128 MiB): the pause would be too long. */
  maxHeapBytes?: number;
}

export const DEFAULT_MIN_GROWTH_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_HEAP_BYTES = 128 * 1024 * 1024;

export class MemoryRelease {
  private readonly collect: (() => void) | undefined;
  private readonly heapUsed: () => number;
  private readonly minGrowthBytes: number;
  private readonly maxHeapBytes: number;
  /** The heap in use after the last collection (or the least seen since). */
  private baseline: number;
  /** Collections run, for tests and logs. */
  collections = 0;

  constructor(options: MemoryReleaseOptions = {}) {
    this.collect = options.collect ?? exposedGc();
    this.heapUsed = options.heapUsed ?? (() => v8.getHeapStatistics().used_heap_size);
    this.minGrowthBytes = options.minGrowthBytes ?? DEFAULT_MIN_GROWTH_BYTES;
    this.maxHeapBytes = options.maxHeapBytes ?? DEFAULT_MAX_HEAP_BYTES;
    this.baseline = this.heapUsed();
  }

  /** Whether a collection can run at all (node --expose-gc). */
  get enabled(): boolean {
    return this.collect !== undefined;
  }

  /** Whether the heap grew enough since the last collection for one to be worth waiting for (a change's settling). */
  worthCollecting(): boolean {
    if (!this.collect) return false;
    const used = this.heapUsed();
    // V8 collected on its own meanwhile: measure the growth from there.
    if (used < this.baseline) this.baseline = used;
    return used - this.baseline >= this.minGrowthBytes && used <= this.maxHeapBytes;
  }

  /** A large change has been applied: collects if the heap grew enough since the last collection. Says whether it did. */
  changeApplied(): boolean {
    if (!this.collect || !this.worthCollecting()) return false;
    this.collect();
    this.collections += 1;
    this.baseline = this.heapUsed();
    return true;
  }
}

/** How long a large push's garbage waits for every Envoy to apply it before it is collected anyway. */
export const RELEASE_SETTLE_MS = 10_000;

/** What a release after a push waits on: the snapshot cache's settling (every connected Envoy applied it). */
export interface Settling {
  waitUntilSettled(targets: SettleTargets, timeoutMs: number): Promise<unknown>;
}

/**
 * Collects a push's garbage once every Envoy has applied the push (or `settleMs` passed), if the heap grew enough
 * for that (MemoryRelease.worthCollecting). One wait at a time: waiting costs a check per ACK, and a push made
 * meanwhile leaves its garbage to the same collection (an Envoy on a later version has settled the earlier one).
 */
export class ReleaseAfterPush {
  private waiting = false;

  constructor(
    private readonly memory: MemoryRelease,
    private readonly cache: Settling,
    private readonly settleMs: number,
  ) {}

  /** A push went out (its snapshots, by group). Resolves once its collection ran, or at once if none is due. */
  async pushed(groups: ReadonlyMap<string, { readonly versions: Readonly<Record<ResourceKind, string>> }>): Promise<void> {
    if (this.waiting || !this.memory.worthCollecting()) return;
    this.waiting = true;
    try {
      await this.cache.waitUntilSettled(new Map([...groups].map(([group, s]) => [group, { ...s.versions }])), this.settleMs);
      this.memory.changeApplied();
    } finally {
      this.waiting = false;
    }
  }
}

/**
 * A full collection (the same two back to back as after a large reload) of what starting up left behind (module loading, the protobuf reflection and the codec's
 * warm-up, the first build): in a process serving no host yet ~15 MiB of its ~33 MiB heap. Left there, it is
 * carried into the first large push, whose growth then sets off V8's first full collection while Envoy takes in
 * the new clusters (at 5,000 hosts ~40-60 ms of the main thread between the route table and Envoy's EDS
 * request, and more on V8's marking threads). Run before the xDS port is bound, so no Envoy waits on it.
 * Returns the ms it took, or undefined without gc() (tests under tsx).
 */
export function collectStartupGarbage(collect: (() => void) | undefined = exposedGc()): number | undefined {
  if (!collect) return undefined;
  const start = performance.now();
  collect();
  return performance.now() - start;
}

function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  if (typeof gc !== 'function') return undefined;
  // The second compacts what the first left sparse (see the top of this file).
  return () => {
    (gc as () => void)();
    (gc as () => void)();
  };
}
