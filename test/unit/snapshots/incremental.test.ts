// A one-host change costs one host's work: what did not change is handed out again as the same (frozen)
// object, so its serialisation, hash and protobuf encoding are reused; what changed is built anew.
import { expect } from 'chai';
import { buildSnapshot, type Snapshot } from '../../../snapshots/build.ts';
import { internModel } from '../../../model/intern.ts';
import { BuildMemo, deepFrozen } from '../../../snapshots/memo.ts';
import type { Resource } from '../../../snapshots/resource.ts';
import { canonicalJson, resourceHash, versionOf } from '../../../snapshots/version.ts';
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
    // The route table is one resource (it changes with any host), but its unchanged virtual hosts are reused.
    const [vh1, vh2] = [virtualHosts(first), virtualHosts(second)];
    for (const [name, vh] of vh2) if (name !== 'vh_h0') expect(vh, name).to.equal(vh1.get(name));
    expect(second.versions.cluster).to.equal(first.versions.cluster);
    expect(second.versions.endpoint).to.not.equal(first.versions.endpoint);
    expect(second.resources.endpoint.get('host_h0')).to.deep.include({ endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9999 } } } }] }] });
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

  it('hashes and serialises a frozen resource once, and an unfrozen one every time (a changed one is never stale)', () => {
    const loose: Resource = { name: 'a', value: 1 };
    const before = resourceHash(loose);
    loose.value = 2;
    expect(resourceHash(loose)).to.not.equal(before);

    const frozen = deepFrozen<Resource>({ name: 'a', value: 2 });
    expect(resourceHash(frozen)).to.equal(resourceHash(loose));
    expect(versionOf(new Map([['a', frozen]]))).to.equal(versionOf(new Map([['a', loose]])));
  });

  it('remembers the serialisation of a reused builder output, not of every frozen object (memory)', () => {
    // toJSON runs each time an object is serialised afresh: it counts the serialisations.
    let serialised = 0;
    const part = (): object => ({ toJSON: () => (serialised++, 'part') });
    const memo = new BuildMemo<object, object>();
    const input = {};
    const output = memo.get(input, '', () => ({ vh: part() }));
    expect(canonicalJson({ frame: 1, hosts: [output] })).to.equal('{"frame":1,"hosts":[{"vh":"part"}]}');
    canonicalJson({ frame: 2, hosts: [output] });
    expect(serialised, 'a reused output inside the next build is serialised once').to.equal(1);

    // Frozen, but no builder hands it out again: serialised each time, nothing kept for it.
    const frozen = deepFrozen({ vh: part() });
    canonicalJson({ hosts: [frozen] });
    canonicalJson({ hosts: [frozen] });
    expect(serialised).to.equal(3);

    // A resource's own serialisation is not kept either (its hash is): a reused output hashed as a resource.
    const resource = memo.get({}, '', () => ({ name: 'r', vh: part() })) as Resource;
    const hash = resourceHash(resource);
    expect(resourceHash(resource)).to.equal(hash);
    expect(serialised).to.equal(4);
    canonicalJson([resource]);
    expect(serialised, 'its serialisation was not remembered').to.equal(5);
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

  it('takes added backends as they come and drops removed ones', () => {
    const first = fileConfigToModel(config(3));
    const next = internModel(first, structuredClone(fileConfigToModel(config(2, { extra: true }))));
    expect(next.backends.map((b) => b.name)).to.deep.equal(['h0', 'h1', 'extra']);
    expect(next.backends[0]).to.equal(first.backends[0]);
  });
});
