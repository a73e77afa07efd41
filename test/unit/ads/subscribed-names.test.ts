// The names a state-of-the-world response lists for a named subscription: the subscribed names that exist, in
// code-unit order, whichever way they are found (walking the subscription, or the map for a large one).
import { expect } from 'chai';
import { subscribedNames } from '../../../xds-server/ads/stream-session.ts';
import { seededRandom } from '../../support/seeded-random.ts';

const ALPHABET = ['a', 'b', 'Z', '0', '9', '-', '_', '.', 'é', '中', '😀'];

describe('subscribedNames (xds-server/ads/stream-session.ts)', () => {
  it('gives the subscribed names that exist, in code-unit order, over 400 random maps and subscriptions', () => {
    const random = seededRandom(12);
    const name = (): string => Array.from({ length: 1 + Math.floor(random() * 6) }, () => ALPHABET[Math.floor(random() * ALPHABET.length)]).join('');
    for (let run = 0; run < 400; run++) {
      const all = [...new Set(Array.from({ length: Math.floor(random() * 60) }, name))];
      // The snapshot's maps keep their own order (locale order); any order must give the same answer.
      const ordered = run % 3 === 0 ? [...all].sort((a, b) => a.localeCompare(b)) : run % 3 === 1 ? [...all].sort() : all;
      const available = new Map(ordered.map((n) => [n, {}]));
      // Subscriptions from a few names to more than the map has (names it does not have included).
      const share = [0.05, 0.3, 0.9, 1.5][run % 4]!;
      const names = new Set(Array.from({ length: Math.floor(all.length * share) + (run % 2) }, () => (random() < 0.8 && all.length > 0 ? all[Math.floor(random() * all.length)]! : name())));
      const expected = [...names].filter((n) => available.has(n)).sort();
      expect(subscribedNames(names, available), `run ${run}`).to.deep.equal(expected);
    }
  });

  it('walks the map for a subscription to most of it, and the subscription for a few names', () => {
    const available = new Map(Array.from({ length: 100 }, (_, i) => [`c${i}`, {}]));
    let walked = 0;
    const counting = { size: available.size, has: (n: string) => available.has(n), keys: () => ((walked += 1), available.keys()) };
    expect(subscribedNames(new Set(['c5', 'c50', 'nope']), counting)).to.deep.equal(['c5', 'c50']);
    expect(walked).to.equal(0);
    expect(subscribedNames(new Set([...available.keys()].reverse()), counting)).to.deep.equal([...available.keys()].sort());
    expect(walked).to.equal(1);
  });
});
