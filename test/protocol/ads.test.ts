// ADS protocol rules over real gRPC on loopback, with a raw client. Each case cites the rule it pins
// (Envoy docs: api-docs/xds_protocol). "No response" is asserted after the server's own event says it
// classified the request, never after a sleep.
import { once } from 'node:events';
import { expect } from 'chai';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import type { AdsEventMap } from '../../xds-server/ads/events.ts';
import type { ControlPlane } from '../../xds-server/control-plane.ts';
import { RawAdsClient, resourceNames } from '../support/ads-client.ts';
import { simpleHosts, startTestControlPlane, type TestControlPlane } from '../support/control-plane.ts';

const node = { id: 'node-1', cluster: 'test' };
type RequestEvent = AdsEventMap['request'][0];

function nextRequestEvent(cp: ControlPlane): Promise<RequestEvent> {
  return once(cp.events, 'request').then(([e]) => e as RequestEvent);
}

describe('ADS protocol (state of the world)', () => {
  let t: TestControlPlane;
  let client: RawAdsClient;

  beforeEach(async () => {
    t = await startTestControlPlane(simpleHosts(['alpha', 'beta']));
    client = new RawAdsClient(t.cp.xdsPort);
  });
  afterEach(async () => {
    client.close();
    await t.close();
  });

  it('answers the first request with the snapshot, with a nonce on every response', async () => {
    client.send({ node, type_url: TYPE_URLS.cluster });
    const cds = await client.next();
    client.send({ type_url: TYPE_URLS.listener });
    const lds = await client.next();
    expect(cds.nonce).to.not.equal('');
    expect(lds.nonce).to.not.equal('');
    expect(lds.nonce).to.not.equal(cds.nonce);
    expect(resourceNames(cds).sort()).to.deep.equal(['host_alpha', 'host_beta', 'scale_to_zero_control_plane']);
    expect(cds.version_info).to.equal(t.cp.cache.getSnapshot('default')!.versions.cluster);
  });

  it('ends the stream when the first request carries no node id', async () => {
    client.send({ type_url: TYPE_URLS.cluster });
    await new Promise((r) => setTimeout(r, 0));
    await expectStreamError(client, 3);
  });

  it('ends the stream with INTERNAL, not silence, when a response cannot be built', async () => {
    const current = t.cp.cache.getSnapshot('default')!;
    // A wrapper field given as a bare number does not encode (the bug behind a silent proxyless EDS).
    const broken = new Map([['host_alpha', { name: 'host_alpha', cluster_name: 'host_alpha', endpoints: [{ load_balancing_weight: 1 }] }]]);
    t.cp.cache.setSnapshot('default', { ...current, resources: { ...current.resources, endpoint: broken }, versions: { ...current.versions, endpoint: 'broken' } });
    client.send({ node, type_url: TYPE_URLS.endpoint, resource_names: ['host_alpha'] });
    await expectStreamError(client, 13);
    expect(client.error?.details).to.include('failed to answer');
  });

  it('sends nothing back for an ACK', async () => {
    client.send({ node, type_url: TYPE_URLS.cluster });
    const cds = await client.next();
    const classified = nextRequestEvent(t.cp);
    client.send({ type_url: TYPE_URLS.cluster, version_info: cds.version_info, response_nonce: cds.nonce });
    expect((await classified).verdict).to.deep.equal({ kind: 'ack', version: cds.version_info });
    await roundTrip(client);
    expect(client.pending).to.equal(0);
  });

  // xds_protocol: "the management server should not send a DiscoveryResponse for any DiscoveryRequest
  // that has a stale nonce".
  it('ignores a request whose nonce is stale', async () => {
    client.send({ node, type_url: TYPE_URLS.extensionConfig, resource_names: ['scale_to_zero_buffer'] });
    const first = await client.next();
    await mark(t.cp, 'alpha', 'test');
    const second = await client.next();
    expect(second.nonce).to.not.equal(first.nonce);
    const classified = nextRequestEvent(t.cp);
    client.send({ type_url: TYPE_URLS.extensionConfig, resource_names: ['scale_to_zero_buffer', 'other'], version_info: first.version_info, response_nonce: first.nonce });
    expect((await classified).verdict.kind).to.equal('stale-nonce');
    await roundTrip(client);
    expect(client.pending).to.equal(0);
  });

  it('records a NACK (admin API + metric) and does not resend the rejected version until the snapshot changes', async () => {
    client.send({ node, type_url: TYPE_URLS.route, resource_names: ['gateway_routes'] });
    const good = await client.next();
    client.send({ type_url: TYPE_URLS.route, resource_names: ['gateway_routes'], version_info: good.version_info, response_nonce: good.nonce });
    await mark(t.cp, 'alpha', 'test');
    const rejected = await client.next();
    const classified = nextRequestEvent(t.cp);
    client.send({
      type_url: TYPE_URLS.route,
      resource_names: ['gateway_routes'],
      version_info: good.version_info,
      response_nonce: rejected.nonce,
      error_detail: { code: 13, message: 'route rejected for the test' },
    });
    expect((await classified).verdict.kind).to.equal('nack');

    const nodes = (await (await fetch(`${t.cp.adminUrl}/v1/nodes`)).json()) as { nodes: { types: { route: { nack: { rejectedVersion: string; message: string; lastGoodVersion: string } } } }[] };
    expect(nodes.nodes[0]!.types.route.nack).to.include({ rejectedVersion: rejected.version_info, lastGoodVersion: good.version_info, message: 'route rejected for the test' });
    expect(t.cp.metrics.value('stz_xds_nacks_total', { type: TYPE_URLS.route })).to.equal(1);

    // Republishing the same state must not resend the rejected version...
    await t.cp.publisher.publishNow();
    await roundTrip(client);
    expect(client.pending).to.equal(0);
    // ...but a changed snapshot is sent.
    await mark(t.cp, 'beta', 'test');
    const next = await client.next();
    expect(next.version_info).to.not.equal(rejected.version_info);
  });

  it('names a client that rejected a mark in the admin answer (notApplied), without waiting for the timeout', async () => {
    client.send({ node: { ...node, user_agent_name: 'envoy' }, type_url: TYPE_URLS.route, resource_names: ['gateway_routes'] });
    const rds = await client.next();
    client.send({ type_url: TYPE_URLS.route, resource_names: ['gateway_routes'], version_info: rds.version_info, response_nonce: rds.nonce });
    client.send({ type_url: TYPE_URLS.extensionConfig, resource_names: ['scale_to_zero_buffer'] });
    const ecds = await client.next();
    client.send({ type_url: TYPE_URLS.extensionConfig, resource_names: ['scale_to_zero_buffer'], version_info: ecds.version_info, response_nonce: ecds.nonce });
    const answer = fetch(`${t.cp.adminUrl}/v1/hosts/alpha/scale-to-zero`, { method: 'POST' });
    // ACK the routes, reject the filter config.
    for (let i = 0; i < 2; i++) {
      const r = await client.next();
      const names = r.type_url === TYPE_URLS.route ? ['gateway_routes'] : ['scale_to_zero_buffer'];
      if (r.type_url === TYPE_URLS.extensionConfig) {
        client.send({ type_url: r.type_url, resource_names: names, version_info: ecds.version_info, response_nonce: r.nonce, error_detail: { code: 13, message: 'filter refused it' } });
      } else {
        client.send({ type_url: r.type_url, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });
      }
    }
    const body = (await (await answer).json()) as { changed: boolean; notApplied: unknown[] };
    expect(body.changed).to.equal(true);
    expect(body.notApplied).to.deep.equal([{ node: 'node-1', stream: body.notApplied.length ? (body.notApplied[0] as { stream: number }).stream : 0, client: 'envoy', type: 'extensionConfig', reason: 'rejected', message: 'filter refused it' }]);
  });

  // xds_protocol "How the client specifies what resources to return": a client that names resources gets
  // those (LDS and CDS too); only a wildcard ("*" or the legacy empty first request) gets every one.
  it('sends only the clusters a client names, and every cluster to a wildcard subscription', async () => {
    client.send({ node, type_url: TYPE_URLS.cluster, resource_names: ['host_alpha'] });
    const cds = await client.next();
    expect(resourceNames(cds)).to.deep.equal(['host_alpha']);
    client.send({ type_url: TYPE_URLS.cluster, resource_names: ['host_alpha', '*'], version_info: cds.version_info, response_nonce: cds.nonce });
    const all = await client.next();
    expect(resourceNames(all).sort()).to.deep.equal(['host_alpha', 'host_beta', 'scale_to_zero_control_plane']);
  });

  it('does not send the gateway listener to a client that subscribes to another listener by name', async () => {
    client.send({ node, type_url: TYPE_URLS.listener, resource_names: ['some.other.listener'] });
    const lds = await client.next();
    expect(lds.resources).to.have.length(0);
    const wildcard = new RawAdsClient(t.cp.xdsPort);
    try {
      wildcard.send({ node: { id: 'node-2' }, type_url: TYPE_URLS.listener });
      expect(resourceNames(await wildcard.next())).to.deep.equal(['gateway_http']);
    } finally {
      wildcard.close();
    }
  });

  // Envoy treats an ECDS response that omits a name it subscribed to as that config being removed.
  it('sends every subscribed extension config name in every ECDS response', async () => {
    client.send({ node, type_url: TYPE_URLS.extensionConfig, resource_names: ['scale_to_zero_buffer'] });
    const first = await client.next();
    expect(resourceNames(first)).to.deep.equal(['scale_to_zero_buffer']);
    client.send({ type_url: TYPE_URLS.extensionConfig, resource_names: ['scale_to_zero_buffer'], version_info: first.version_info, response_nonce: first.nonce });
    for (const host of ['alpha', 'beta']) {
      await mark(t.cp, host, 'test');
      const update = await client.next();
      expect(resourceNames(update)).to.deep.equal(['scale_to_zero_buffer']);
    }
  });

  it('pushes a resource the client asked for before it existed, once it appears', async () => {
    client.send({ node, type_url: TYPE_URLS.endpoint, resource_names: ['host_gamma'] });
    const empty = await client.next();
    expect(empty.resources).to.have.length(0);
    client.send({ type_url: TYPE_URLS.endpoint, resource_names: ['host_gamma'], version_info: empty.version_info, response_nonce: empty.nonce });
    await t.writeConfig(simpleHosts(['alpha', 'beta', 'gamma']));
    const reloaded = t.cp.reloadConfig();
    const later = await client.next();
    expect(resourceNames(later)).to.deep.equal(['host_gamma']);
    client.send({ type_url: TYPE_URLS.endpoint, resource_names: ['host_gamma'], version_info: later.version_info, response_nonce: later.nonce });
    expect((await reloaded).ok).to.equal(true);
  });

  // Make before break (xds_protocol "eventual consistency considerations"): CDS, EDS, LDS, RDS, then ECDS.
  it('pushes one change to every type in make-before-break order on one stream', async () => {
    const order = [TYPE_URLS.extensionConfig, TYPE_URLS.route, TYPE_URLS.listener, TYPE_URLS.endpoint, TYPE_URLS.cluster];
    for (const typeUrl of order) {
      const names = typeUrl === TYPE_URLS.endpoint ? ['host_alpha', 'host_beta', 'host_gamma'] : typeUrl === TYPE_URLS.route ? ['gateway_routes'] : typeUrl === TYPE_URLS.extensionConfig ? ['scale_to_zero_buffer'] : [];
      client.send({ ...(typeUrl === order[0] ? { node } : {}), type_url: typeUrl, resource_names: names });
      const r = await client.next();
      client.send({ type_url: typeUrl, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });
    }
    // A new host that starts scaled to zero changes clusters, endpoints, routes, the filter config, and
    // (through the longest hold timeout) nothing in the listener; a new hold timeout changes the listener too.
    await t.writeConfig({
      ...simpleHosts(['alpha', 'beta']),
      hosts: [...(simpleHosts(['alpha', 'beta']).hosts as unknown[]), { name: 'gamma', domains: ['gamma.test'], endpoints: [{ address: '127.0.0.1', port: 20002 }], initialState: 'scaled_to_zero', buffer: { holdTimeoutMs: 600_000 } }],
    });
    const reloaded = t.cp.reloadConfig();
    const received: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await client.next();
      received.push(r.type_url);
      // ACK like Envoy: the publisher waits for new clusters and endpoints to be ACKed before the rest.
      const names = r.type_url === TYPE_URLS.endpoint ? ['host_alpha', 'host_beta', 'host_gamma'] : r.type_url === TYPE_URLS.route ? ['gateway_routes'] : r.type_url === TYPE_URLS.extensionConfig ? ['scale_to_zero_buffer'] : [];
      client.send({ type_url: r.type_url, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });
    }
    await reloaded;
    expect(received).to.deep.equal([TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route, TYPE_URLS.extensionConfig]);
  });

  it('debounces a burst of changes into one push', async () => {
    // Each mark persists the state file (fsync) before it schedules a push: on a loaded machine ten of them
    // can be further apart than the default 5 ms quiet window. A wider window tests the same coalescing.
    client.close();
    await t.close();
    t = await startTestControlPlane(simpleHosts(['h0', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8', 'h9']), { publisher: { quietMs: 200, maxDelayMs: 5_000 } });
    client = new RawAdsClient(t.cp.xdsPort);
    client.send({ node, type_url: TYPE_URLS.extensionConfig, resource_names: ['scale_to_zero_buffer'] });
    const first = await client.next();
    client.send({ type_url: TYPE_URLS.extensionConfig, resource_names: ['scale_to_zero_buffer'], version_info: first.version_info, response_nonce: first.nonce });
    const pushesBefore = t.cp.publisher.publishCount;
    await Promise.all(Array.from({ length: 10 }, (_, i) => mark(t.cp, `h${i}`, 'burst')));
    expect(t.cp.publisher.publishCount - pushesBefore).to.equal(1);
    const update = await client.next();
    await roundTrip(client);
    expect(client.pending).to.equal(0);
    const config = JSON.parse(extractFilterJson(update)) as { hosts: { name: string }[] };
    expect(config.hosts.map((h) => h.name)).to.have.length(10);
  });

  it('forgets the watches of closed streams', async () => {
    const clients = Array.from({ length: 20 }, () => new RawAdsClient(t.cp.xdsPort));
    for (const [i, c] of clients.entries()) c.send({ node: { id: `n${i}` }, type_url: TYPE_URLS.cluster });
    await Promise.all(clients.map((c) => c.next()));
    expect(t.cp.cache.watchCount).to.equal(20);
    let closedCount = 0;
    const allClosed = new Promise<void>((resolve) =>
      t.cp.events.on('stream-close', () => {
        if (++closedCount === clients.length) resolve();
      }),
    );
    for (const c of clients) c.close();
    await allClosed;
    expect(t.cp.cache.watchCount).to.equal(0);
  });
});

/** Marks a host at the protocol level (store + publisher), without the scaling controller's wait for ACKs. */
async function mark(cp: ControlPlane, host: string, _reason: string): Promise<void> {
  await cp.store.setScaledToZero(host, true);
  await cp.publisher.schedule();
}

/** A request/response pair on a second type: everything sent before it has been processed by then. */
async function roundTrip(client: RawAdsClient): Promise<void> {
  const before = client.pending;
  client.send({ type_url: TYPE_URLS.listener, resource_names: [] });
  await client.next();
  expect(client.pending).to.equal(Math.max(0, before - 1));
}

async function expectStreamError(client: RawAdsClient, code: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!client.error && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(client.error?.code).to.equal(code);
}

function extractFilterJson(response: { resources: { value: Uint8Array }[] }): string {
  const text = Buffer.from(response.resources[0]!.value).toString('utf8');
  const start = text.indexOf('{"generation"');
  return text.slice(start, text.lastIndexOf('}') + 1);
}
