// A snapshot must be self-contained before any Envoy sees it: every name one resource points at exists.
// Envoy would otherwise wait on a missing resource (warming) until initial_fetch_timeout, or NACK.
import type { FieldError } from './errors.ts';
import type { Resource, ResourcesByKind } from './resource.ts';

export function checkConsistency(resources: ResourcesByKind): FieldError[] {
  const errors: FieldError[] = [];
  for (const cluster of resources.cluster.values()) {
    if (cluster.type !== 'EDS') continue;
    const service = (cluster.eds_cluster_config as { service_name?: string } | undefined)?.service_name ?? cluster.name;
    if (!resources.endpoint.has(service)) {
      errors.push({ path: `/clusters/${cluster.name}`, message: `uses endpoints "${service}", which the snapshot does not have` });
    }
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
    for (const vh of (routeConfig.virtual_hosts as { name: string; routes: RouteShape[] }[] | undefined) ?? []) {
      // No array per route: a 5,000-host table is checked on every publish.
      for (const route of vh.routes) {
        checkTarget(errors, resources, routeConfig.name, vh.name, route.route?.cluster);
        for (const c of route.route?.weighted_clusters?.clusters ?? []) checkTarget(errors, resources, routeConfig.name, vh.name, c.name);
      }
    }
  }
  return errors;
}

function checkTarget(errors: FieldError[], resources: ResourcesByKind, table: string, virtualHost: string, cluster: string | undefined): void {
  if (cluster !== undefined && !resources.cluster.has(cluster)) {
    errors.push({ path: `/routes/${table}/${virtualHost}`, message: `routes to cluster "${cluster}", which the snapshot does not have` });
  }
}

interface RouteShape {
  route?: { cluster?: string; weighted_clusters?: { clusters: { name: string }[] } };
}

function connectionManagers(listener: Resource): Record<string, unknown>[] {
  const chains = (listener.filter_chains as { filters?: { typed_config?: Record<string, unknown> }[] }[] | undefined) ?? [];
  return chains.flatMap((c) => c.filters ?? []).flatMap((f) => (f.typed_config?.rds !== undefined || f.typed_config?.http_filters !== undefined ? [f.typed_config] : []));
}
