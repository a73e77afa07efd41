// A one-host change costs one host's work: what did not change is handed out again as the same (frozen)
// object, so its serialisation, hash and protobuf encoding are reused; what changed is built anew.
import { expect } from 'chai';
import { buildSnapshot, type Snapshot } from '../../../snapshots/build.ts';
import { internModel } from '../../../model/intern.ts';
import { BuildMemo, deepFrozen } from '../../../snapshots/memo.ts';
import type { Resource } from '../../../snapshots/resource.ts';
import { canonicalJson, versionOf } from '../../../snapshots/version.ts';
import { encodeResource } from '../../../snapshots/wire.ts';
import type { GatewayConfig } from '../../../sources/file/config.ts';
import { validateGatewayConfig } from '../../../sources/file/parse.ts';
import { keepUnchangedHosts } from '../../../sources/file/reload-diff.ts';
import { fileConfigToModel } from '../../../sources/file/to-model.ts';

function config(hosts: number, change: { host0Port?: number; extra?: boolean } = {}): GatewayConfig {
  const raw = {
    listener: { port: 10000 },
    hosts: [
      ...Array.from({ length: hosts }, (_, i) => ({ name: `h${i}`, domains: [`h${i}.test`], endpoints: [{ address: '127.0.0.1', port: i === 0 ? (change.host0Port ?? 9000) : 9000 + i }] })),
      ...(change.extra ? [{ name: 'extra', domains: ['extra.test'], endpoints: [{ address: '127.0.0.1', port: 8999 }] }] : []),
    ],
  };
  const result = validateGatewayConfig(raw);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

function snapshot(c: GatewayConfig, held: string[] = []): Snapshot {
  const result = buildSnapshot({ model: fileConfigToModel(c), held: new Set(held), generation: 1, filterWasmPath: '/f.wasm' });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

function virtualHosts(s: Snapshot): Map<string, unknown> {
  const routes = s.resources.route.get('gateway_routes') as unknown as { virtual_hosts: { name: string }[] };
  return new Map(routes.virtual_hosts.map((vh) => [vh.name, vh]));
}

describe('incremental rebuilds', () => {
  it('a reload that changes one host rebuilds only that host: every other resource and virtual host is the same object', () => {
    const before = config(50);
    const first = snapshot(before);
    const diff = keepUnchangedHosts(before, config(50, { host0Port: 9999 }));
    expect(diff).to.deep.include({ added: [], changed: ['h0'], removed: [] });
    const second = snapshot(diff.config);

    for (const kind of ['cluster', 'endpoint'] as const) {
      for (const [name, resource] of second.resources[kind]) {
        // The changed host's resources are built anew (its cluster to the same content).
        if (name === 'host_h0') expect(resource, name).to.not.equal(first.resources[kind].get(name));
        else expect(resource, `${kind} ${name}`).to.equal(first.resources[kind].get(name));
      }
    }
    // No route changed (h0's virtual host was rebuilt to the same content): the very same route table, so it is
    // neither encoded nor hashed again.
    expect(second.resources.route.get('gateway_routes')).to.equal(first.resources.route.get('gateway_routes'));
    expect(second.versions.route).to.equal(first.versions.route);
    expect(second.versions.cluster).to.equal(first.versions.cluster);
    expect(second.versions.endpoint).to.not.equal(first.versions.endpoint);
    expect(second.resources.endpoint.get('host_h0')).to.deep.include({ endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9999 } } } }] }] });
  });

  it('a route table with one virtual host changed is built anew around the same objects for the others', () => {
    const c = config(20);
    const first = snapshot(c);
    const second = snapshot(c, ['h3']);
    expect(second.resources.route.get('gateway_routes')).to.not.equal(first.resources.route.get('gateway_routes'));
    expect(second.versions.route).to.not.equal(first.versions.route);
    const [vh1, vh2] = [virtualHosts(first), virtualHosts(second)];
    for (const [name, vh] of vh2) if (name !== 'vh_h3') expect(vh, name).to.equal(vh1.get(name));
    expect(vh2.get('vh_h3')).to.not.deep.equal(vh1.get('vh_h3'));
  });

  it('a reload that changes nothing keeps every version; added and removed hosts are named', () => {
    const before = config(5);
    const first = snapshot(before);
    const same = keepUnchangedHosts(before, config(5));
    expect(same).to.deep.include({ added: [], changed: [], removed: [] });
    expect(snapshot(same.config).versions).to.deep.equal(first.versions);

    const grown = keepUnchangedHosts(before, config(5, { extra: true }));
    expect(grown).to.deep.include({ added: ['extra'], changed: [], removed: [] });
    const shrunk = keepUnchangedHosts(grown.config, config(4));
    expect(shrunk).to.deep.include({ added: [], changed: [], removed: ['h4', 'extra'] });
  });

  it('a virtual host is rebuilt when its backend is held or released, and comes back the same as before', () => {
    const c = config(3);
    const ready = snapshot(c);
    const held = snapshot(c, ['h1']);
    const readyAgain = snapshot(c);
    const [r, h, r2] = [virtualHosts(ready), virtualHosts(held), virtualHosts(readyAgain)];
    expect(h.get('vh_h1')).to.not.deep.equal(r.get('vh_h1'));
    expect(JSON.stringify(h.get('vh_h1'))).to.not.contain('"disabled":true');
    expect(JSON.stringify(r.get('vh_h1'))).to.contain('"disabled":true');
    expect(h.get('vh_h0')).to.equal(r.get('vh_h0'));
    expect(r2.get('vh_h1')).to.deep.equal(r.get('vh_h1'));
    expect(readyAgain.versions).to.deep.equal(ready.versions);
  });

  it("a held host's virtual host is rebuilt when only its backend changes (its cluster, its hold timeout past the route's idle timeout): the same host model object", () => {
    const model = fileConfigToModel(config(3));
    const build = (m: typeof model): Map<string, unknown> => {
      const result = buildSnapshot({ model: m, held: new Set(['h1']), generation: 1, filterWasmPath: '/f.wasm' });
      if (!result.ok) throw new Error(JSON.stringify(result.errors));
      return virtualHosts(result.value);
    };
    const withBackend = (change: (b: (typeof model.backends)[number]) => (typeof model.backends)[number]): typeof model => ({
      ...model,
      backends: model.backends.map((b) => (b.name === 'h1' ? change(b) : b)),
    });
    const before = build(model);
    const longer = build(withBackend((b) => ({ ...b, scaleToZero: { ...b.scaleToZero!, buffer: { ...b.scaleToZero!.buffer, holdTimeoutMs: 600_000 } } })));
    const moved = build(withBackend((b) => ({ ...b, clusterName: 'elsewhere' })));
    expect(longer.get('vh_h1')).to.not.deep.equal(before.get('vh_h1'));
    expect(JSON.stringify(moved.get('vh_h1'))).to.contain('"elsewhere"');
    expect(longer.get('vh_h0')).to.equal(before.get('vh_h0'));
  });

  it('what is shared between builds is frozen: changing it in place throws instead of going unseen', () => {
    const s = snapshot(config(2));
    const cluster = s.resources.cluster.get('host_h0') as Record<string, unknown>;
    expect(() => {
      cluster.connect_timeout = { seconds: 9 };
    }).to.throw(TypeError);
    expect(() => {
      (virtualHosts(s).get('vh_h0') as { domains: string[] }).domains.push('x.test');
    }).to.throw(TypeError);
  });

  it("a type's version hashes the bytes Envoy is sent: equal content gives equal versions, whatever the object or its key order", () => {
    const cluster = (port: number, order: 'a' | 'b'): Resource =>
      order === 'a'
        ? { name: 'c', type: 'STATIC', connect_timeout: { seconds: 1 }, load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } }
        : { load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { port_value: port, address: '127.0.0.1' } } } }] }], cluster_name: 'c' }, connect_timeout: { seconds: 1 }, type: 'STATIC', name: 'c' };
    const loose = cluster(80, 'a');
    const frozen = deepFrozen(cluster(80, 'b'));
    expect(versionOf('cluster', new Map([['c', frozen]]))).to.equal(versionOf('cluster', new Map([['c', loose]])));
    expect(versionOf('cluster', new Map([['c', cluster(81, 'a')]]))).to.not.equal(versionOf('cluster', new Map([['c', loose]])));
    // The same bytes are sent: the version costs no encoding of its own.
    expect(encodeResource('cluster', frozen)).to.equal(encodeResource('cluster', frozen));
    expect(Buffer.from(encodeResource('cluster', frozen)).equals(Buffer.from(encodeResource('cluster', loose)))).to.equal(true);
  });

  it('canonical JSON is key-order independent and matches JSON for plain data', () => {
    const value = { b: [1, undefined, { z: null, y: 'é\u2028' }], a: { '10': true, '2': false, c: NaN }, u: undefined };
    expect(canonicalJson(value)).to.equal('{"a":{"2":false,"10":true,"c":null},"b":[1,null,{"y":"é\u2028","z":null}]}');
    expect(canonicalJson({ x: 1, y: 2 })).to.equal(canonicalJson({ y: 2, x: 1 }));
    expect(JSON.parse(canonicalJson(value))).to.deep.equal(JSON.parse(JSON.stringify(value)));
  });
});

