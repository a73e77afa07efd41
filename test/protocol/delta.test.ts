// Delta (incremental) ADS through a checked fake stream (test/support/checked-delta-stream.ts: every write
// checked, the client's view kept) on a fake clock: per-resource versions, only what changed, removals as
// removed_resources, initial_resource_versions on reconnect, subscribe/unsubscribe, wildcard, names that do
// not exist, ACK/NACK with the same resend backoff and settlement as state of the world.
import { expect } from 'chai';
import { buildSnapshot, type Snapshot } from '../../snapshots/build.ts';
import type { DesiredState } from '../../snapshots/desired-state.ts';
import { PUSH_ORDER, TYPE_URLS } from '../../snapshots/type-urls.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import { AdsEvents } from '../../xds-server/ads/events.ts';
import { SnapshotCache } from '../../xds-server/cache/snapshot-cache.ts';
import type { DecodedDeltaResponse } from '../../xds-server/protos/codec.ts';
import { CheckedDeltaStream } from '../support/checked-delta-stream.ts';
import { FakeClock, settle } from '../support/fake-clock.ts';

interface Hosts {
  [name: string]: number;
}

function snapshotFor(hosts: Hosts, held: string[] = [], holdTimeoutMs = 30_000): Snapshot {
  const config = validateGatewayConfig({
    listener: { address: '127.0.0.1', port: 10000 },
    hosts: Object.entries(hosts).map(([name, port]) => ({ name, domains: [`${name}.test`], endpoints: [{ address: '127.0.0.1', port }], buffer: { holdTimeoutMs } })),
  });
  if (!config.ok) throw new Error('bad test config');
  const desired: DesiredState = { model: fileConfigToModel(config.value), held: new Set(held), generation: held.length + 1, filterWasmPath: '/f.wasm' };
  const result = buildSnapshot(desired);
  if (!result.ok) throw new Error('bad test snapshot');
  return result.value;
}

const node = { id: 'envoy-1', user_agent_name: 'envoy' };
const BASE: Hosts = { alpha: 20000, beta: 20001 };
const EDS = ['host_alpha', 'host_beta'];

function setup(hosts: Hosts = BASE) {
  const events = new AdsEvents();
  const cache = new SnapshotCache(events);
  cache.setSnapshot('default', snapshotFor(hosts));
  const clock = new FakeClock();
  const options = { clock, nackRetry: { initialMs: 1_000, maxMs: 4_000 } };
  const stream = new CheckedDeltaStream(cache, events, 'default', options);
  const nacks: string[] = [];
  events.on('nack', (e) => nacks.push(e.kind));
  return { events, cache, clock, stream, nacks, options };
}

/** Subscribes like Envoy on delta: CDS and LDS wildcard (empty first request), the rest by name; ACKs all. */
function subscribeLikeEnvoy(stream: CheckedDeltaStream, eds = EDS, initial: Partial<Record<string, Record<string, string>>> = {}): DecodedDeltaResponse[] {
  const opt = (url: string) => (initial[url] ? { initial_resource_versions: initial[url] } : {});
  stream.request({ node, type_url: TYPE_URLS.cluster, ...opt(TYPE_URLS.cluster) });
  stream.request({ type_url: TYPE_URLS.endpoint, resource_names_subscribe: eds, ...opt(TYPE_URLS.endpoint) });
  stream.request({ type_url: TYPE_URLS.listener, ...opt(TYPE_URLS.listener) });
  stream.request({ type_url: TYPE_URLS.route, resource_names_subscribe: ['gateway_routes'], ...opt(TYPE_URLS.route) });
  stream.request({ type_url: TYPE_URLS.extensionConfig, resource_names_subscribe: ['scale_to_zero_buffer'], ...opt(TYPE_URLS.extensionConfig) });
  return stream.ackAll();
}

const names = (r: DecodedDeltaResponse): string[] => r.resources.map((x) => x.name).sort();
const converged = (stream: CheckedDeltaStream): string[] => PUSH_ORDER.flatMap((k) => stream.divergence(k));

