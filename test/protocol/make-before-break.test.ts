// Make before break, counted on the wire (state of the world, raw client over gRPC): what each kind of
// change sends, in which order, how often EDS goes out, and whether the control plane waits for an ACK.
import { expect } from 'chai';
import { TYPE_URLS } from '../../snapshots/type-urls.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import type { ControlPlane } from '../../xds-server/control-plane.ts';
import type { DecodedResponse } from '../../xds-server/protos/codec.ts';
import { RawAdsClient, resourceNames } from '../support/ads-client.ts';
import { simpleHosts, startTestControlPlane, type TestControlPlane } from '../support/control-plane.ts';

const node = { id: 'mbb-1', user_agent_name: 'envoy' };
const NAMES: Record<string, string[]> = {
  [TYPE_URLS.endpoint]: ['host_alpha', 'host_beta', 'host_gamma'],
  [TYPE_URLS.route]: ['gateway_routes'],
  [TYPE_URLS.extensionConfig]: ['scale_to_zero_buffer'],
};
const namesOf = (typeUrl: string): string[] => NAMES[typeUrl] ?? [];
const short = (typeUrl: string): string => ({ [TYPE_URLS.cluster]: 'CDS', [TYPE_URLS.endpoint]: 'EDS', [TYPE_URLS.listener]: 'LDS', [TYPE_URLS.route]: 'RDS', [TYPE_URLS.extensionConfig]: 'ECDS' })[typeUrl] ?? typeUrl;

function ack_(client: RawAdsClient, r: DecodedResponse): void {
  client.send({ type_url: r.type_url, resource_names: namesOf(r.type_url), version_info: r.version_info, response_nonce: r.nonce });
}

async function subscribe(client: RawAdsClient): Promise<void> {
  for (const [i, typeUrl] of [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route, TYPE_URLS.extensionConfig].entries()) {
    client.send({ ...(i === 0 ? { node } : {}), type_url: typeUrl, resource_names: namesOf(typeUrl) });
    ack_(client, await client.next());
  }
}

/**
 * Runs `act` and returns every response the server wrote meanwhile (its own 'response' events, in write
 * order), once each has also arrived on the wire. With `ack`, the client ACKs each as it arrives (as Envoy
 * would); without, it ACKs nothing until `act` is done, so a control plane that waited for an ACK stalls
 * (its settle timeout is 60 s here, far beyond the test's).
 */
async function collect(cp: ControlPlane, client: RawAdsClient, act: () => Promise<unknown>, ack = true): Promise<DecodedResponse[]> {
  const written: string[] = [];
  const record = (e: { nodeId: string; kind: string }): void => {
    if (e.nodeId === node.id) written.push(e.kind);
  };
  cp.events.on('response', record);
  const got: DecodedResponse[] = [];
  let finished = false;
  const done = act().finally(() => {
    finished = true;
  });
  try {
    // While the publish runs, one response at a time (ACKed if asked); a response that is still on its way
    // when it ends is read after.
    let reading: Promise<DecodedResponse> | undefined;
    while (!finished) {
      reading ??= client.next(10_000);
      const r = await Promise.race([reading, done.then(() => undefined)]);
      if (r === undefined) break;
      reading = undefined;
      got.push(r);
      if (ack) ack_(client, r);
    }
    await done;
    while (got.length < written.length) {
      const r = await (reading ?? client.next(10_000));
      reading = undefined;
      got.push(r);
      if (ack) ack_(client, r);
    }
  } finally {
    cp.events.off('response', record);
  }
  if (!ack) for (const r of got) ack_(client, r);
  return got;
}

function config(hosts: Record<string, { port: number; held?: boolean }>) {
  return {
    listener: { address: '127.0.0.1', port: 10000 },
    hosts: Object.entries(hosts).map(([name, h]) => ({ name, domains: [`${name}.test`], endpoints: [{ address: '127.0.0.1', port: h.port }], ...(h.held ? { initialState: 'scaled_to_zero' } : {}) })),
  };
}

async function change(cp: ControlPlane, next: Record<string, unknown>, release?: string): Promise<void> {
  const valid = validateGatewayConfig(next);
  if (!valid.ok) throw new Error('bad test config');
  await Promise.all([cp.store.replaceConfig(valid.value), ...(release ? [cp.store.setScaledToZero(release, false, 'test')] : [])]);
  await cp.publisher.schedule();
}