describe('internModel (a source that rebuilds its whole model)', () => {
  it('keeps the previous objects of unchanged backends and virtual hosts, so only the changed ones are rebuilt', () => {
    const first = fileConfigToModel(config(20));
    // A fresh translation: every object new, one backend's endpoint moved.
    const fresh = structuredClone(fileConfigToModel(config(20, { host0Port: 9999 })));
    const next = internModel(first, fresh);
    for (const b of next.backends) {
      if (b.name === 'h0') expect(b).to.equal(fresh.backends.find((x) => x.name === 'h0'));
      else expect(b, b.name).to.equal(first.backends.find((x) => x.name === b.name));
    }
    for (const vh of next.listeners[0]!.virtualHosts) expect(vh, vh.name).to.equal(first.listeners[0]!.virtualHosts.find((x) => x.name === vh.name));

    const a = buildSnapshot({ model: first, held: new Set(), generation: 1, filterWasmPath: '/f.wasm' });
    const b = buildSnapshot({ model: next, held: new Set(), generation: 1, filterWasmPath: '/f.wasm' });
    if (!a.ok || !b.ok) throw new Error('build failed');
    expect(b.value.resources.endpoint.get('host_h1')).to.equal(a.value.resources.endpoint.get('host_h1'));
    expect(b.value.resources.endpoint.get('host_h0')).to.not.equal(a.value.resources.endpoint.get('host_h0'));
    expect(b.value.versions.cluster).to.equal(a.value.versions.cluster);
    expect(b.value.versions.endpoint).to.not.equal(a.value.versions.endpoint);
  });

  it('hands back the previous model itself when a fresh translation says the same, and a new one when anything differs', () => {
    const first = fileConfigToModel(config(20));
    expect(internModel(first, structuredClone(first))).to.equal(first);
    expect(internModel(first, structuredClone(fileConfigToModel(config(20, { host0Port: 9999 }))))).to.not.equal(first);
    const movedListener = structuredClone(first);
    movedListener.listeners[0]!.port += 1;
    const next = internModel(first, movedListener);
    expect(next).to.not.equal(first);
    expect(next.listeners[0]!.port).to.equal(first.listeners[0]!.port + 1);
    const reordered = structuredClone(first);
    reordered.backends.reverse();
    expect(internModel(first, reordered)).to.not.equal(first);
  });

  it('takes added backends as they come and drops removed ones', () => {
    const first = fileConfigToModel(config(3));
    const next = internModel(first, structuredClone(fileConfigToModel(config(2, { extra: true }))));
    expect(next.backends.map((b) => b.name)).to.deep.equal(['h0', 'h1', 'extra']);
    expect(next.backends[0]).to.equal(first.backends[0]);
  });

  it('keeps what every host has alike once: clusters and routes share their common parts, the model shares the host config\'s', () => {
    const c = config(3);
    const s = snapshot(c);
    const clusters = [...s.resources.cluster.values()] as Record<string, unknown>[];
    for (const part of ['circuit_breakers', 'connect_timeout'] as const) {
      expect(clusters[1]![part], part).to.equal(clusters[0]![part]);
      expect(Object.isFrozen(clusters[0]![part]), `${part} frozen`).to.equal(true);
    }
    expect((clusters[1]!.eds_cluster_config as { eds_config: unknown }).eds_config).to.equal((clusters[0]!.eds_cluster_config as { eds_config: unknown }).eds_config);
    const routes = [...virtualHosts(s).values()].map((vh) => (vh as { routes: { match: unknown; route: { timeout: unknown } }[] }).routes[0]!);
    expect(routes[1]!.match).to.equal(routes[0]!.match);
    expect(routes[1]!.route.timeout).to.equal(routes[0]!.route.timeout);
    // Sharing changed no content: the same resources as built from plain copies.
    expect(JSON.parse(JSON.stringify(clusters[0]))).to.deep.equal(clusters[0]);
    const model = fileConfigToModel(c);
    expect(model.backends[0]!.endpoints).to.equal(c.hosts[0]!.endpoints);
    expect(model.backends[0]!.scaleToZero!.exclusiveDomains).to.equal(c.hosts[0]!.domains);
    expect(model.listeners[0]!.virtualHosts[1]!.routes[0]!.match).to.equal(model.listeners[0]!.virtualHosts[0]!.routes[0]!.match);
  });
});
