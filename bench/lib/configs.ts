// Every Envoy and gateway config the benchmark uses. The static gateway (variant B of the pass-through
// comparison) is rendered from the control plane's own snapshot builders, so it has the same listener,
// route and cluster shape as the dynamic gateway and differs only in what the comparison is about.
import { buildSnapshot } from '../../snapshots/build.ts';
import type { BufferPolicy } from '../../model/gateway-model.ts';
import type { DesiredState } from '../../snapshots/desired-state.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import { BUFFER_FILTER_NAME } from '../../snapshots/names.ts';
import type { Resource } from '../../snapshots/resource.ts';
import { ANY_TYPES } from '../../snapshots/type-urls.ts';

export interface BenchHost {
  name: string;
  domain: string;
  port: number;
  initialState: 'ready' | 'scaled_to_zero';
  buffer: BufferPolicy;
}

/** The gateway config file (as the control plane reads it) for HTTP/1.1 hosts on 127.0.0.1. */
export function gatewayConfig(hosts: BenchHost[]): Record<string, unknown> {
  return {
    // Port 0: Envoy binds a free port, read back from its admin.
    listener: { address: '127.0.0.1', port: 0 },
    hosts: hosts.map((host) => ({
      name: host.name,
      domains: [host.domain],
      protocol: 'http1',
      endpoints: [{ address: '127.0.0.1', port: host.port }],
      initialState: host.initialState,
      buffer: host.buffer,
      // Never scaled down by the idle detector while the benchmark drives the host by hand.
      idleAfterMs: 0,
    })),
  };
}

/**
 * Variant B: the same resources buildSnapshot makes for a READY host, as a static bootstrap with no Wasm
 * at all: the buffer filter is dropped from the HCM, typed_per_filter_config from the virtual hosts,
 * RDS is inlined, EDS clusters get their load assignment inline, and the control-plane cluster (only the
 * filter calls it) is left out. No ADS and no load reporting either: B is "plain Envoy".
 */
