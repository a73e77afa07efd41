import { expect } from 'chai';
import type { Snapshot } from '../../../snapshots/build.ts';
import type { ResourceKind } from '../../../snapshots/type-urls.ts';
import { AdsEvents } from '../../../xds-server/ads/events.ts';
import { SnapshotCache, type SnapshotWatcher } from '../../../xds-server/cache/snapshot-cache.ts';

const snapshot = (v: string): Snapshot =>
  ({
    resources: { cluster: new Map(), endpoint: new Map(), listener: new Map(), route: new Map(), extensionConfig: new Map() },
    versions: { cluster: v, endpoint: v, listener: v, route: v, extensionConfig: v },
  }) as Snapshot;

class Watcher implements SnapshotWatcher {
  readonly group = 'default';
  acked = new Map<ResourceKind, string>();
  onSnapshot(): void {}
  hasSettled(kind: ResourceKind, version: string): boolean {
    return this.acked.get(kind) === version;
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
    expect(await cache.waitUntilSettled('default', { extensionConfig: 'v1' }, 5_000)).to.equal(true);
  });

  it('waits for the ACK, and gives up at the deadline', async () => {
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    const w = new Watcher();
    cache.watch(w);
    cache.setSnapshot('default', snapshot('v1'));
    const waiting = cache.waitUntilSettled('default', { extensionConfig: 'v1' }, 5_000);
    w.acked.set('extensionConfig', 'v1');
    events.emit('ack', { streamId: 1, nodeId: 'n', kind: 'extensionConfig', version: 'v1' });
    expect(await waiting).to.equal(true);
    expect(await cache.waitUntilSettled('default', { route: 'never' }, 20)).to.equal(false);
  });
});
