// Per-gateway snapshots over real gRPC with raw clients: an Envoy that names its gateway in
// node.metadata["scaletozero.dev/gateway"] gets that gateway's listeners, routes, clusters, endpoints and
// filter config and nothing of another gateway; one that names none gets every gateway (as before).
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import type { DesiredState } from '../../snapshots/desired-state.ts';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { AdsEvents } from '../../xds-server/ads/events.ts';
import { AdsService } from '../../xds-server/ads/service.ts';
import { GATEWAY_METADATA_KEY, SnapshotCache } from '../../xds-server/cache/snapshot-cache.ts';
import { silentLogger } from '../../xds-server/log.ts';
import type { DecodedResponse } from '../../xds-server/protos/codec.ts';
import { Publisher } from '../../xds-server/publisher.ts';
import { RawAdsClient, resourceNames } from '../support/ads-client.ts';
import { twoGatewayModel, twoGatewayState } from '../support/two-gateways.ts';

interface Served {
  port: number;
  publisher: Publisher;
  cache: SnapshotCache;
  set(state: DesiredState): void;
  close(): void;
}

async function serve(initial: DesiredState): Promise<Served> {
  let desired = initial;
  const events = new AdsEvents();
  const cache = new SnapshotCache(events);
  const publisher = new Publisher(() => desired, cache, silentLogger, { quietMs: 1, urgentQuietMs: 1, maxDelayMs: 5, settleTimeoutMs: 200 });
  await publisher.publishNow();
  const server = new grpc.Server();
  new AdsService(cache, events, silentLogger).register(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, publisher, cache, set: (s) => (desired = s), close: () => server.forceShutdown() };
}

function nodeOf(id: string, gateway?: string): Record<string, unknown> {
  return { id, user_agent_name: 'envoy', ...(gateway ? { metadata: { fields: { [GATEWAY_METADATA_KEY]: { stringValue: gateway } } } } : {}) };
}

/** Subscribes like Envoy, in its order, ACKing each first answer; returns the names it got per type. */
async function subscribe(client: RawAdsClient, node: Record<string, unknown>): Promise<Record<string, string[]>> {
  const got: Record<string, string[]> = {};
  const ask = async (typeUrl: string, names: string[], first = false): Promise<void> => {
    client.send({ ...(first ? { node } : {}), type_url: typeUrl, resource_names: names });
    const r = await client.next();
    got[typeUrl] = resourceNames(r).sort();
    client.send({ type_url: typeUrl, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });
  };
  await ask(TYPE_URLS.cluster, [], true);
  await ask(TYPE_URLS.endpoint, got[TYPE_URLS.cluster]!);
  await ask(TYPE_URLS.listener, []);
  await ask(TYPE_URLS.route, ['gw_a_routes', 'gw_b_routes']);
  await ask(TYPE_URLS.extensionConfig, ['scale_to_zero_buffer']);
  return got;
}

function filterHosts(response: DecodedResponse): string[] {
  // The filter's JSON travels verbatim inside the Wasm config's Any bytes.
  const raw = Buffer.from(response.resources[0]!.value).toString('utf8');
  const json = JSON.parse(raw.slice(raw.indexOf('{"generation"'), raw.lastIndexOf('}') + 1)) as { hosts: { name: string }[] };
  return json.hosts.map((h) => h.name);
}

describe('ADS protocol: per-gateway snapshots', () => {
  let s: Served;
  const clients: RawAdsClient[] = [];
  const client = (): RawAdsClient => {
    const c = new RawAdsClient(s.port);
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    s = await serve(twoGatewayState());
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    s.publisher.close();
    s.close();
  });

  it('sends each gateway\'s Envoy only its own listeners, routes, clusters and endpoints; an Envoy naming none gets all', async () => {
    const a = await subscribe(client(), nodeOf('envoy-a', 'ns/a'));
    const b = await subscribe(client(), nodeOf('envoy-b', 'ns/b'));
    const all = await subscribe(client(), nodeOf('envoy-any'));
    expect(a).to.deep.equal({
      [TYPE_URLS.cluster]: ['c_a', 'c_shared'],
      [TYPE_URLS.endpoint]: ['c_a', 'c_shared'],
      [TYPE_URLS.listener]: ['gw_a'],
      [TYPE_URLS.route]: ['gw_a_routes'],
      [TYPE_URLS.extensionConfig]: ['scale_to_zero_buffer'],
    });
    expect(b).to.deep.equal({
      [TYPE_URLS.cluster]: ['c_b', 'c_shared'],
      [TYPE_URLS.endpoint]: ['c_b', 'c_shared'],
      [TYPE_URLS.listener]: ['gw_b'],
      [TYPE_URLS.route]: ['gw_b_routes'],
      [TYPE_URLS.extensionConfig]: ['scale_to_zero_buffer'],
    });
    expect(all[TYPE_URLS.cluster]).to.deep.equal(['c_a', 'c_b', 'c_shared']);
    expect(all[TYPE_URLS.listener]).to.deep.equal(['gw_a', 'gw_b']);
    expect(all[TYPE_URLS.route]).to.deep.equal(['gw_a_routes', 'gw_b_routes']);
  });

  it('holds a backend only in the filter config of the gateways that route it', async () => {
    const ca = client();
    const cb = client();
    await subscribe(ca, nodeOf('envoy-a', 'ns/a'));
    await subscribe(cb, nodeOf('envoy-b', 'ns/b'));
    s.set(twoGatewayState(['a', 'shared'], 2));
    await s.publisher.schedule();
    // Each gets its routes and filter config again (the filter generation moved for both).
    const byType = async (c: RawAdsClient): Promise<Map<string, DecodedResponse>> => {
      const out = new Map<string, DecodedResponse>();
      for (let i = 0; i < 2; i++) {
        const r = await c.next();
        out.set(r.type_url, r);
      }
      return out;
    };
    const ra = await byType(ca);
    const rb = await byType(cb);
    expect([...ra.keys()].sort()).to.deep.equal([TYPE_URLS.route, TYPE_URLS.extensionConfig].sort());
    expect(filterHosts(ra.get(TYPE_URLS.extensionConfig)!)).to.deep.equal(['a', 'shared']);
    expect(filterHosts(rb.get(TYPE_URLS.extensionConfig)!)).to.deep.equal(['shared']);
  });

  it('gives an Envoy of a gateway that does not exist yet an empty gateway, then its listener once it appears', async () => {
    const c = client();
    c.send({ node: nodeOf('envoy-c', 'ns/c'), type_url: TYPE_URLS.listener });
    const empty = await c.next();
    expect(empty.resources).to.have.length(0);
    c.send({ type_url: TYPE_URLS.listener, version_info: empty.version_info, response_nonce: empty.nonce });
    const model = twoGatewayModel();
    model.listeners.push({ ...model.listeners[1]!, name: 'gw_c', gateway: 'ns/c', port: 18003, routeConfigName: 'gw_c_routes' });
    s.set({ ...twoGatewayState(), model });
    await s.publisher.schedule();
    expect(resourceNames(await c.next())).to.deep.equal(['gw_c']);
    expect(s.cache.groups).to.include('gateway/ns/c');
  });
});
