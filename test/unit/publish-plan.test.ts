// Which publishes may send routes alongside clusters that are still warming, and which must wait for them:
// decided from the two snapshots alone (publish-plan.ts).
import { expect } from 'chai';
import { buildSnapshot, snapshotFromResources, type Snapshot } from '../../snapshots/build.ts';
import type { Resource } from '../../snapshots/resource.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import { DomainIndex, domainsOverlap, planOf } from '../../xds-server/publish-plan.ts';

interface Host {
  name: string;
  domains?: string[];
  held?: boolean;
  port?: number;
}

function snapshot(hosts: Host[]): Snapshot {
  const config = validateGatewayConfig({
    listener: { port: 10000 },
    hosts: hosts.map((h, i) => ({ name: h.name, domains: h.domains ?? [`${h.name}.test`], endpoints: [{ address: '127.0.0.1', port: h.port ?? 9000 + i }] })),
  });
  if (!config.ok) throw new Error(JSON.stringify(config.errors));
  const built = buildSnapshot({ model: fileConfigToModel(config.value), held: new Set(hosts.filter((h) => h.held).map((h) => h.name)), generation: 1, filterWasmPath: '/f.wasm' });
  if (!built.ok) throw new Error(JSON.stringify(built.errors));
  return built.value;
}

describe('publish plan (make before break)', () => {
  it('sends new hosts on new domains alongside their new clusters (a cold load)', () => {
    expect(planOf(snapshot([]), snapshot([{ name: 'a' }, { name: 'b' }]))).to.equal('warm-alongside');
    expect(planOf(snapshot([{ name: 'a' }]), snapshot([{ name: 'a' }, { name: 'b' }]))).to.equal('warm-alongside');
  });

  it('decides a cold load (no virtual host in force) without searching any new virtual host for its clusters', () => {
    const before = snapshot([]);
    const loaded = snapshot([{ name: 'a' }, { name: 'b' }]);
    let routeReads = 0;
    // The same tables, with virtual hosts that count reads of their routes (where the clusters are named).
    const routes = new Map([...loaded.resources.route].map(([name, table]) => {
      const counted = (table.virtual_hosts as { routes: unknown }[]).map((vh) => {
        const copy = { ...vh };
        return Object.defineProperty(copy, 'routes', { enumerable: true, get: () => (routeReads++, vh.routes) });
      });
      return [name, { ...table, virtual_hosts: counted } as Resource];
    }));
    const next = snapshotFromResources({ ...loaded.resources, route: routes });
    if (!next.ok) throw new Error(JSON.stringify(next.errors));
    routeReads = 0;
    expect(planOf(before, next.value)).to.equal('warm-alongside');
    expect(routeReads).to.equal(0);
  });

  it('also when the filter config only adds holds (new hosts that start scaled to zero)', () => {
    expect(planOf(snapshot([{ name: 'a', held: true }]), snapshot([{ name: 'a', held: true }, { name: 'b', held: true }]))).to.equal('warm-alongside');
  });

  it('waits for the new clusters when the same publish releases a held host', () => {
    expect(planOf(snapshot([{ name: 'a', held: true }]), snapshot([{ name: 'a' }, { name: 'b' }]))).to.equal('warm-first');
  });

  it('waits when a domain in force moves to a new cluster: a renamed host, or a new host under a wildcard in force', () => {
    // Renamed: the old cluster goes too, so it also has to be removed last.
    expect(planOf(snapshot([{ name: 'a' }, { name: 'b' }]), snapshot([{ name: 'a' }, { name: 'b2', domains: ['b.test'] }]))).to.equal('warm-first');
    expect(planOf(snapshot([{ name: 'wild', domains: ['*.test'] }]), snapshot([{ name: 'wild', domains: ['*.test'] }, { name: 'b' }]))).to.equal('warm-first');
  });

  it('waits when a virtual host in force gets a route to a new cluster', () => {
    const before = snapshot([{ name: 'a' }]);
    const withB = snapshot([{ name: 'a' }, { name: 'b' }]);
    // a's virtual host (domain a.test, served before) now forwards to b's new cluster; b's own host is gone.
    const routes = new Map([...withB.resources.route].map(([name, table]) => {
      const vhosts = (table.virtual_hosts as { name: string; domains: string[] }[]).filter((vh) => vh.domains.includes('a.test'));
      const retargeted = JSON.parse(JSON.stringify(vhosts).replaceAll('"host_a"', '"host_b"')) as unknown[];
      return [name, { ...table, virtual_hosts: retargeted } as Resource];
    }));
    const next = snapshotFromResources({ ...withB.resources, route: routes });
    if (!next.ok) throw new Error(JSON.stringify(next.errors));
    expect(JSON.stringify([...next.value.resources.route.values()])).to.include('host_b');
    expect(planOf(before, next.value)).to.equal('warm-first');
  });

  it('keeps the other plans: endpoints only at once, a removal last, a changed cluster first', () => {
    expect(planOf(snapshot([{ name: 'a', held: true }]), snapshot([{ name: 'a', port: 7000 }]))).to.equal('at-once');
    expect(planOf(snapshot([{ name: 'a' }, { name: 'b' }]), snapshot([{ name: 'a' }]))).to.equal('remove-last');
    const before = snapshot([{ name: 'a' }]);
    const after = snapshot([{ name: 'a' }, { name: 'b' }]);
    const changed = new Map([...after.resources.cluster].map(([n, c]) => [n, n === 'host_a' ? ({ ...c, connect_timeout: { seconds: 9 } } as Resource) : c]));
    const next = snapshotFromResources({ ...after.resources, cluster: changed });
    if (!next.ok) throw new Error(JSON.stringify(next.errors));
    expect(planOf(before, next.value)).to.equal('warm-first');
  });

  it('domain patterns overlap as Envoy matches them (port ignored; two wildcards are taken to overlap)', () => {
    expect(domainsOverlap('a.test', 'a.test')).to.equal(true);
    expect(domainsOverlap('A.test', 'a.TEST')).to.equal(true);
    expect(domainsOverlap('a.test', 'b.test')).to.equal(false);
    expect(domainsOverlap('*', 'b.test')).to.equal(true);
    expect(domainsOverlap('*.test', 'b.test')).to.equal(true);
    expect(domainsOverlap('b.test', '*.test')).to.equal(true);
    expect(domainsOverlap('*.test', 'b.example')).to.equal(false);
    expect(domainsOverlap('api.*', 'api.test')).to.equal(true);
    expect(domainsOverlap('api.*', 'web.test')).to.equal(false);
    expect(domainsOverlap('*.a', '*.b')).to.equal(true);
  });

  it('the index of the domains in force answers as domainsOverlap against each of them', () => {
    const samples = ['a.test', 'A.TEST', 'b.test', '*', '*.test', '*.example', 'api.*', 'api.test', 'web.test', 'x.example', '*.a', 'z.a'];
    const sets = [[], ['a.test'], ['*.test'], ['api.*', 'x.example'], ['b.test', '*.a'], samples];
    for (const inForce of sets) {
      const index = new DomainIndex(inForce);
      for (const d of samples) expect(index.overlaps(d), `${d} against [${inForce.join(', ')}]`).to.equal(inForce.some((b) => domainsOverlap(b, d)));
    }
  });
});
