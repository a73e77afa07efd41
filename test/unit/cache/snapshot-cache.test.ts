import { expect } from 'chai';
import type { Snapshot } from '../../../snapshots/build.ts';
import type { ResourceKind } from '../../../snapshots/type-urls.ts';
import { AdsEvents } from '../../../xds-server/ads/events.ts';
import { SnapshotCache, type Settlement, type SnapshotWatcher } from '../../../xds-server/cache/snapshot-cache.ts';

const snapshot = (v: string): Snapshot =>
  ({
    resources: { cluster: new Map(), endpoint: new Map(), listener: new Map(), route: new Map(), extensionConfig: new Map() },
    versions: { cluster: v, endpoint: v, listener: v, route: v, extensionConfig: v },
  }) as Snapshot;

let nextStream = 1;
class Watcher implements SnapshotWatcher {
  constructor(readonly group = 'default') {}
  readonly label = { nodeId: 'n', streamId: nextStream++, client: 'envoy' as const };
  acked = new Map<ResourceKind, string>();
  rejected = new Map<ResourceKind, string>();
  subscribed = new Set<ResourceKind>(['cluster', 'endpoint', 'listener', 'route', 'extensionConfig']);
  onSnapshot(): void {}
  settlement(kind: ResourceKind, version: string): Settlement {
    if (!this.subscribed.has(kind)) return { state: 'unsubscribed' };
    if (this.acked.get(kind) === version) return { state: 'applied' };
    if (this.rejected.get(kind) === version) return { state: 'rejected', message: 'listener failed' };
    return { state: 'pending' };
  }
}

describe('SnapshotCache.waitUntilSettled', () => {
  it('is satisfied by a client that already ACKed the newer current snapshot (Envoy ACKs only the latest)', async () => {
    const cache = new SnapshotCache(new AdsEvents());
    const w = new Watcher();
    cache.watch(w);
    cache.setSnapshot('default', snapshot('v1'));
    cache.setSnapshot('default', snapshot('v2'));
    w.acked.set('extensionConfig', 'v2');
    expect(await cache.waitUntilSettled('default', { extensionConfig: 'v1' }, 5_000)).to.deep.equal({ settled: true, notApplied: [] });
  });

  it('waits for the ACK, and gives up at the deadline naming who did not answer', async () => {
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    const w = new Watcher();
    cache.watch(w);
    cache.setSnapshot('default', snapshot('v1'));
    const waiting = cache.waitUntilSettled('default', { extensionConfig: 'v1' }, 5_000);
    w.acked.set('extensionConfig', 'v1');
    events.emit('ack', { streamId: 1, nodeId: 'n', kind: 'extensionConfig', version: 'v1' });
    expect((await waiting).settled).to.equal(true);
    const late = await cache.waitUntilSettled('default', { route: 'never' }, 20);
    expect(late).to.deep.equal({ settled: false, notApplied: [{ ...w.label, type: 'route', reason: 'timeout' }] });
  });

  // An Envoy whose listener failed NACKs LDS and drops its RDS and ECDS names: nothing of those to wait for.
  it('does not wait for a client that subscribes to none of the changed types', async () => {
    const cache = new SnapshotCache(new AdsEvents());
    const broken = new Watcher();
    broken.subscribed = new Set(['cluster', 'endpoint', 'listener']);
    const healthy = new Watcher();
    healthy.acked.set('route', 'v1').set('extensionConfig', 'v1');
    cache.watch(broken);
    cache.watch(healthy);
    cache.setSnapshot('default', snapshot('v1'));
    expect(await cache.waitUntilSettled('default', { route: 'v1', extensionConfig: 'v1' }, 60_000)).to.deep.equal({ settled: true, notApplied: [] });
  });

  it('settles at once on a NACK and names the client that rejected the change', async () => {
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    const w = new Watcher();
    cache.watch(w);
    cache.setSnapshot('default', snapshot('v1'));
    const waiting = cache.waitUntilSettled('default', { route: 'v1' }, 60_000);
    w.rejected.set('route', 'v1');
    events.emit('nack', { streamId: w.label.streamId, nodeId: 'n', kind: 'route', rejectedVersion: 'v1', message: 'listener failed' });
    expect(await waiting).to.deep.equal({ settled: true, notApplied: [{ ...w.label, type: 'route', reason: 'rejected', message: 'listener failed' }] });
  });

  it('settles when a client unsubscribes while it is waited for', async () => {
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    const w = new Watcher();
    cache.watch(w);
    cache.setSnapshot('default', snapshot('v1'));
    const waiting = cache.waitUntilSettled('default', { route: 'v1' }, 60_000);
    w.subscribed.delete('route');
    events.emit('request', { streamId: w.label.streamId, nodeId: 'n', kind: 'route', verdict: { kind: 'resubscribe', subscription: { wildcard: false, legacyWildcard: false, names: new Set() } }, names: [], clientVersion: '' });
    expect((await waiting).settled).to.equal(true);
  });

  it('waits across groups, each at its own versions, and not for a group it was not given', async () => {
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    const a = new Watcher('gateway/ns/a');
    const b = new Watcher('gateway/ns/b');
    const other = new Watcher('gateway/ns/other');
    for (const w of [a, b, other]) cache.watch(w);
    cache.setSnapshot('gateway/ns/a', snapshot('a1'));
    cache.setSnapshot('gateway/ns/b', snapshot('b1'));
    cache.setSnapshot('gateway/ns/other', snapshot('o1'));
    const waiting = cache.waitUntilSettled(new Map([['gateway/ns/a', { route: 'a1' }], ['gateway/ns/b', { route: 'b1' }]]), 60_000);
    a.acked.set('route', 'a1');
    events.emit('ack', { streamId: 1, nodeId: 'n', kind: 'route', version: 'a1' });
    let done = false;
    void waiting.then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done, 'b has not ACKed yet').to.equal(false);
    b.acked.set('route', 'b1');
    events.emit('ack', { streamId: 2, nodeId: 'n', kind: 'route', version: 'b1' });
    // `other` never ACKs anything: it is not waited for.
    expect(await waiting).to.deep.equal({ settled: true, notApplied: [] });
  });

  it('wakes a waiter on a settled event (a delta client reaching a version without a response)', async () => {
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    const w = new Watcher();
    cache.watch(w);
    cache.setSnapshot('default', snapshot('v1'));
    const waiting = cache.waitUntilSettled('default', { endpoint: 'v1' }, 60_000);
    w.acked.set('endpoint', 'v1');
    events.emit('settled', { streamId: 1, nodeId: 'n', kind: 'endpoint', version: 'v1' });
    expect(await waiting).to.deep.equal({ settled: true, notApplied: [] });
  });
});