describe('make before break, counted (state of the world)', () => {
  let t: TestControlPlane;
  let client: RawAdsClient;

  afterEach(async () => {
    client.close();
    await t.close();
  });

  it('sends new endpoints of an existing cluster and the release at once: EDS, RDS, ECDS, no wait for the EDS ACK', async () => {
    t = await startTestControlPlane(config({ alpha: { port: 20000, held: true }, beta: { port: 20001 } }), { publisher: { settleTimeoutMs: 60_000 } });
    client = new RawAdsClient(t.cp.xdsPort);
    await subscribe(client);
    // Nothing is ACKed until the publish is done: a control plane that waited for the EDS ACK would stall.
    const got = await collect(t.cp, client, () => change(t.cp, config({ alpha: { port: 21000, held: true }, beta: { port: 20001 } }), 'alpha'), false);
    expect(got.map((r) => short(r.type_url))).to.deep.equal(['EDS', 'RDS', 'ECDS']);
  });

  it('sends new hosts on new domains with their clusters at once: CDS, EDS, RDS, ECDS, no wait for an ACK', async () => {
    t = await startTestControlPlane(config({ alpha: { port: 20000 }, beta: { port: 20001 } }), { publisher: { settleTimeoutMs: 60_000 } });
    client = new RawAdsClient(t.cp.xdsPort);
    await subscribe(client);
    let published = false;
    const publish = change(t.cp, config({ alpha: { port: 20000 }, beta: { port: 20001 }, gamma: { port: 20002, held: true } })).then(() => void (published = true));
    // Nothing ACKed yet: a control plane that waited for the CDS/EDS ACK would send no routes (settle timeout 60 s).
    const got = [await client.next(), await client.next(), await client.next(), await client.next()];
    expect(got.map((r) => short(r.type_url))).to.deep.equal(['CDS', 'EDS', 'RDS', 'ECDS']);
    expect(resourceNames(got[0]!)).to.include('host_gamma');
    // The publish ends only once the new cluster is warm, so a later one (a release) cannot reach it cold.
    await new Promise((r) => setTimeout(r, 50));
    expect(published).to.equal(false);
    for (const r of got) ack_(client, r);
    await publish;
  });

  it('waits for the ACK of a new cluster before routes that move requests served before (a new host under a wildcard in force)', async () => {
    const wild = { name: 'wild', domains: ['*.test'], endpoints: [{ address: '127.0.0.1', port: 20009 }] };
    const base = config({ alpha: { port: 20000 }, beta: { port: 20001 } });
    t = await startTestControlPlane({ ...base, hosts: [...(base.hosts as unknown[]), wild] }, { publisher: { settleTimeoutMs: 60_000 } });
    client = new RawAdsClient(t.cp.xdsPort);
    await subscribe(client);
    const next = config({ alpha: { port: 20000 }, beta: { port: 20001 }, gamma: { port: 20002 } });
    const publish = change(t.cp, { ...next, hosts: [...(next.hosts as unknown[]), wild] });
    const first = [await client.next(), await client.next()];
    expect(first.map((r) => short(r.type_url))).to.deep.equal(['CDS', 'EDS']);
    // gamma.test was served by *.test: its new route must not come before its cluster is warm.
    let early: DecodedResponse | undefined;
    await client.next(300).then((r) => void (early = r), () => undefined);
    expect(early && short(early.type_url), 'a response before the CDS/EDS ACK').to.equal(undefined);
    for (const r of first) ack_(client, r);
    expect(short((await client.next()).type_url)).to.equal('RDS');
    await publish;
  });

  it('removes a cluster after the routes that used it, and sends EDS once', async () => {
    t = await startTestControlPlane(config({ alpha: { port: 20000 }, beta: { port: 20001 }, gamma: { port: 20002 } }));
    client = new RawAdsClient(t.cp.xdsPort);
    await subscribe(client);
    const got = await collect(t.cp, client, () => change(t.cp, config({ alpha: { port: 20000 }, beta: { port: 20001 } })));
    const order = got.map((r) => short(r.type_url));
    expect(order.indexOf('CDS')).to.be.greaterThan(order.indexOf('RDS'));
    expect(order.filter((x) => x === 'EDS').length).to.be.at.most(1);
    expect(resourceNames(got.find((r) => r.type_url === TYPE_URLS.cluster)!)).to.not.include('host_gamma');
  });

  it('keeps the release path unchanged when only the filter config changes: ECDS and RDS only', async () => {
    t = await startTestControlPlane(simpleHosts(['alpha', 'beta']));
    client = new RawAdsClient(t.cp.xdsPort);
    await subscribe(client);
    await t.cp.store.setScaledToZero('alpha', true, 'test');
    const got = await collect(t.cp, client, () => t.cp.publisher.schedule());
    expect(got.map((r) => short(r.type_url))).to.deep.equal(['RDS', 'ECDS']);
  });
});
