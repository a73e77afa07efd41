// The publisher orders what Envoy sees: new clusters and endpoints, ACKed, before the config that releases.
import { expect } from 'chai';
import type { Snapshot } from '../../snapshots/build.ts';
import type { DesiredState } from '../../snapshots/desired-state.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { AdsEvents } from '../../xds-server/ads/events.ts';
import { SnapshotCache, type Settlement, type SnapshotWatcher } from '../../xds-server/cache/snapshot-cache.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { DEFAULT_PUBLISHER_OPTIONS, Publisher } from '../../xds-server/publisher.ts';

function state(port: number, scaled: string[], more: string[] = []): DesiredState {
  const hosts = [{ name: 'web', port }, ...more.map((name, i) => ({ name, port: 9500 + i }))];
  const config = validateGatewayConfig({ listener: { port: 10000 }, hosts: hosts.map((h) => ({ name: h.name, domains: [`${h.name}.test`], endpoints: [{ address: '127.0.0.1', port: h.port }] })) });
  if (!config.ok) throw new Error('bad test config');
  return { model: fileConfigToModel(config.value), held: new Set(scaled), generation: scaled.length + port + more.length, filterWasmPath: '/f.wasm' };
}

/** Records what it was shown and ACKs only when told to. */
class RecordingWatcher implements SnapshotWatcher {
  readonly group = 'default';
  readonly label = { nodeId: 'n', streamId: 1, client: 'envoy' as const };
  seen: Snapshot[] = [];
  acked = new Map<ResourceKind, string>();
  onSnapshot(s: Snapshot): void {
    this.seen.push(s);
  }
  settlement(kind: ResourceKind, version: string): Settlement {
    return this.acked.get(kind) === version ? { state: 'applied' } : { state: 'pending' };
  }
}

