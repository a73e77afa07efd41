// A large change's garbage is collected once it is applied; a small change, or a heap V8 already collected,
// costs no collection; without gc() (node --expose-gc) nothing happens.
import { expect } from 'chai';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { collectStartupGarbage, MemoryRelease } from '../../xds-server/memory-release.ts';

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
