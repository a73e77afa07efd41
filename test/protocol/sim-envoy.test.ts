// The benchmark's simulated Envoy against our real control plane (in-process, loopback): it must subscribe
// the way Envoy does, so every type reaches it, and its ACKs must be the ones the server classifies as
// ACKs. How fast is for bench/; here only what arrives and what is ACKed.
import { expect } from 'chai';
import { SimEnvoy } from '../../bench/lib/sim-envoy.ts';
import type { Snapshot } from '../../snapshots/build.ts';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { eventually } from '../support/eventually.ts';
import { simpleHosts, startTestControlPlane, type TestControlPlane } from '../support/control-plane.ts';

const KINDS: ResourceKind[] = ['cluster', 'endpoint', 'listener', 'route', 'extensionConfig'];

describe('bench: simulated Envoy (state of the world)', () => {
  let t: TestControlPlane;
  let sims: SimEnvoy[] = [];

  beforeEach(async () => {
    t = await startTestControlPlane(simpleHosts(['alpha', 'beta']));
  });
  afterEach(async () => {
    for (const s of sims) s.close();
    sims = [];
    await t.close();
  });

  async function current(): Promise<Snapshot> {
    return (await t.cp.publisher.schedule()).snapshot;
  }

  it('subscribes like Envoy (CDS/LDS wildcard, then EDS/RDS/ECDS by name) and ACKs every type at the served version', async () => {
    const serverAcks: { streamId: number; kind: ResourceKind; version: string }[] = [];
    t.cp.events.on('ack', (e) => serverAcks.push(e));
    const requested = new Map<ResourceKind, string[]>();
    t.cp.events.on('request', (e) => requested.set(e.kind, e.names));
    const snapshot = await current();
    const sim = new SimEnvoy('sim-test', t.cp.xdsPort);
    sims.push(sim);
    sim.start();
    await eventually(() => {
      for (const k of KINDS) expect(sim.ackedVersion(k), k).to.equal(snapshot.versions[k]);
    });
    // The names it learned are the ones Envoy would ask for.
    expect([...requested.get('endpoint')!].sort()).to.deep.equal([...snapshot.resources.endpoint.keys()].sort());
    expect([...requested.get('route')!].sort()).to.deep.equal([...snapshot.resources.route.keys()].sort());
    expect([...requested.get('extensionConfig')!].sort()).to.deep.equal([...snapshot.resources.extensionConfig.keys()].sort());
    expect(requested.get('cluster')).to.deep.equal([]);
    // The server saw an ACK of every type at those versions.
    for (const k of KINDS) expect(serverAcks.some((a) => a.kind === k && a.version === snapshot.versions[k]), k).to.equal(true);
    expect(sim.error).to.equal(undefined);
  });

  it('stamps a one-host endpoint change, and again when the version comes back', async () => {
    const sim = new SimEnvoy('sim-test', t.cp.xdsPort);
    sims.push(sim);
    sim.start();
    const first = await current();
    await eventually(() => expect(sim.ackedVersion('endpoint')).to.equal(first.versions.endpoint));
    const firstStamp = sim.ackedAt('endpoint', first.versions.endpoint)!;

    const changed = simpleHosts(['alpha', 'beta']) as { hosts: { endpoints: { port: number }[] }[] };
    changed.hosts[0]!.endpoints[0]!.port = 29_999;
    await t.writeConfig(changed);
    expect((await t.cp.reloadConfig()).ok).to.equal(true);
    const second = await current();
    expect(second.versions.endpoint).to.not.equal(first.versions.endpoint);
    await eventually(() => expect(sim.ackedVersion('endpoint')).to.equal(second.versions.endpoint));
    // Only endpoints changed: the other types stay at the versions it ACKed before.
    for (const k of KINDS.filter((k) => k !== 'endpoint')) expect(sim.ackedVersion(k), k).to.equal(first.versions[k]);

    await t.writeConfig(simpleHosts(['alpha', 'beta']));
    expect((await t.cp.reloadConfig()).ok).to.equal(true);
    await eventually(() => expect(sim.ackedVersion('endpoint')).to.equal(first.versions.endpoint));
    // The returning version is stamped anew, not left at its first arrival.
    expect(sim.ackedAt('endpoint', first.versions.endpoint)!).to.be.greaterThan(firstStamp);
  });
});

describe('bench: simulated Envoy (delta)', () => {
  let t: TestControlPlane;
  let sims: SimEnvoy[] = [];

  beforeEach(async () => {
    t = await startTestControlPlane(simpleHosts(['alpha', 'beta', 'gamma']));
  });
  afterEach(async () => {
    for (const s of sims) s.close();
    sims = [];
    await t.close();
  });

  it('subscribes by name to what the clusters and listeners it holds name, decodes every resource, and unsubscribes what a removal drops', async () => {
    const subscribed = new Map<ResourceKind, string[]>();
    t.cp.events.on('request', (e) => subscribed.set(e.kind, e.names));
    const first = (await t.cp.publisher.schedule()).snapshot;
    const sim = new SimEnvoy('sim-delta-test', t.cp.xdsPort, 'delta');
    sims.push(sim);
    sim.start();
    await eventually(() => {
      for (const k of KINDS) expect(sim.ackedVersion(k), k).to.equal(first.versions[k]);
    });
    expect([...subscribed.get('endpoint')!].sort()).to.deep.equal([...first.resources.endpoint.keys()].sort());
    expect([...subscribed.get('route')!].sort()).to.deep.equal([...first.resources.route.keys()].sort());
    expect([...subscribed.get('extensionConfig')!].sort()).to.deep.equal([...first.resources.extensionConfig.keys()].sort());
    const total = KINDS.reduce((n, k) => n + first.resources[k].size, 0);
    expect(sim.resourcesDecoded).to.equal(total);

    // A host removed: its cluster comes as a removal, and the EDS subscription loses its name.
    await t.writeConfig(simpleHosts(['alpha', 'gamma']));
    expect((await t.cp.reloadConfig()).ok).to.equal(true);
    const second = (await t.cp.publisher.schedule()).snapshot;
    await eventually(() => {
      for (const k of KINDS) expect(sim.ackedVersion(k), k).to.equal(second.versions[k]);
      expect([...subscribed.get('endpoint')!].sort()).to.deep.equal([...second.resources.endpoint.keys()].sort());
    });
    expect(sim.error).to.equal(undefined);
  });
});
