// byName orders resources by name (the order they are sent and hashed in). It reuses a recent list's order
// when the names match index by index: whatever lists come, in whatever order, the result must be the sort.
import { expect } from 'chai';
import { buildEndpoints } from '../../../snapshots/endpoints.ts';
import { buildUpstream } from '../../../snapshots/build.ts';
import { byName, lazyByName, type Resource } from '../../../snapshots/resource.ts';
import { validateGatewayConfig } from '../../../sources/file/parse.ts';
import { fileConfigToModel } from '../../../sources/file/to-model.ts';

const resource = (name: string, tag: number): Resource => ({ name, tag });

function sorted(resources: Resource[]): [string, Resource][] {
  return [...resources].sort((a, b) => a.name.localeCompare(b.name)).map((r) => [r.name, r]);
}

describe('byName', () => {
  it('is name order for every list, including lists that repeat, permute, rename, grow or shrink a recent one', () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pool = Array.from({ length: 40 }, (_, i) => `r${(i * 7919) % 97}`);
    const lists: string[][] = [];
    for (let step = 0; step < 400; step++) {
      let names: string[];
      const base = lists.length > 0 ? lists[random(lists.length)]! : [];
      switch (random(5)) {
        case 0: // a recent list again (the memo's case)
          names = [...base];
          break;
        case 1: // two names trade places
          names = [...base];
          if (names.length > 1) {
            const [a, b] = [random(names.length), random(names.length)];
            [names[a], names[b]] = [names[b]!, names[a]!];
          }
          break;
        case 2: // one renamed in place
          names = base.map((n, i) => (i === 0 ? `${n}x` : n));
          break;
        default: // a new list
          names = [...new Set(Array.from({ length: random(30) }, () => pool[random(pool.length)]!))];
      }
      lists.push(names);
      // New objects every time: the map must hold this list's resources, not a recent list's.
      const resources = names.map((n) => resource(n, step));
      expect([...byName(resources)]).to.deep.equal(sorted(resources), `step ${step}: ${names.join(',')}`);
    }
  });

  it('also names the list: sortedNames gives the names in the order sorted() gives things of those names', () => {
    const names = ['b', 'a', 'B', 'é', 'e', 'z_1', 'z-1', 'z1'];
    const order = [...byName(names.map((n) => resource(n, 0))).keys()];
    expect([...lazyByName(names, () => names.map((n) => resource(n, 1))).keys()]).to.deep.equal(order);
  });
});

describe('lazyByName', () => {
  const names = ['c', 'a', 'b', 'é'];
  const counting = (made: Resource[][]): (() => Resource[]) => () => {
    const list = names.map((n) => resource(n, made.length));
    made.push(list);
    return list;
  };

  it('answers which names it has without building anything, and builds once when a resource is asked for', () => {
    const made: Resource[][] = [];
    const map = lazyByName(names, counting(made));
    expect(map.size).to.equal(4);
    expect(map.has('a') && map.has('é') && !map.has('d')).to.equal(true);
    expect([...map.keys()]).to.deep.equal(['a', 'b', 'c', 'é']);
    expect(made).to.have.length(0);
    expect(map.get('b')).to.equal(made[0]?.[2]);
    expect([...map]).to.deep.equal([...byName(made[0]!)]);
    expect([...map.values()].length + [...map.entries()].length).to.equal(8);
    let seen = 0;
    map.forEach((value, key, m) => {
      expect(value.name).to.equal(key);
      expect(m).to.equal(map);
      seen++;
    });
    expect(seen).to.equal(4);
    expect(made).to.have.length(1);
    expect(map.has('a') && !map.has('d') && map.size === 4).to.equal(true);
  });

  it('refuses resources other than the ones named (a bug, not a state to serve)', () => {
    expect(() => lazyByName(['a', 'b'], () => [resource('a', 0)]).get('a')).to.throw(/not the ones named/);
    expect(() => lazyByName(['a', 'b'], () => [resource('a', 0), resource('c', 0)]).get('a')).to.throw(/not the ones named/);
  });

  it("is what a snapshot's endpoints were: buildUpstream's endpoints equal byName(buildEndpoints()), in the clusters' order", () => {
    const config = validateGatewayConfig({
      listener: { port: 10000 },
      hosts: ['b', 'a', 'c-1', 'c1', 'a-b', 'a0'].map((name, i) => ({ name, domains: [`${name}.test`], endpoints: [{ address: '127.0.0.1', port: 20000 + i }] })),
    });
    if (!config.ok) throw new Error('config refused');
    const state = { model: fileConfigToModel(config.value), held: new Set<string>(), generation: 1, filterWasmPath: '/f.wasm' };
    const up = buildUpstream(state);
    expect([...up.endpoint.keys()]).to.deep.equal([...up.cluster.keys()]);
    expect([...up.endpoint]).to.deep.equal([...byName(buildEndpoints(state))]);
  });
});
