// The ADS stream session through a fake stream that checks every write (type_url for the subscription, a
// fresh nonce, the snapshot's version, only subscribed resources), on a fake clock: ACK/NACK bookkeeping,
// the backoff of resending a rejected version, and a NACK repeated on unsubscribe counted once.
import { expect } from 'chai';
import { buildSnapshot, type Snapshot } from '../../snapshots/build.ts';
import type { DesiredState } from '../../snapshots/desired-state.ts';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import { AdsEvents } from '../../xds-server/ads/events.ts';
import { SnapshotCache } from '../../xds-server/cache/snapshot-cache.ts';
import { CheckedStream } from '../support/checked-stream.ts';
import { FakeClock, settle } from '../support/fake-clock.ts';

function snapshotFor(held: string[]): Snapshot {
  const config = validateGatewayConfig({
    listener: { address: '127.0.0.1', port: 10000 },
    hosts: ['alpha', 'beta'].map((name, i) => ({ name, domains: [`${name}.test`], endpoints: [{ address: '127.0.0.1', port: 20000 + i }] })),
  });
  if (!config.ok) throw new Error('bad test config');
  const desired: DesiredState = { model: fileConfigToModel(config.value), held: new Set(held), generation: held.length + 1, filterWasmPath: '/f.wasm' };
  const result = buildSnapshot(desired);
  if (!result.ok) throw new Error('bad test snapshot');
  return result.value;
}

const node = { id: 'envoy-1', user_agent_name: 'envoy' };
const RDS = ['gateway_routes'];
const ECDS = ['scale_to_zero_buffer'];

function setup() {
  const events = new AdsEvents();
  const cache = new SnapshotCache(events);
  cache.setSnapshot('default', snapshotFor([]));
  const clock = new FakeClock();
  const stream = new CheckedStream(cache, events, 'default', { clock, nackRetry: { initialMs: 1_000, maxMs: 4_000 } });
  const nacks: string[] = [];
  events.on('nack', (e) => nacks.push(e.kind));
  return { events, cache, clock, stream, nacks };
}

/** Subscribes like Envoy (LDS and CDS wildcard, the rest by name) and ACKs every first response. */
function subscribeLikeEnvoy(stream: CheckedStream): void {
  stream.request({ node, type_url: TYPE_URLS.cluster });
  stream.request({ type_url: TYPE_URLS.endpoint, resource_names: ['host_alpha', 'host_beta'] });
  stream.request({ type_url: TYPE_URLS.listener });
  stream.request({ type_url: TYPE_URLS.route, resource_names: RDS });
  stream.request({ type_url: TYPE_URLS.extensionConfig, resource_names: ECDS });
  for (const r of stream.take()) stream.ack(r, namesFor(r.type_url));
}

function namesFor(typeUrl: string): string[] {
  return typeUrl === TYPE_URLS.endpoint ? ['host_alpha', 'host_beta'] : typeUrl === TYPE_URLS.route ? RDS : typeUrl === TYPE_URLS.extensionConfig ? ECDS : [];
}

