// What a proxyless gRPC client (grpc-js-xds, grpc-go, ...) needs to resolve `xds:///<domain>` for a gRPC host
// of ours: an API listener named after the domain, its route configuration (RDS), and one EDS cluster whose
// endpoint is the gateway listener itself. The client's calls therefore go through the gateway Envoy, where
// the buffer filter holds them while the host is scaled to zero and wakes it, exactly as for any request;
// load reports from that Envoy keep the host awake. Pure; a separate snapshot (node group) from the Envoys'.
import type { ListenerModel } from '../model/gateway-model.ts';
import type { Result } from './errors.ts';
import type { DesiredState } from './desired-state.ts';
import { adsConfigSource, byName, socketAddress, type Resource, type ResourcesByKind } from './resource.ts';
import { snapshotFromResources, type Snapshot } from './build.ts';
import { ANY_TYPES } from './type-urls.ts';

export const PROXYLESS_ROUTE_PREFIX = 'proxyless_routes_';
export const PROXYLESS_CLUSTER_PREFIX = 'proxyless_via_';

export function buildProxylessSnapshot(state: DesiredState): Result<Snapshot> {
  return snapshotFromResources(buildProxylessResources(state));
}

export function buildProxylessResources(state: DesiredState): ResourcesByKind {
  const grpcBackends = new Set(state.model.backends.filter((b) => b.protocol === 'grpc').map((b) => b.name));
  const listeners: Resource[] = [];
  const routes: Resource[] = [];
  const clusters: Resource[] = [];
  const endpoints: Resource[] = [];
  const seen = new Set<string>();
  // No gRPC backend (most configs): nothing to serve, and no walk of every route of every host on every publish
  // (~0.4 ms per publish at 1,000 hosts, a tenth of a one-host change's work).
  if (grpcBackends.size === 0) return { listener: new Map(), route: new Map(), cluster: new Map(), endpoint: new Map(), extensionConfig: new Map() };
  // TLS listeners would need client certificates and SNI in the client's bootstrap: plaintext ones only.
  for (const listener of state.model.listeners.filter((l) => !l.tls)) {
    const cluster = `${PROXYLESS_CLUSTER_PREFIX}${listener.name}`;
    let used = false;
    for (const vh of listener.virtualHosts) {
      const servesGrpc = vh.routes.some((r) => r.action.kind === 'forward' && r.action.backends.some((b) => grpcBackends.has(b.backend)));
      if (!servesGrpc) continue;
      // A name resolves to one listener: the first listener that serves it wins; wildcards cannot be targets.
      for (const domain of vh.domains.filter((d) => !d.includes('*') && !seen.has(d))) {
        seen.add(domain);
        used = true;
        const routeName = `${PROXYLESS_ROUTE_PREFIX}${domain}`;
        listeners.push(apiListener(domain, routeName));
        routes.push(routeConfiguration(routeName, domain, cluster));
      }
    }
    if (used) {
      clusters.push({ name: cluster, type: 'EDS', eds_cluster_config: { eds_config: adsConfigSource(), service_name: cluster }, lb_policy: 'ROUND_ROBIN' });
      endpoints.push(gatewayEndpoint(cluster, listener));
    }
  }
  return { listener: byName(listeners), route: byName(routes), cluster: byName(clusters), endpoint: byName(endpoints), extensionConfig: new Map() };
}

function apiListener(name: string, routeName: string): Resource {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': ANY_TYPES.hcm,
        rds: { route_config_name: routeName, config_source: adsConfigSource() },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ANY_TYPES.routerFilter } }],
      },
    },
  };
}

function routeConfiguration(name: string, domain: string, cluster: string): Resource {
  return {
    name,
    virtual_hosts: [{ name: domain, domains: [domain], routes: [{ match: { prefix: '/' }, route: { cluster } }] }],
  };
}

/** A wildcard bind address is reachable on the loopback of the same family. */
function gatewayEndpoint(cluster: string, listener: ListenerModel): Resource {
  const address = listener.address === '0.0.0.0' ? '127.0.0.1' : listener.address === '::' ? '::1' : listener.address;
  // gRPC clients reject endpoints without a locality, and ignore a locality without a weight.
  return {
    name: cluster,
    cluster_name: cluster,
    endpoints: [{ locality: { region: 'gateway' }, load_balancing_weight: { value: 1 }, lb_endpoints: [{ endpoint: { address: socketAddress(address, listener.port) } }] }],
  };
}