describe('delta ADS stream session (checked fake stream)', () => {
  it('sends every subscribed resource once, with its own version; ACKs get nothing back; the client converges', () => {
    const { stream, cache } = setup();
    const first = subscribeLikeEnvoy(stream);
    expect(first.map((r) => r.type_url)).to.deep.equal([TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route, TYPE_URLS.extensionConfig]);
    expect(names(first[0]!)).to.deep.equal(['host_alpha', 'host_beta', 'scale_to_zero_control_plane'].filter((n) => cache.getSnapshot('default')!.resources.cluster.has(n)));
    expect(stream.take()).to.deep.equal([]);
    expect(converged(stream)).to.deep.equal([]);
    const status = stream.session.status();
    expect(status.variant).to.equal('delta');
    for (const kind of PUSH_ORDER) expect(status.types[kind]!.ackedVersion, kind).to.equal(cache.getSnapshot('default')!.versions[kind]);
    expect(stream.violations).to.deep.equal([]);
  });

  it('sends only the one changed resource for a one-backend change', () => {
    const { stream, cache } = setup();
    subscribeLikeEnvoy(stream);
    cache.setSnapshot('default', snapshotFor({ alpha: 20000, beta: 21001 }));
    const changes = stream.take();
    expect(changes.map((r) => [r.type_url, names(r), r.removed_resources])).to.deep.equal([[TYPE_URLS.endpoint, ['host_beta'], []]]);
    for (const r of changes) stream.ack(r);
    expect(converged(stream)).to.deep.equal([]);
    expect(stream.session.settlement('endpoint', cache.getSnapshot('default')!.versions.endpoint)).to.deep.equal({ state: 'applied' });
    expect(stream.violations).to.deep.equal([]);
  });

  it('sends a removed backend as removed_resources (clusters, endpoints), and its routes as one changed resource', () => {
    const { stream, cache } = setup();
    subscribeLikeEnvoy(stream);
    cache.setSnapshot('default', snapshotFor({ alpha: 20000 }));
    const changes = stream.take();
    const byType = new Map(changes.map((r) => [r.type_url, r]));
    expect(byType.get(TYPE_URLS.cluster)!.removed_resources).to.deep.equal(['host_beta']);
    expect(byType.get(TYPE_URLS.cluster)!.resources).to.have.length(0);
    expect(byType.get(TYPE_URLS.endpoint)!.removed_resources).to.deep.equal(['host_beta']);
    expect(names(byType.get(TYPE_URLS.route)!)).to.deep.equal(['gateway_routes']);
    expect(byType.has(TYPE_URLS.listener)).to.equal(false);
    for (const r of changes) stream.ack(r);
    // Envoy drops the name of the endpoints of a removed cluster: nothing more is sent for it.
    stream.request({ type_url: TYPE_URLS.endpoint, resource_names_unsubscribe: ['host_beta'] });
    expect(stream.take()).to.deep.equal([]);
    expect(converged(stream)).to.deep.equal([]);
    expect(stream.violations).to.deep.equal([]);
  });

  it('honours initial_resource_versions on a new stream: only what changed meanwhile, and removals of what is gone', () => {
    const { stream, cache, events, options } = setup({ alpha: 20000, beta: 20001, gamma: 20002 });
    subscribeLikeEnvoy(stream, ['host_alpha', 'host_beta', 'host_gamma']);
    const had = Object.fromEntries(PUSH_ORDER.map((k) => [TYPE_URLS[k], Object.fromEntries(stream.has.get(k)!)]));
    stream.session.close('reconnect');
    // Meanwhile: alpha's endpoint moved, gamma is gone.
    cache.setSnapshot('default', snapshotFor({ alpha: 21000, beta: 20001 }));
    const again = new CheckedDeltaStream(cache, events, 'default', options);
    const got = subscribeLikeEnvoy(again, ['host_alpha', 'host_beta', 'host_gamma'], had);
    const summary = got.map((r) => [r.type_url, names(r), r.removed_resources]);
    expect(summary).to.deep.equal([
      // A wildcard type is answered even when nothing changed for it (its initial fetch completes).
      [TYPE_URLS.cluster, [], ['host_gamma']],
      [TYPE_URLS.endpoint, ['host_alpha'], ['host_gamma']],
      [TYPE_URLS.listener, [], []],
      [TYPE_URLS.route, ['gateway_routes'], []],
      // The filter config did not change: a named type with nothing new gets no response.
    ]);
    expect(converged(again)).to.deep.equal([]);
    expect(again.violations).to.deep.equal([]);
  });

  it('sends a name subscribed later, forgets an unsubscribed one, and sends it again when subscribed again', () => {
    const { stream, cache } = setup();
    subscribeLikeEnvoy(stream, ['host_alpha']);
    stream.request({ type_url: TYPE_URLS.endpoint, resource_names_subscribe: ['host_beta'] });
    let r = stream.ackAll()[0];
    expect(names(r!)).to.deep.equal(['host_beta']);
    stream.request({ type_url: TYPE_URLS.endpoint, resource_names_unsubscribe: ['host_beta'] });
    expect(stream.take()).to.deep.equal([]);
    cache.setSnapshot('default', snapshotFor({ alpha: 20000, beta: 21001 }));
    // beta changed, but nobody asks for it: nothing is sent, and the client is settled at the new version.
    expect(stream.take()).to.deep.equal([]);
    expect(stream.session.settlement('endpoint', cache.getSnapshot('default')!.versions.endpoint)).to.deep.equal({ state: 'applied' });
    stream.request({ type_url: TYPE_URLS.endpoint, resource_names_subscribe: ['host_beta'] });
    r = stream.ackAll()[0];
    expect(names(r!)).to.deep.equal(['host_beta']);
    expect(converged(stream)).to.deep.equal([]);
    expect(stream.violations).to.deep.equal([]);
  });

  it('says once that a named resource does not exist, and sends it when it appears', () => {
    const { stream, cache } = setup();
    subscribeLikeEnvoy(stream);
    stream.request({ type_url: TYPE_URLS.endpoint, resource_names_subscribe: ['host_gamma'] });
    let r = stream.ackAll()[0];
    expect(r!.removed_resources).to.deep.equal(['host_gamma']);
    cache.setSnapshot('default', snapshotFor({ alpha: 20000, beta: 21001 }));
    r = stream.ackAll()[0];
    expect(names(r!)).to.deep.equal(['host_beta']);
    expect(r!.removed_resources).to.deep.equal([]);
    cache.setSnapshot('default', snapshotFor({ alpha: 20000, beta: 21001, gamma: 20002 }));
    const endpoints = stream.ackAll().find((x) => x.type_url === TYPE_URLS.endpoint)!;
    expect(names(endpoints)).to.include('host_gamma');
    expect(converged(stream)).to.deep.equal([]);
    expect(stream.violations).to.deep.equal([]);
  });

  it('treats "*" as a wildcard on any type, and unsubscribing "*" as its end', () => {
    const { stream, cache } = setup();
    stream.request({ node, type_url: TYPE_URLS.endpoint, resource_names_subscribe: ['*'] });
    const [r] = stream.ackAll();
    expect(names(r!)).to.deep.equal(['host_alpha', 'host_beta']);
    stream.request({ type_url: TYPE_URLS.endpoint, resource_names_unsubscribe: ['*'] });
    cache.setSnapshot('default', snapshotFor({ alpha: 21000, beta: 21001 }));
    expect(stream.take()).to.deep.equal([]);
    expect(stream.session.settlement('endpoint', 'any')).to.deep.equal({ state: 'unsubscribed' });
    expect(stream.violations).to.deep.equal([]);
  });

  it('sends the endpoints of a changed cluster again (warming), even unchanged', () => {
    const { stream, cache } = setup();
    subscribeLikeEnvoy(stream);
    // One cluster's settings change; its endpoints do not.
    const next = snapshotFor(BASE);
    const alpha = { ...next.resources.cluster.get('host_alpha')!, connect_timeout: { seconds: 3 } };
    const clusters = new Map(next.resources.cluster);
    clusters.set('host_alpha', alpha);
    cache.setSnapshot('default', { resources: { ...next.resources, cluster: clusters }, versions: { ...next.versions, cluster: 'changed' } });
    const changes = stream.take();
    expect(changes.map((r) => [r.type_url, names(r)])).to.deep.equal([
      [TYPE_URLS.cluster, ['host_alpha']],
      [TYPE_URLS.endpoint, ['host_alpha']],
    ]);
    expect(stream.violations).to.deep.equal([]);
  });

  it('records a NACK, keeps the rejected resources unapplied, resends them with bounded backoff until accepted', async () => {
    const { stream, cache, clock, nacks } = setup();
    subscribeLikeEnvoy(stream);
    const good = cache.getSnapshot('default')!.versions.listener;
    // A longer hold timeout changes the listener (stream_idle_timeout): the client rejects it.
    cache.setSnapshot('default', snapshotFor(BASE, [], 600_000));
    const bad = cache.getSnapshot('default')!.versions.listener;
    let lds = stream.take().find((r) => r.type_url === TYPE_URLS.listener)!;
    expect(names(lds)).to.deep.equal(['gateway_http']);
    stream.nack(lds, 'cannot bind');
    expect(nacks).to.deep.equal(['listener']);
    expect(stream.session.settlement('listener', bad)).to.deep.equal({ state: 'rejected', message: 'cannot bind' });
    expect(stream.session.status().types.listener).to.deep.include({ ackedVersion: good });
    expect(stream.session.status().types.listener!.retry).to.include({ attempts: 1, version: bad });
    // Repeating the NACK (same nonce) is not counted again.
    stream.nack(lds, 'cannot bind');
    expect(nacks).to.have.length(1);
    await clock.advance(999, 100);
    expect(stream.take()).to.have.length(0);
    await clock.advance(1, 1);
    lds = stream.take()[0]!;
    expect(names(lds!)).to.deep.equal(['gateway_http']);
    stream.nack(lds!, 'cannot bind');
    await clock.advance(1_999, 100);
    expect(stream.take()).to.have.length(0);
    await clock.advance(1, 1);
    lds = stream.take()[0]!;
    stream.ack(lds!);
    expect(stream.session.status().types.listener).to.not.have.property('retry');
    expect(stream.session.status().types.listener).to.not.have.property('nack');
    expect(stream.session.settlement('listener', bad)).to.deep.equal({ state: 'applied' });
    await clock.advance(60_000, 1_000);
    expect(stream.take()).to.have.length(0);
    expect(converged(stream)).to.deep.equal([]);
    expect(stream.violations).to.deep.equal([]);
    await settle();
  });

  it('clears a NACK when the rejected config is withdrawn for one the client already has, without sending it', () => {
    const { stream, cache, events } = setup();
    subscribeLikeEnvoy(stream);
    const good = cache.getSnapshot('default')!;
    cache.setSnapshot('default', snapshotFor(BASE, [], 600_000));
    const lds = stream.take().find((r) => r.type_url === TYPE_URLS.listener)!;
    stream.nack(lds, 'cannot bind');
    stream.take();
    const settled: string[] = [];
    events.on('settled', (e) => settled.push(e.kind));
    cache.setSnapshot('default', good);
    // Everything of the good snapshot is what the client kept: nothing to send, and it is at that version.
    expect(stream.take().filter((r) => r.type_url === TYPE_URLS.listener)).to.deep.equal([]);
    expect(stream.session.status().types.listener).to.not.have.property('nack');
    expect(stream.session.status().types.listener).to.not.have.property('retry');
    expect(stream.session.settlement('listener', good.versions.listener)).to.deep.equal({ state: 'applied' });
    expect(settled).to.include('listener');
    expect(stream.violations).to.deep.equal([]);
  });

  it('honours a subscription change that comes with a stale nonce', () => {
    const { stream, cache } = setup();
    subscribeLikeEnvoy(stream, ['host_alpha']);
    cache.setSnapshot('default', snapshotFor({ alpha: 21000, beta: 20001 }));
    const [first] = stream.take();
    cache.setSnapshot('default', snapshotFor({ alpha: 22000, beta: 20001 }));
    const [second] = stream.take();
    // The client answers the first (now stale) response and, in the same request, subscribes to beta.
    stream.request({ type_url: TYPE_URLS.endpoint, response_nonce: first!.nonce, resource_names_subscribe: ['host_beta'] });
    const [beta] = stream.take();
    expect(names(beta!)).to.deep.equal(['host_beta']);
    void second;
    expect(stream.violations).to.deep.equal([]);
  });
});
