import type { DesiredState, HostConfig } from './desired-state.ts';
import { BUFFER_FILTER_NAME, ROUTE_CONFIG_NAME, clusterName, virtualHostName } from './names.ts';
import type { Resource } from './resource.ts';
import { ANY_TYPES } from './type-urls.ts';

export function buildRoutes(state: DesiredState): Resource[] {
  return [
    {
      name: ROUTE_CONFIG_NAME,
      virtual_hosts: [...state.config.hosts]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((host) => virtualHost(host, state.scaledToZero.has(host.name))),
    },
  ];
}

function virtualHost(host: HostConfig, scaledToZero: boolean): Record<string, unknown> {
  const vh: Record<string, unknown> = {
    name: virtualHostName(host.name),
    domains: [...host.domains],
    routes: [
      {
        match: { prefix: '/' },
        // gRPC streams may live long; HTTP keeps Envoy's 15 s default route timeout.
        route: host.protocol === 'grpc' ? { cluster: clusterName(host.name), timeout: { seconds: 0 } } : { cluster: clusterName(host.name) },
      },
    ],
  };
  if (!scaledToZero) {
    // The fast path: for a ready host Envoy does not even create the Wasm filter for the request.
    vh.typed_per_filter_config = {
      [BUFFER_FILTER_NAME]: { '@type': ANY_TYPES.routeFilterConfig, disabled: true },
    };
  }
  return vh;
}
