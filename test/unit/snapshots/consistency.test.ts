// A snapshot is refused when one resource names another it does not have (snapshots/consistency.ts): each
// kind of reference, a route's single and weighted clusters among them, and nothing for a complete snapshot.
import { expect } from 'chai';
import { checkConsistency } from '../../../snapshots/consistency.ts';
import type { Resource, ResourcesByKind } from '../../../snapshots/resource.ts';

const byName = (...resources: Resource[]): ReadonlyMap<string, Resource> => new Map(resources.map((r) => [r.name, r]));

function snapshot(routes: Record<string, unknown>[][]): ResourcesByKind {
  return {
    cluster: byName({ name: 'a', type: 'EDS' }, { name: 'b', type: 'EDS', eds_cluster_config: { service_name: 'b_endpoints' } }, { name: 'static', type: 'STATIC' }),
    endpoint: byName({ name: 'a' }, { name: 'b_endpoints' }),
    listener: byName({
      name: 'l',
      filter_chains: [{ filters: [{ typed_config: { rds: { route_config_name: 'routes' }, http_filters: [{ name: 'buffer', config_discovery: {} }, { name: 'router' }] } }] }],
    }),
    route: byName({ name: 'routes', virtual_hosts: routes.map((r, i) => ({ name: `vh${i}`, routes: r })) }),
    extensionConfig: byName({ name: 'buffer' }),
  };
}

describe('snapshot consistency', () => {
  it('finds nothing wrong with a complete snapshot (single, weighted, redirect and direct-response routes)', () => {
    expect(
      checkConsistency(
        snapshot([
          [{ route: { cluster: 'a' } }, { route: { weighted_clusters: { clusters: [{ name: 'a' }, { name: 'b' }] } } }],
          [{ redirect: { host_redirect: 'x' } }, { direct_response: { status: 200 } }, { route: { cluster: 'static' } }],
        ]),
      ),
    ).to.deep.equal([]);
  });

  it('names every route target the snapshot does not have, single and weighted, with its virtual host', () => {
    const errors = checkConsistency(snapshot([[{ route: { cluster: 'a' } }], [{ route: { cluster: 'gone' } }, { route: { weighted_clusters: { clusters: [{ name: 'b' }, { name: 'also_gone' }] } } }]]));
    expect(errors).to.deep.equal([
      { path: '/routes/routes/vh1', message: 'routes to cluster "gone", which the snapshot does not have' },
      { path: '/routes/routes/vh1', message: 'routes to cluster "also_gone", which the snapshot does not have' },
    ]);
  });

  it('names a cluster without its endpoints, a listener without its routes or its extension config', () => {
    const s = snapshot([[{ route: { cluster: 'a' } }]]);
    const errors = checkConsistency({ ...s, endpoint: byName({ name: 'a' }), route: new Map(), extensionConfig: new Map() });
    expect(errors.map((e) => `${e.path}: ${e.message}`)).to.deep.equal([
      '/clusters/b: uses endpoints "b_endpoints", which the snapshot does not have',
      '/listeners/l: uses routes "routes", which the snapshot does not have',
      '/listeners/l: uses extension config "buffer", which the snapshot does not have',
    ]);
  });

  it('checks clusters against endpoints again when either map is another, even after the same clusters passed', () => {
    const s = snapshot([[{ route: { cluster: 'a' } }]]);
    expect(checkConsistency(s)).to.deep.equal([]);
    // The same cluster map with an endpoint map that lacks b's endpoints: found, not taken from the first check.
    expect(checkConsistency({ ...s, endpoint: byName({ name: 'a' }) }).map((e) => e.path)).to.deep.equal(['/clusters/b']);
    expect(checkConsistency({ ...s, cluster: new Map([...s.cluster, ['c', { name: 'c', type: 'EDS' }]]) }).map((e) => e.path)).to.deep.equal(['/clusters/c']);
    expect(checkConsistency(s)).to.deep.equal([]);
  });
});