export function staticGatewayBootstrap(rawConfig: Record<string, unknown>, filterWasmPath: string): Record<string, unknown> {
  const parsed = validateGatewayConfig(rawConfig);
  if (!parsed.ok) throw new Error(`bench gateway config is invalid: ${JSON.stringify(parsed.errors)}`);
  const state: DesiredState = { model: fileConfigToModel(parsed.value), held: new Set(), generation: 1, filterWasmPath };
  const built = buildSnapshot(state);
  if (!built.ok) throw new Error(`buildSnapshot refused the bench config: ${JSON.stringify(built.errors)}`);
  const { resources } = built.value;

  const routeConfigs = new Map([...resources.route.values()].map((r) => [r.name, stripPerFilterConfig(r)]));
  const listeners = [...resources.listener.values()].map((l) => inlineRoutes(l, routeConfigs));
  const clusters = [...resources.cluster.values()]
    .filter((c) => c.type === 'EDS')
    .map((c) => inlineEndpoints(c, resources.endpoint));

  return toEnvoyJson({
    node: { id: 'bench-static-gateway', cluster: 'bench' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: { listeners, clusters },
  }) as Record<string, unknown>;
}

function stripPerFilterConfig(route: Resource): Record<string, unknown> {
  const copy = structuredClone(route) as Record<string, unknown>;
  const vhosts = (copy.virtual_hosts as Record<string, unknown>[] | undefined) ?? [];
  for (const vh of vhosts) delete vh.typed_per_filter_config;
  // The RouteConfiguration keeps its name: Envoy's stats are labelled by it in both variants.
  return copy;
}

function inlineRoutes(listener: Resource, routes: Map<string, Record<string, unknown>>): Record<string, unknown> {
  const copy = structuredClone(listener) as Record<string, unknown>;
  for (const chain of (copy.filter_chains as { filters: { typed_config: Record<string, unknown> }[] }[]) ?? []) {
    for (const filter of chain.filters) {
      const hcm = filter.typed_config;
      if (hcm['@type'] !== ANY_TYPES.hcm) continue;
      const rds = hcm.rds as { route_config_name: string } | undefined;
      if (rds) {
        const rc = routes.get(rds.route_config_name);
        if (!rc) throw new Error(`route config ${rds.route_config_name} missing from the snapshot`);
        delete hcm.rds;
        hcm.route_config = rc;
      }
      const httpFilters = (hcm.http_filters as { name: string; config_discovery?: unknown }[]) ?? [];
      // Drop the buffer filter and anything else configured by discovery: B must not contain Wasm.
      hcm.http_filters = httpFilters.filter((f) => f.name !== BUFFER_FILTER_NAME && f.config_discovery === undefined);
    }
  }
  return copy;
}

function inlineEndpoints(cluster: Resource, endpoints: ReadonlyMap<string, Resource>): Record<string, unknown> {
  const copy = structuredClone(cluster) as Record<string, unknown>;
  const serviceName = (copy.eds_cluster_config as { service_name?: string } | undefined)?.service_name ?? cluster.name;
  const cla = endpoints.get(serviceName);
  if (!cla) throw new Error(`no endpoints for cluster ${cluster.name}`);
  // The snapshot's `name` is the cache key; ClusterLoadAssignment itself has no such field.
  const { name: _key, ...assignment } = structuredClone(cla);
  delete copy.eds_cluster_config;
  copy.type = 'STATIC';
  copy.load_assignment = assignment;
  return copy;
}

/**
 * The snapshot builders write protobufjs object form (Duration as {seconds, nanos}, UInt32Value as
 * {value}); Envoy's YAML loader wants the proto3 JSON form ("2s", plain numbers). In these resources an
 * object made only of seconds/nanos is always a Duration and one made only of a numeric `value` is always
 * a wrapper (StringValue Anys also carry '@type', and the Wasm filter is removed anyway).
 */
export function toEnvoyJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toEnvoyJson);
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length > 0 && keys.every((k) => k === 'seconds' || k === 'nanos') && keys.every((k) => typeof obj[k] === 'number')) {
    const seconds = (obj.seconds as number | undefined) ?? 0;
    const nanos = (obj.nanos as number | undefined) ?? 0;
    return `${(seconds + nanos / 1e9).toFixed(9).replace(/\.?0+$/, '')}s`;
  }
  if (keys.length === 1 && keys[0] === 'value' && typeof obj.value === 'number') return obj.value;
  return Object.fromEntries(keys.map((k) => [k, toEnvoyJson(obj[k])]));
}

export const UPSTREAM_LISTENER = 'bench_upstream';
/** Response header carrying the time (epoch s, µs precision) the upstream Envoy started the request. */
export const UPSTREAM_START_HEADER = 'x-bench-upstream-start';

/**
 * A fast upstream: an Envoy answering every request itself (direct_response), so the gateway does not wait
 * on a slow backend. Used for the pass-through comparison and, with `stampStart`, as the fast upstream of
 * the release scenario: it then returns its request start time (system clock) in a response header,
 * which the hold client reads. With `oneRequestPerConnection` it closes each connection after one answer, so a
 * gateway in front has no warm connection to reuse, as in front of a backend that has just started.
 */
export function directResponseBootstrap(options: { stampStart?: boolean; oneRequestPerConnection?: boolean } = {}): Record<string, unknown> {
  return {
    node: { id: 'bench-upstream', cluster: 'bench' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: UPSTREAM_LISTENER,
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': ANY_TYPES.hcm,
                    stat_prefix: 'bench_upstream',
                    codec_type: 'AUTO',
                    ...(options.oneRequestPerConnection ? { common_http_protocol_options: { max_requests_per_connection: 1 } } : {}),
                    route_config: {
                      name: 'direct',
                      ...(options.stampStart
                        ? { response_headers_to_add: [{ header: { key: UPSTREAM_START_HEADER, value: '%START_TIME(%s.%6f)%' } }] }
                        : {}),
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok\n' } } }],
                        },
                      ],
                    },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ANY_TYPES.routerFilter } }],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  };
}
