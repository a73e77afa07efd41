import { buildBufferFilter } from './buffer-filter.ts';
import { buildClusters } from './clusters.ts';
import { checkConsistency } from './consistency.ts';
import type { DesiredState } from './desired-state.ts';
import { endpointsOf } from './endpoints.ts';
import type { Result } from './errors.ts';
import { buildFilterConfig, filterConfigProblems } from './filter-config.ts';
import { buildListeners } from './listeners.ts';
import { BUFFER_FILTER_NAME } from './names.ts';
import { byName, lazyByName, type Resource, type ResourcesByKind } from './resource.ts';
import { buildRoutes } from './routes.ts';
import type { ResourceKind } from './type-urls.ts';
import { versionOf } from './version.ts';

export interface Snapshot {
  readonly resources: ResourcesByKind;
  readonly versions: Readonly<Record<ResourceKind, string>>;
}

/** A snapshot's clusters and endpoints: what Envoy must warm before anything may route to it. */
export type Upstream = Pick<ResourcesByKind, 'cluster' | 'endpoint'>;

/**
 * The clusters and endpoints of the desired state alone: a publisher can send new clusters (beside the ones in
 * force, with the routes in force) before it builds the rest, so Envoy starts warming them sooner. Pure.
 */
export function buildUpstream(state: DesiredState): Upstream {
  // The endpoints are built when first needed (an EDS response, a version, a comparison), after the clusters
  // have gone to Envoy: each backend's endpoints are named after its cluster.
  const backends = state.model.backends;
  return { cluster: byName(buildClusters(state)), endpoint: lazyByName(backends.map((b) => b.clusterName), () => endpointsOf(backends)) };
}

/**
 * Desired state → a consistent snapshot, or every reason it cannot be one. Pure. `upstream`: the state's own
 * buildUpstream(), when the caller built it already.
 */
export function buildSnapshot(state: DesiredState, upstream?: Upstream): Result<Snapshot> {
  // A configuration the filter would reject is NACKed by every Envoy, which keeps the old one: refuse it here.
  const filterProblems = filterConfigProblems(buildFilterConfig(state));
  if (filterProblems.length > 0) {
    return { ok: false, errors: filterProblems.map((p) => ({ path: '/extensionConfig/scale_to_zero_buffer', message: `the filter would reject: ${p}` })) };
  }
  const { cluster, endpoint } = upstream ?? buildUpstream(state);
  const resources: ResourcesByKind = {
    cluster,
    endpoint,
    listener: byName(buildListeners(state)),
    route: byName(buildRoutes(state)),
    extensionConfig: byName(buildBufferFilter(state)),
  };
  return snapshotFromResources(resources);
}

export function snapshotFromResources(resources: ResourcesByKind): Result<Snapshot> {
  const errors = checkConsistency(resources);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { resources, versions: lazyVersions(resources) } };
}

/**
 * Each type's version is worked out when first read, then kept: hashing a type means encoding all its
 * resources, and a push that reads the clusters' version first can send them to Envoy before it encodes the
 * route table (which at 5,000 hosts takes a quarter of a second), so Envoy starts warming sooner.
 */
function lazyVersions(resources: ResourcesByKind): Readonly<Record<ResourceKind, string>> {
  const compute: Record<ResourceKind, () => string> = {
    cluster: () => versionOf('cluster', resources.cluster),
    endpoint: () => versionOf('endpoint', resources.endpoint),
    listener: () => versionOf('listener', resources.listener),
    route: () => versionOf('route', resources.route),
    extensionConfig: () => extensionConfigVersion(resources.extensionConfig),
  };
  const versions = {} as Record<ResourceKind, string>;
  for (const kind of Object.keys(compute) as ResourceKind[]) {
    let version: string | undefined;
    Object.defineProperty(versions, kind, { enumerable: true, get: () => (version ??= compute[kind]()) });
  }
  return Object.freeze(versions);
}

/**
 * The filter config's type version starts with its generation ("<generation>.<hash>"): an Envoy that reconnects
 * (to a restarted control plane, or to another replica) names the version it holds in its first request, and
 * the control plane can then make sure its own generation is above it, or the filter would ignore its configs.
 */
function extensionConfigVersion(resources: ReadonlyMap<string, Resource>): string {
  const generation = filterGenerationOf(resources);
  const hash = versionOf('extensionConfig', resources);
  return generation === undefined ? hash : `${generation}.${hash}`;
}

function filterGenerationOf(resources: ReadonlyMap<string, Resource>): number | undefined {
  const filter = resources.get(BUFFER_FILTER_NAME);
  return filter ? filterGenerationOfResource(filter) : undefined;
}

/** The filter generation inside the buffer filter's config resource (for its delta xDS version too). */
export function filterGenerationOfResource(resource: Resource): number | undefined {
  const text = (resource as { typed_config?: { config?: { configuration?: { value?: unknown } } } }).typed_config?.config?.configuration?.value;
  if (typeof text !== 'string') return undefined;
  try {
    const generation = (JSON.parse(text) as { generation?: unknown }).generation;
    return typeof generation === 'number' && Number.isSafeInteger(generation) ? generation : undefined;
  } catch {
    return undefined;
  }
}

/** The filter generation a filter-config version names, if it names one (see extensionConfigVersion). */
export function generationInVersion(version: string): number | undefined {
  const m = /^(\d{1,16})\./.exec(version);
  return m ? Number(m[1]) : undefined;
}
