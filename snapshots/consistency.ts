// A snapshot must be self-contained before any Envoy sees it: every name one resource points at exists.
// Envoy would otherwise wait on a missing resource (warming) until initial_fetch_timeout, or NACK.
import type { FieldError } from './errors.ts';
import type { Resource, ResourcesByKind } from './resource.ts';

/**
 * Cluster maps found complete against an endpoint map (a snapshot's maps are never changed once built): a
 * publish that sends its new clusters early checks them twice, with the routes in force and with its own.
 */
const upstreamChecked = new WeakMap<ReadonlyMap<string, Resource>, ReadonlyMap<string, Resource>>();

export function checkConsistency(resources: ResourcesByKind): FieldError[] {
  const errors: FieldError[] = [];
  if (upstreamChecked.get(resources.cluster) !== resources.endpoint) {
    for (const cluster of resources.cluster.values()) {
      if (cluster.type !== 'EDS') continue;
      const service = (cluster.eds_cluster_config as { service_name?: string } | undefined)?.service_name ?? cluster.name;
      if (!resources.endpoint.has(service)) {
        errors.push({ path: `/clusters/${cluster.name}`, message: `uses endpoints "${service}", which the snapshot does not have` });
      }
    }
    if (errors.length === 0) upstreamChecked.set(resources.cluster, resources.endpoint);
  }
  for (const listener of resources.listener.values()) {
    for (const hcm of connectionManagers(listener)) {
      const rds = (hcm.rds as { route_config_name?: string } | undefined)?.route_config_name;
      if (rds !== undefined && !resources.route.has(rds)) {
        errors.push({ path: `/listeners/${listener.name}`, message: `uses routes "${rds}", which the snapshot does not have` });
      }
      for (const filter of (hcm.http_filters as { name: string; config_discovery?: unknown }[] | undefined) ?? []) {
        if (filter.config_discovery !== undefined && !resources.extensionConfig.has(filter.name)) {
          errors.push({ path: `/listeners/${listener.name}`, message: `uses extension config "${filter.name}", which the snapshot does not have` });
        }
      }
    }
  }
  for (const routeConfig of resources.route.values()) {
    const virtualHosts = routeConfig.virtual_hosts as { name: string; routes: RouteShape[] }[] | undefined;
    if (virtualHosts === undefined) continue;
    // Indexed loops and no array per route (not even an empty one for a route without weighted clusters): a
    // 5,000-host table is checked on every publish, the first time in a process whose code is not optimised yet.
    for (let v = 0; v < virtualHosts.length; v++) {
      const vh = virtualHosts[v]!;
      const routes = vh.routes;
      for (let r = 0; r < routes.length; r++) {
        const target = routes[r]!.route;
        if (target === undefined) continue;
        if (target.cluster !== undefined && !resources.cluster.has(target.cluster)) missingCluster(errors, routeConfig.name, vh.name, target.cluster);
        const weighted = target.weighted_clusters?.clusters;
        if (weighted !== undefined) for (const c of weighted) if (!resources.cluster.has(c.name)) missingCluster(errors, routeConfig.name, vh.name, c.name);
      }
    }
  }
  return errors;
}

function missingCluster(errors: FieldError[], table: string, virtualHost: string, cluster: string): void {
  errors.push({ path: `/routes/${table}/${virtualHost}`, message: `routes to cluster "${cluster}", which the snapshot does not have` });
}

interface RouteShape {
  route?: { cluster?: string; weighted_clusters?: { clusters: { name: string }[] } };
}

function connectionManagers(listener: Resource): Record<string, unknown>[] {
  const chains = (listener.filter_chains as { filters?: { typed_config?: Record<string, unknown> }[] }[] | undefined) ?? [];
  return chains.flatMap((c) => c.filters ?? []).flatMap((f) => (f.typed_config?.rds !== undefined || f.typed_config?.http_filters !== undefined ? [f.typed_config] : []));
}
