// A large change's garbage is collected once it is applied; a small change, or a heap V8 already collected,
// costs no collection; without gc() (node --expose-gc) nothing happens.
import { expect } from 'chai';
import { MemoryRelease } from '../../xds-server/memory-release.ts';

const MiB = 1024 * 1024;

function fakeHeap(start: number): { used: number; collections: number; live: number; release: MemoryRelease } {
  const heap = { used: start, collections: 0, live: start, release: undefined as unknown as MemoryRelease };
  heap.release = new MemoryRelease({
    heapUsed: () => heap.used,
    collect: () => {
      heap.collections += 1;
      heap.used = heap.live;
    },
    minGrowthBytes: 16 * MiB,
  });
  return heap;
}

describe('memory release after a large change', () => {
  it('collects once the heap grew by the threshold since the last collection, and measures from there', () => {
    const heap = fakeHeap(20 * MiB);
    heap.used = 30 * MiB;
    expect(heap.release.worthCollecting()).to.equal(false);
    expect(heap.release.changeApplied()).to.equal(false);
    heap.used = 60 * MiB;
    heap.live = 36 * MiB;
    expect(heap.release.worthCollecting()).to.equal(true);
    expect(heap.release.changeApplied()).to.equal(true);
    expect(heap.collections).to.equal(1);
    expect(heap.used).to.equal(36 * MiB);
    // 10 MiB more since the collection: not worth another.
    heap.used = 46 * MiB;
    expect(heap.release.changeApplied()).to.equal(false);
    expect(heap.collections).to.equal(1);
  });

  it('takes a heap V8 collected on its own as the new starting point', () => {
    const heap = fakeHeap(40 * MiB);
    heap.used = 25 * MiB;
    expect(heap.release.changeApplied()).to.equal(false);
    heap.used = 42 * MiB;
    expect(heap.release.worthCollecting(), '17 MiB above what V8 left').to.equal(true);
  });

  it('leaves a large heap to V8 (a full collection would pause too long)', () => {
    const heap = fakeHeap(100 * MiB);
    heap.used = 200 * MiB;
    expect(heap.release.worthCollecting()).to.equal(false);
    expect(heap.release.changeApplied()).to.equal(false);
    expect(heap.collections).to.equal(0);
    heap.used = 120 * MiB;
    expect(heap.release.worthCollecting(), 'grown by 20 MiB and under 128 MiB').to.equal(true);
  });

  it('does nothing without gc()', () => {
    const release = new MemoryRelease({ heapUsed: () => 500 * MiB });
    const exposed = typeof (globalThis as { gc?: unknown }).gc === 'function';
    expect(release.enabled).to.equal(exposed);
    if (!exposed) {
      expect(release.worthCollecting()).to.equal(false);
      expect(release.changeApplied()).to.equal(false);
    }
  });
});
