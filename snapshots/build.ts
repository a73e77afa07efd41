import { buildBufferFilter } from './buffer-filter.ts';
import { buildClusters } from './clusters.ts';
import { checkConsistency } from './consistency.ts';
import type { DesiredState } from './desired-state.ts';
import { buildEndpoints } from './endpoints.ts';
import type { Result } from './errors.ts';
import { buildFilterConfig, filterConfigProblems } from './filter-config.ts';
import { buildListeners } from './listeners.ts';
import { byName, type ResourcesByKind } from './resource.ts';
import { buildRoutes } from './routes.ts';
import type { ResourceKind } from './type-urls.ts';
import { versionOf } from './version.ts';

export interface Snapshot {
  readonly resources: ResourcesByKind;
  readonly versions: Readonly<Record<ResourceKind, string>>;
}

/** Desired state → a consistent snapshot, or every reason it cannot be one. Pure. */
export function buildSnapshot(state: DesiredState): Result<Snapshot> {
  // A configuration the filter would reject is NACKed by every Envoy, which keeps the old one: refuse it here.
  const filterProblems = filterConfigProblems(buildFilterConfig(state));
  if (filterProblems.length > 0) {
    return { ok: false, errors: filterProblems.map((p) => ({ path: '/extensionConfig/scale_to_zero_buffer', message: `the filter would reject: ${p}` })) };
  }
  const resources: ResourcesByKind = {
    cluster: byName(buildClusters(state)),
    endpoint: byName(buildEndpoints(state)),
    listener: byName(buildListeners(state)),
    route: byName(buildRoutes(state)),
    extensionConfig: byName(buildBufferFilter(state)),
  };
  return snapshotFromResources(resources);
}

export function snapshotFromResources(resources: ResourcesByKind): Result<Snapshot> {
  const errors = checkConsistency(resources);
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      resources,
      versions: {
        cluster: versionOf(resources.cluster),
        endpoint: versionOf(resources.endpoint),
        listener: versionOf(resources.listener),
        route: versionOf(resources.route),
        extensionConfig: versionOf(resources.extensionConfig),
      },
    },
  };
}
