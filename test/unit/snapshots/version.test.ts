// A type's version (snapshots/version.ts) is the first 16 hex digits of SHA-256 over, for each resource in
// code-unit order of its name: the name, NUL, the length of its encoded bytes in decimal, NUL, the bytes.
// Held here against that definition written the plain way (one hash.update per part), over names that are
// ASCII or not (lone surrogates too), in name order or not, and lengths of one to four digits: versions
// must not change when the way they are worked out does (a reconnecting Envoy names the version it holds).
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type { Resource } from '../../../snapshots/resource.ts';
import { versionOf } from '../../../snapshots/version.ts';
import { encodeResource } from '../../../snapshots/wire.ts';
import { seededRandom } from '../../support/seeded-random.ts';

function byDefinition(resources: ReadonlyMap<string, Resource>): string {
  const hash = createHash('sha256');
  for (const [name, resource] of [...resources].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const bytes = encodeResource('cluster', resource);
    hash.update(`${name}\u0000${bytes.length}\u0000`);
    hash.update(bytes);
  }
  return hash.digest('hex').slice(0, 16);
}

const NAMES = ['a', 'b', 'host_h1', 'host_h10', 'host_h2', 'Z', 'é', '名前', '🙂', 'a\ud800', '\udc00b', 'x-y', 'x_y', 'x.y', ''];

describe('type versions (snapshots/version.ts)', () => {
  it('hash each resource\'s name, length and bytes in code-unit order, as the definition says', () => {
    const random = seededRandom(7);
    for (let round = 0; round < 200; round++) {
      const entries: [string, Resource][] = [];
      const used = new Set<string>();
      for (let i = Math.floor(random() * 12); i > 0; i--) {
        const name = NAMES[Math.floor(random() * NAMES.length)]! + (random() < 0.5 ? String(Math.floor(random() * 100)) : '');
        if (used.has(name)) continue;
        used.add(name);
        // Resource sizes of one to four decimal digits (a long name makes a large cluster).
        entries.push([name, { name: 'c'.repeat(Math.floor(random() ** 3 * 2000)), type: 'EDS', connect_timeout: { seconds: 1 } }]);
      }
      // Either in name order (localeCompare, as resource maps are) or in the order made.
      if (random() < 0.5) entries.sort(([a], [b]) => a.localeCompare(b));
      const map = new Map(entries);
      expect(versionOf('cluster', map), JSON.stringify(entries.map(([n]) => n))).to.equal(byDefinition(map));
    }
  });
});
