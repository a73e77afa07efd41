// Delta ADS over real gRPC with a raw client against the file-mode control plane: the stream is served
// (no longer UNIMPLEMENTED), a one-host change sends one resource, and the backend controller waits for a
// delta client's ACK or NACK exactly as for a state-of-the-world one.
import { expect } from 'chai';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import type { DecodedDeltaResponse } from '../../xds-server/protos/codec.ts';
import { RawDeltaClient } from '../support/ads-client.ts';
import { simpleHosts, startTestControlPlane, type TestControlPlane } from '../support/control-plane.ts';

const node = { id: 'delta-1', user_agent_name: 'envoy' };
const names = (r: DecodedDeltaResponse): string[] => r.resources.map((x) => x.name).sort();

/** Subscribes like Envoy on delta and ACKs the first answers. */
async function subscribe(client: RawDeltaClient): Promise<void> {
  const asks: [string, string[]][] = [
    [TYPE_URLS.cluster, []],
    [TYPE_URLS.endpoint, ['host_alpha', 'host_beta']],
    [TYPE_URLS.listener, []],
    [TYPE_URLS.route, ['gateway_routes']],
    [TYPE_URLS.extensionConfig, ['scale_to_zero_buffer']],
  ];
  for (const [i, [typeUrl, subscribe]] of asks.entries()) {
    client.send({ ...(i === 0 ? { node } : {}), type_url: typeUrl, resource_names_subscribe: subscribe });
    const r = await client.next();
    expect(r.type_url).to.equal(typeUrl);
    client.send({ type_url: typeUrl, response_nonce: r.nonce });
  }
}

/** A request/response pair that proves everything sent before it was processed: subscribe to a new name. */
async function roundTrip(client: RawDeltaClient, name: string): Promise<void> {
  client.send({ type_url: TYPE_URLS.endpoint, resource_names_subscribe: [name] });
  const r = await client.next();
  expect(r.removed_resources).to.deep.equal([name]);
  client.send({ type_url: TYPE_URLS.endpoint, response_nonce: r.nonce, resource_names_unsubscribe: [name] });
}

describe('ADS protocol (delta, over gRPC)', () => {
  let t: TestControlPlane;
  let client: RawDeltaClient;

  beforeEach(async () => {
    t = await startTestControlPlane(simpleHosts(['alpha', 'beta']));
    client = new RawDeltaClient(t.cp.xdsPort);
  });
  afterEach(async () => {
    client.close();
    await t.close();
  });

  it('serves a delta client, shown as such in /v1/nodes', async () => {
    await subscribe(client);
    const nodes = (await (await fetch(`${t.cp.adminUrl}/v1/nodes`)).json()) as { nodes: { nodeId: string; variant: string; types: Record<string, { ackedVersion?: string }> }[] };
    expect(nodes.nodes.map((n) => [n.nodeId, n.variant])).to.deep.equal([['delta-1', 'delta']]);
    expect(nodes.nodes[0]!.types.cluster!.ackedVersion).to.equal(t.cp.cache.getSnapshot('default')!.versions.cluster);
  });

  it('sends one resource for a one-host endpoint change, and nothing else', async () => {
    await subscribe(client);
    const config = simpleHosts(['alpha', 'beta']) as { hosts: { endpoints: { port: number }[] }[] };
    config.hosts[1]!.endpoints[0]!.port = 29999;
    await t.writeConfig(config);
    const reloaded = t.cp.reloadConfig();
    const r = await client.next();
    expect([r.type_url, names(r), r.removed_resources]).to.deep.equal([TYPE_URLS.endpoint, ['host_beta'], []]);
    client.send({ type_url: r.type_url, response_nonce: r.nonce });
    expect((await reloaded).ok).to.equal(true);
    await roundTrip(client, 'host_none');
    expect(client.pending).to.equal(0);
  });

  it('lets a scale-to-zero wait for the delta client\'s ACK, and name it when it rejects', async () => {
    await subscribe(client);
    const answer = fetch(`${t.cp.adminUrl}/v1/hosts/alpha/scale-to-zero`, { method: 'POST' });
    const got: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await client.next();
      got.push(r.type_url);
      if (r.type_url === TYPE_URLS.extensionConfig) client.send({ type_url: r.type_url, response_nonce: r.nonce, error_detail: { code: 13, message: 'filter refused it' } });
      else client.send({ type_url: r.type_url, response_nonce: r.nonce });
    }
    expect(got).to.deep.equal([TYPE_URLS.route, TYPE_URLS.extensionConfig]);
    const body = (await (await answer).json()) as { changed: boolean; notApplied: { node: string; type: string; reason: string; message?: string }[] };
    expect(body.changed).to.equal(true);
    expect(body.notApplied.map((n) => [n.node, n.type, n.reason, n.message])).to.deep.equal([['delta-1', 'extensionConfig', 'rejected', 'filter refused it']]);
  });
});