describe('Publisher', () => {
  it('pushes a new cluster and its endpoints first, waits for the ACK, then the routes and the filter config that releases a host', async () => {
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    let desired = state(8081, ['web']);
    const publisher = new Publisher(() => desired, cache, silentLogger, { quietMs: 1, urgentQuietMs: 1, maxDelayMs: 5, settleTimeoutMs: 5_000 });
    const initial = (await publisher.publishNow()).snapshot;
    const watcher = new RecordingWatcher();
    cache.watch(watcher);

    // A new host (a new cluster, which Envoy warms) and the release of web.
    desired = state(8081, [], ['api']);
    const done = publisher.schedule();
    while (watcher.seen.length === 0) await new Promise((r) => setTimeout(r, 1));
    const phase1 = watcher.seen[0]!;
    expect([...phase1.resources.cluster.keys()]).to.include('host_api');
    expect(phase1.versions.endpoint).to.not.equal(initial.versions.endpoint);
    expect(phase1.versions.extensionConfig).to.equal(initial.versions.extensionConfig);
    expect(phase1.versions.route).to.equal(initial.versions.route);
    await new Promise((r) => setTimeout(r, 20));
    expect(watcher.seen).to.have.length(1);

    watcher.acked.set('cluster', phase1.versions.cluster);
    watcher.acked.set('endpoint', phase1.versions.endpoint);
    events.emit('ack', { streamId: 1, nodeId: 'n', kind: 'endpoint', version: phase1.versions.endpoint });
    const final = (await done).snapshot;
    expect(watcher.seen).to.have.length(2);
    expect(final.versions.extensionConfig).to.not.equal(initial.versions.extensionConfig);
    expect(final.versions.endpoint).to.equal(phase1.versions.endpoint);
  });

  it('pushes new hosts on new domains without waiting for an ACK (clusters first, then routes), and ends the publish only once their clusters are ACKed', async () => {
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    let desired = state(8081, []);
    const publisher = new Publisher(() => desired, cache, silentLogger, { quietMs: 1, urgentQuietMs: 1, maxDelayMs: 5, settleTimeoutMs: 60_000 });
    const initial = (await publisher.publishNow()).snapshot;
    const watcher = new RecordingWatcher();
    cache.watch(watcher);

    desired = state(8081, [], ['api', 'docs']);
    let resolved = false;
    const done = publisher.schedule().then((p) => {
      resolved = true;
      return p;
    });
    while (watcher.seen.length < 2) await new Promise((r) => setTimeout(r, 1));
    const [clusters, all] = watcher.seen as [Snapshot, Snapshot];
    // The new clusters with the routes in force (so they go on the wire before the route table is encoded),
    // then the routes to them, the same clusters: nothing waited for an ACK.
    expect([...clusters.resources.cluster.keys()]).to.include.members(['host_api', 'host_docs']);
    expect(clusters.versions.route).to.equal(initial.versions.route);
    expect(all.versions.route).to.not.equal(initial.versions.route);
    expect(all.versions.cluster).to.equal(clusters.versions.cluster);
    expect(all.versions.endpoint).to.equal(clusters.versions.endpoint);
    await new Promise((r) => setTimeout(r, 20));
    expect(watcher.seen).to.have.length(2);
    // A later publish could release requests onto the new clusters: this one is not done until they are warm.
    expect(resolved).to.equal(false);
    watcher.acked.set('cluster', all.versions.cluster);
    watcher.acked.set('endpoint', all.versions.endpoint);
    events.emit('ack', { streamId: 1, nodeId: 'n', kind: 'endpoint', version: all.versions.endpoint });
    expect((await done).snapshot.versions).to.deep.equal(all.versions);
    expect(watcher.seen).to.have.length(2);
  });

  it('sends new clusters (with the routes in force) before it builds the routes, listeners and filter config', async () => {
    const events = new AdsEvents();
    const cache = new SnapshotCache(events);
    let desired = state(8081, []);
    const publisher = new Publisher(() => desired, cache, silentLogger, { quietMs: 1, urgentQuietMs: 1, maxDelayMs: 5, settleTimeoutMs: 60_000 });
    const initial = (await publisher.publishNow()).snapshot;
    const watcher = new RecordingWatcher();
    cache.watch(watcher);
    // How many snapshots the client had been shown whenever a builder read the virtual hosts (the routes'
    // input, which the clusters do not need).
    const seenWhenRoutesRead: number[] = [];
    const next = state(8081, [], ['api', 'docs']);
    const listeners = next.model.listeners.map((l) => {
      const { virtualHosts, ...rest } = l;
      return Object.defineProperty({ ...rest }, 'virtualHosts', {
        enumerable: true,
        get: () => {
          seenWhenRoutesRead.push(watcher.seen.length);
          return virtualHosts;
        },
      }) as typeof l;
    });
    desired = { ...next, model: { ...next.model, listeners } };
    const done = publisher.schedule();
    while (watcher.seen.length < 2) await new Promise((r) => setTimeout(r, 1));
    expect(seenWhenRoutesRead).to.not.be.empty;
    expect(Math.min(...seenWhenRoutesRead)).to.equal(1);
    const clusters = watcher.seen[0]!;
    expect([...clusters.resources.cluster.keys()]).to.include.members(['host_api', 'host_docs']);
    expect(clusters.versions.route).to.equal(initial.versions.route);
    watcher.acked.set('cluster', clusters.versions.cluster);
    watcher.acked.set('endpoint', clusters.versions.endpoint);
    events.emit('ack', { streamId: 1, nodeId: 'n', kind: 'endpoint', version: clusters.versions.endpoint });
    expect((await done).snapshot.versions.cluster).to.equal(clusters.versions.cluster);
  });

  it('takes the new clusters back when the rest of the snapshot cannot be built', async () => {
    const cache = new SnapshotCache(new AdsEvents());
    let desired = state(8081, []);
    const publisher = new Publisher(() => desired, cache, silentLogger, { quietMs: 1, urgentQuietMs: 1, maxDelayMs: 5, settleTimeoutMs: 60_000 });
    const initial = (await publisher.publishNow()).snapshot;
    const watcher = new RecordingWatcher();
    cache.watch(watcher);
    // A new host whose hold policy the filter would refuse: its cluster is fine, its filter config is not.
    const next = state(8081, ['api'], ['api']);
    desired = { ...next, model: { ...next.model, backends: next.model.backends.map((b) => (b.name === 'api' && b.scaleToZero ? { ...b, scaleToZero: { ...b.scaleToZero, buffer: { ...b.scaleToZero.buffer, holdTimeoutMs: 0 } } } : b)) } };
    let error: Error | undefined;
    await publisher.schedule().catch((err: Error) => (error = err));
    expect(error?.message).to.match(/the filter would reject/);
    expect(watcher.seen).to.have.length(2);
    expect([...watcher.seen[0]!.resources.cluster.keys()]).to.include('host_api');
    expect(watcher.seen[1]).to.equal(initial);
    expect(cache.getSnapshot('default')).to.equal(initial);
  });

  it('pushes changed endpoints of an existing cluster with the release in one push, without waiting for an ACK', async () => {
    const cache = new SnapshotCache(new AdsEvents());
    let desired = state(8081, ['web']);
    const publisher = new Publisher(() => desired, cache, silentLogger, { quietMs: 1, urgentQuietMs: 1, maxDelayMs: 5, settleTimeoutMs: 60_000 });
    const initial = (await publisher.publishNow()).snapshot;
    const watcher = new RecordingWatcher();
    cache.watch(watcher);
    desired = state(9091, []);
    const final = (await publisher.schedule()).snapshot;
    // Nobody ACKed anything: one ADS stream delivers the endpoints before the filter config anyway.
    expect(watcher.seen).to.have.length(1);
    expect(final.versions.endpoint).to.not.equal(initial.versions.endpoint);
    expect(final.versions.extensionConfig).to.not.equal(initial.versions.extensionConfig);
  });

  it('removes a cluster only after the routes that used it, in two pushes without a wait', async () => {
    const cache = new SnapshotCache(new AdsEvents());
    let desired = state(8081, [], ['api']);
    const publisher = new Publisher(() => desired, cache, silentLogger, { quietMs: 1, urgentQuietMs: 1, maxDelayMs: 5, settleTimeoutMs: 60_000 });
    const initial = (await publisher.publishNow()).snapshot;
    const watcher = new RecordingWatcher();
    cache.watch(watcher);
    desired = state(8081, []);
    const final = (await publisher.schedule()).snapshot;
    expect(watcher.seen).to.have.length(2);
    const [first, second] = watcher.seen as [Snapshot, Snapshot];
    // First: the new routes (api gone) with every old cluster still there.
    expect(first.versions.route).to.equal(final.versions.route);
    expect(first.versions.cluster).to.equal(initial.versions.cluster);
    // Then: the cluster goes.
    expect([...second.resources.cluster.keys()]).to.not.include('host_api');
    expect(second.versions.cluster).to.equal(final.versions.cluster);
  });

  it('publishes in one phase when only the filter config changes', async () => {
    const cache = new SnapshotCache(new AdsEvents());
    let desired = state(8081, ['web']);
    const publisher = new Publisher(() => desired, cache, silentLogger, { quietMs: 1, urgentQuietMs: 1, maxDelayMs: 5, settleTimeoutMs: 5_000 });
    await publisher.publishNow();
    const watcher = new RecordingWatcher();
    cache.watch(watcher);
    desired = state(8081, []);
    await publisher.schedule();
    expect(watcher.seen).to.have.length(1);
  });

  it('publishes an urgent change (a release) without waiting out a calmer change\'s quiet window, in one push with it', async () => {
    const cache = new SnapshotCache(new AdsEvents());
    let desired = state(8081, ['web']);
    const publisher = new Publisher(() => desired, cache, silentLogger, { quietMs: 10_000, urgentQuietMs: 1, maxDelayMs: 20_000, settleTimeoutMs: 5_000 });
    await publisher.publishNow();
    const calm = publisher.schedule();
    desired = state(8081, []);
    const urgent = publisher.schedule({ urgent: true });
    const [a, b] = await Promise.all([calm, urgent]);
    expect(a).to.equal(b);
    expect(publisher.publishCount).to.equal(2);
  });

  it('with urgentQuietMs 0 (the default) publishes an urgent change on the next turn of the event loop, merging what the same turn changed', async () => {
    const cache = new SnapshotCache(new AdsEvents());
    let desired = state(8081, ['web']);
    const publisher = new Publisher(() => desired, cache, silentLogger, { ...DEFAULT_PUBLISHER_OPTIONS, quietMs: 10_000, maxDelayMs: 20_000 });
    expect(DEFAULT_PUBLISHER_OPTIONS.urgentQuietMs).to.equal(0);
    await publisher.publishNow();
    const watcher = new RecordingWatcher();
    cache.watch(watcher);
    desired = state(8081, []);
    const first = publisher.schedule({ urgent: true });
    desired = state(8082, []);
    const second = publisher.schedule({ urgent: true });
    // Not published synchronously: a change made later in the same turn still joins.
    expect(watcher.seen).to.have.length(0);
    // Published before any timer could fire: the next macrotask after setImmediate sees it done.
    const published = await Promise.race([Promise.all([first, second]), new Promise<'timer'>((r) => setTimeout(() => r('timer'), 0))]);
    expect(published).to.not.equal('timer');
    const [a, b] = published as [unknown, unknown];
    expect(a).to.equal(b);
    expect(watcher.seen).to.have.length(1);
    expect(publisher.publishCount).to.equal(2);
  });
});
