// byName orders resources by name (the order they are sent and hashed in). It reuses a recent list's order
// when the names match index by index: whatever lists come, in whatever order, the result must be the sort.
import { expect } from 'chai';
import { byName, type Resource } from '../../../snapshots/resource.ts';

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
});