describe('ADS stream session (checked fake stream)', () => {
  it('answers every subscription and update with the right type, a fresh nonce and the snapshot version', () => {
    const { cache, stream } = setup();
    subscribeLikeEnvoy(stream);
    cache.setSnapshot('default', snapshotFor(['alpha']));
    const updates = stream.take();
    expect(updates.map((r) => r.type_url)).to.deep.equal([TYPE_URLS.route, TYPE_URLS.extensionConfig]);
    for (const r of updates) stream.ack(r, namesFor(r.type_url));
    expect(stream.violations).to.deep.equal([]);
    const status = stream.session.status();
    expect(status.clientKind).to.equal('envoy');
    for (const kind of ['cluster', 'endpoint', 'listener', 'route', 'extensionConfig'] as const) {
      expect(status.types[kind]!.ackedVersion, kind).to.equal(cache.getSnapshot('default')!.versions[kind]);
    }
    expect(status.types.listener).to.include({ wildcard: true });
    expect(status.types.route).to.deep.include({ wildcard: false, subscribed: RDS });
  });

  it('the checker itself catches a response for a type the client did not ask for', () => {
    const { stream, cache } = setup();
    stream.request({ node, type_url: TYPE_URLS.route, resource_names: RDS });
    // Bypass the session: a write no client asked for.
    stream.write(Buffer.from([]));
    expect(stream.violations.length).to.be.greaterThan(0);
    expect(cache.watchCount).to.equal(1);
  });

  it('sends a named listener only to a client that names it, and nothing for a name that does not exist', () => {
    const { stream } = setup();
    stream.request({ node: { id: 'tool', user_agent_name: 'a-test-tool' }, type_url: TYPE_URLS.listener, resource_names: ['no.such.listener'] });
    const [lds] = stream.take();
    expect(lds!.resources).to.have.length(0);
    expect(stream.session.status().clientKind).to.equal('xds-client');
    expect(stream.violations).to.deep.equal([]);
  });

  it('resends a rejected version with exponential, bounded backoff, and stops once it is accepted', async () => {
    const { stream, clock, nacks, cache } = setup();
    subscribeLikeEnvoy(stream);
    const good = cache.getSnapshot('default')!.versions.listener;
    // A new listener version that the client rejects.
    cache.setSnapshot('default', { ...snapshotFor([]), versions: { ...snapshotFor([]).versions, listener: 'v-bad' } });
    let [lds] = stream.take();
    stream.nack(lds!, [], good, 'cannot bind');
    expect(nacks).to.deep.equal(['listener']);
    expect(stream.session.status().types.listener!.retry).to.include({ attempts: 1, version: 'v-bad' });
    // Nothing before the delay; then the same version again, with a new nonce.
    await clock.advance(999, 100);
    expect(stream.take()).to.have.length(0);
    await clock.advance(1, 1);
    [lds] = stream.take();
    expect(lds!.version_info).to.equal('v-bad');
    stream.nack(lds!, [], good, 'cannot bind');
    expect(stream.session.status().types.listener!.retry!.attempts).to.equal(2);
    await clock.advance(1_999, 100);
    expect(stream.take()).to.have.length(0);
    await clock.advance(1, 1);
    [lds] = stream.take();
    stream.nack(lds!, [], good, 'cannot bind');
    // The delay doubles up to maxMs (4 s) and stays there.
    await clock.advance(3_999, 100);
    expect(stream.take()).to.have.length(0);
    await clock.advance(1, 1);
    [lds] = stream.take();
    stream.nack(lds!, [], good, 'cannot bind');
    expect(stream.session.status().types.listener!.retry!.attempts).to.equal(4);
    await clock.advance(4_000, 100);
    [lds] = stream.take();
    stream.ack(lds!, []);
    expect(stream.session.status().types.listener).to.not.have.property('retry');
    expect(stream.session.status().types.listener).to.not.have.property('nack');
    await clock.advance(60_000, 1_000);
    expect(stream.take()).to.have.length(0);
    expect(nacks).to.have.length(4);
    expect(stream.violations).to.deep.equal([]);
    await settle();
  });

  it('counts a NACK repeated on unsubscribe once, and waits no more for the dropped types', async () => {
    const { stream, nacks, cache } = setup();
    subscribeLikeEnvoy(stream);
    const good = cache.getSnapshot('default')!.versions.listener;
    cache.setSnapshot('default', { ...snapshotFor([]), versions: { ...snapshotFor([]).versions, listener: 'v-bad' } });
    const [lds] = stream.take();
    stream.nack(lds!, [], good, 'cannot bind');
    // Envoy repeats the error with the same nonce on its next LDS request, and drops the listener's routes
    // and filter config.
    stream.nack(lds!, [], good, 'cannot bind');
    stream.request({ type_url: TYPE_URLS.route, resource_names: [], version_info: cache.getSnapshot('default')!.versions.route, response_nonce: stream.session.status().types.route ? lastNonce(stream, 'route') : '' });
    expect(nacks).to.deep.equal(['listener']);
    expect(stream.session.settlement('route', 'any')).to.deep.equal({ state: 'unsubscribed' });
    // A change to the dropped routes sends them nothing (the listener goes again: a new version replaces
    // the rejected one; the filter config is still subscribed).
    cache.setSnapshot('default', snapshotFor(['alpha']));
    expect(stream.take().map((r) => r.type_url)).to.deep.equal([TYPE_URLS.listener, TYPE_URLS.extensionConfig]);
    expect(stream.violations).to.deep.equal([]);
  });
});

function lastNonce(stream: CheckedStream, kind: 'route'): string {
  // The session's nonce for the type is the one the client answers; the checker saw every response.
  void kind;
  return (stream.session as unknown as { types: Map<string, { lastNonce?: string }> }).types.get('route')!.lastNonce!;
}
