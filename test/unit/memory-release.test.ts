// A large change's garbage is collected once it is applied; a small change, or a heap V8 already collected,
// costs no collection; without gc() (node --expose-gc) nothing happens.
import { expect } from 'chai';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { collectStartupGarbage, MemoryRelease, ReleaseAfterPush, type Settling } from '../../xds-server/memory-release.ts';

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

describe('release after a push', () => {
  const versions = { cluster: 'c2', endpoint: 'e2', listener: 'l1', route: 'r1', extensionConfig: 'x1' };
  /** A cache whose settling the test ends by hand; records what each wait was for. */
  function fakeSettling(): Settling & { waits: { targets: unknown; timeoutMs: number }[]; settle: () => void } {
    const pending: (() => void)[] = [];
    return {
      waits: [],
      waitUntilSettled(targets, timeoutMs) {
        this.waits.push({ targets, timeoutMs });
        return new Promise<void>((resolve) => pending.push(resolve));
      },
      settle: () => pending.splice(0).forEach((resolve) => resolve()),
    };
  }

  it('collects a push that grew the heap once every Envoy applied it, not before', async () => {
    const heap = fakeHeap(30 * MiB);
    const cache = fakeSettling();
    const release = new ReleaseAfterPush(heap.release, cache, 10_000);
    heap.used = 70 * MiB;
    heap.live = 45 * MiB;
    const done = release.pushed(new Map([['default', { versions }], ['gateway-a', { versions: { ...versions, cluster: 'c3' } }]]));
    await Promise.resolve();
    expect(heap.collections, 'nothing collected while Envoys have yet to apply it').to.equal(0);
    expect(cache.waits).to.deep.equal([{ targets: new Map([['default', versions], ['gateway-a', { ...versions, cluster: 'c3' }]]), timeoutMs: 10_000 }]);
    cache.settle();
    await done;
    expect(heap.collections).to.equal(1);
    expect(heap.used).to.equal(45 * MiB);
  });

  it('waits for no Envoy when the heap did not grow enough', async () => {
    const heap = fakeHeap(30 * MiB);
    const cache = fakeSettling();
    heap.used = 40 * MiB;
    await new ReleaseAfterPush(heap.release, cache, 10_000).pushed(new Map([['default', { versions }]]));
    expect(cache.waits).to.have.length(0);
    expect(heap.collections).to.equal(0);
  });

  it('lets a push made while one waits share its collection, then waits again for the next', async () => {
    const heap = fakeHeap(30 * MiB);
    const cache = fakeSettling();
    const release = new ReleaseAfterPush(heap.release, cache, 10_000);
    heap.used = 70 * MiB;
    heap.live = 40 * MiB;
    const first = release.pushed(new Map([['default', { versions }]]));
    heap.used = 90 * MiB;
    await release.pushed(new Map([['default', { versions: { ...versions, cluster: 'c3' } }]]));
    expect(cache.waits, 'one wait at a time').to.have.length(1);
    cache.settle();
    await first;
    expect(heap.collections).to.equal(1);
    heap.used = 80 * MiB;
    const next = release.pushed(new Map([['default', { versions: { ...versions, cluster: 'c4' } }]]));
    expect(cache.waits).to.have.length(2);
    cache.settle();
    await next;
    expect(heap.collections).to.equal(2);
  });
});

describe('start-up garbage', () => {
  it('is collected once, with gc(), and not without', () => {
    let collections = 0;
    expect(collectStartupGarbage(() => void (collections += 1))).to.be.a('number');
    expect(collections).to.equal(1);
    expect(collectStartupGarbage(undefined)).to.equal(undefined);
  });

  it('is collected by a control plane running with gc() (the production flags), before it serves xDS', async function () {
    this.timeout(60_000);
    // A child with --expose-gc (mocha's process has no gc()); its log lines, in order, on stdout.
    const script = `
      import { mkdtemp, writeFile } from 'node:fs/promises';
      import os from 'node:os';
      import path from 'node:path';
      import { startControlPlane } from './xds-server/control-plane.ts';
      import { createLogger } from './xds-server/log.ts';
      const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-startup-gc-'));
      await writeFile(path.join(dir, 'gateway.yaml'), 'listener: { address: 127.0.0.1, port: 10000 }\\nhosts: []\\n');
      const cp = await startControlPlane({ configPath: path.join(dir, 'gateway.yaml'), stateDir: path.join(dir, 'state'), filterWasmPath: '/opt/stz/filter.wasm', xdsSecurity: 'plaintext',
        log: createLogger({ level: 'debug', module: 'control-plane', write: (line) => void process.stdout.write(line + '\\n') }) });
      await cp.close();
    `;
    const { execFile } = await import('node:child_process');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, maxBuffer: 16 * MiB }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const messages = out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg?: string; message?: string }).msg ?? (JSON.parse(l) as { message?: string }).message ?? '');
    const collected = messages.indexOf('start-up garbage collected before serving xDS');
    expect(collected, messages.join('\n')).to.be.greaterThan(-1);
    expect(collected).to.be.lessThan(messages.indexOf('control plane started'));
  });
});
