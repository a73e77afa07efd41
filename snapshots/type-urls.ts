// Type URLs in one place. The order of PUSH_ORDER is the ADS make-before-break order from Envoy's
// xds_protocol docs ("eventual consistency considerations"): clusters before the endpoints they use,
// listeners before their routes, extension configs last; stale clusters are removed last by the same order.
export const TYPE_URLS = {
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  extensionConfig: 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig',
} as const;

export type ResourceKind = keyof typeof TYPE_URLS;
export type TypeUrl = (typeof TYPE_URLS)[ResourceKind];

export const PUSH_ORDER: readonly ResourceKind[] = ['cluster', 'endpoint', 'listener', 'route', 'extensionConfig'];

/** LDS and CDS are full state in state-of-the-world mode: a missing name means "deleted". */
export const FULL_STATE_KINDS: ReadonlySet<ResourceKind> = new Set(['cluster', 'listener']);

const KIND_BY_URL = new Map<string, ResourceKind>(
  (Object.entries(TYPE_URLS) as [ResourceKind, TypeUrl][]).map(([kind, url]) => [url, kind]),
);

export function kindOfTypeUrl(typeUrl: string): ResourceKind | undefined {
  return KIND_BY_URL.get(typeUrl);
}

export const ANY_TYPES = {
  wasmFilter: 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
  routerFilter: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  routeFilterConfig: 'type.googleapis.com/envoy.config.route.v3.FilterConfig',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  stringValue: 'type.googleapis.com/google.protobuf.StringValue',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  downstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
} as const;
