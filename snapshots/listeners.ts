import { HTTP2_CONNECTION_WINDOW_BYTES, HTTP2_STREAM_WINDOW_BYTES, MIN_STREAM_IDLE_TIMEOUT_MS, STREAM_IDLE_MARGIN_MS } from './defaults.ts';
import type { DesiredState } from './desired-state.ts';
import type { ListenerModel, TlsFilterChainModel } from '../model/gateway-model.ts';
import { BUFFER_FILTER_NAME } from './names.ts';
import { adsConfigSource, socketAddress, type Resource } from './resource.ts';
import { ANY_TYPES } from './type-urls.ts';

/**
 * Envoy sets SO_REUSEPORT by default, so a second Envoy given the same gateway port binds it too and the kernel
 * splits connections between the two, silently (e.g. a second `npm start`). Without it, the second Envoy's
 * listener fails to bind and is NACKed, which the control plane logs and shows in /v1/nodes. Envoy's workers
 * then share one listen socket, which is how Envoy ran before reuse_port became its default.
 */
const EXCLUSIVE_PORT = { enable_reuse_port: { value: false } } as const;
export const MISSING_HOST_MESSAGE = 'request without a Host header: this gateway routes requests by their Host; send one\n';

export function buildListeners(state: DesiredState): Resource[] {
  return state.model.listeners.map((listener): Resource => {
    const hcm = (): Record<string, unknown>[] => [{ name: 'envoy.filters.network.http_connection_manager', typed_config: httpConnectionManager(state, listener) }];
    if (!listener.tls) return { name: listener.name, address: socketAddress(listener.address, listener.port), ...EXCLUSIVE_PORT, filter_chains: [{ filters: hcm() }] };
    return {
      name: listener.name,
      address: socketAddress(listener.address, listener.port),
      ...EXCLUSIVE_PORT,
      // Reads the ClientHello's SNI (and ALPN) so a filter chain can be picked by server name.
      listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': ANY_TYPES.tlsInspector } }],
      // Envoy picks the chain with the most specific matching server name; the chain without one takes the rest.
      filter_chains: listener.tls.filterChains.map((chain) => tlsFilterChain(chain, hcm())),
    };
  });
}

function tlsFilterChain(chain: TlsFilterChainModel, filters: Record<string, unknown>[]): Record<string, unknown> {
  return {
    name: chain.serverNames.length > 0 ? `tls_${chain.serverNames.join('_')}` : 'tls_default',
    ...(chain.serverNames.length > 0 ? { filter_chain_match: { server_names: [...chain.serverNames] } } : {}),
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': ANY_TYPES.downstreamTlsContext,
        common_tls_context: {
          tls_certificates: chain.certificates.map((c) => ({ certificate_chain: { inline_string: c.certificateChain }, private_key: { inline_string: c.privateKey } })),
          // HTTP/2 (and so gRPC) over TLS by ALPN; the HCM's AUTO codec follows what was negotiated.
          alpn_protocols: ['h2', 'http/1.1'],
        },
      },
    },
    filters,
  };
}

/** A copy of a resource with every private key replaced, for anything a person reads (admin API, logs). */
export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, k === 'private_key' ? { inline_string: '[redacted]' } : redactSecrets(v)]),
  ) as T;
}

function httpConnectionManager(state: DesiredState, listener: ListenerModel): Record<string, unknown> {
  return {
    '@type': ANY_TYPES.hcm,
    stat_prefix: 'gateway',
    codec_type: 'AUTO',
    stream_idle_timeout: millisToDuration(streamIdleTimeoutMs(state)),
    // WebSocket upgrades on every route (Envoy refuses them with 403 otherwise). An upgraded stream runs
    // through the same filters: the buffer filter holds it like any request while the backend is cold.
    upgrade_configs: [{ upgrade_type: 'websocket' }],
    // A held request's body is buffered by Envoy up to the connection's buffer limit (1 MiB, Envoy's default),
    // then Envoy stops reading (HTTP/1.1) or stops granting flow-control window (HTTP/2). Envoy's default
    // HTTP/2 stream window (256 MiB) would let a client push that much more into a held stream; 1 MiB bounds
    // a held HTTP/2 request like an HTTP/1.1 one (about 2 MiB), and still leaves room for fast uploads.
    http2_protocol_options: {
      initial_stream_window_size: { value: HTTP2_STREAM_WINDOW_BYTES },
      initial_connection_window_size: { value: HTTP2_CONNECTION_WINDOW_BYTES },
    },
    // HTTP/1.0 clients (ApacheBench, old health checkers) are served rather than answered 426.
    http_protocol_options: {
      accept_http_10: true,
      ...(listener.http10DefaultHost !== undefined ? { default_host_for_http_10: listener.http10DefaultHost } : {}),
    },
    // Envoy answers a request without Host (HTTP/1.0 with no http10DefaultHost, or HTTP/1.1) with a bare 400;
    // say why.
    local_reply_config: {
      mappers: [
        {
          filter: {
            and_filter: {
              filters: [
                { status_code_filter: { comparison: { op: 'EQ', value: { default_value: 400, runtime_key: 'stz.missing_host_status' } } } },
                { header_filter: { header: { name: ':authority', present_match: true, invert_match: true } } },
              ],
            },
          },
          body: { inline_string: MISSING_HOST_MESSAGE },
        },
      ],
    },
    rds: { route_config_name: listener.routeConfigName, config_source: adsConfigSource() },
    http_filters: [
      {
        // The buffer filter's config arrives over ECDS, so a push never rebuilds the filter chain and
        // never drains downstream connections (an inline change through LDS would).
        name: BUFFER_FILTER_NAME,
        config_discovery: { config_source: adsConfigSource(), type_urls: [ANY_TYPES.wasmFilter] },
      },
      { name: 'envoy.filters.http.router', typed_config: { '@type': ANY_TYPES.routerFilter } },
    ],
  };
}

/** Envoy answers a stream with no activity after this; it must not beat the longest hold timeout. */
export function streamIdleTimeoutMs(state: DesiredState): number {
  // A loop, not Math.max(...array): no array of every backend and no call with thousands of arguments; indexed,
  // as unoptimised code (a cold load's first build) allocates an iterator result per for...of step.
  let longestHold = 0;
  const backends = state.model.backends;
  for (let i = 0; i < backends.length; i++) longestHold = Math.max(longestHold, backends[i]!.scaleToZero?.buffer.holdTimeoutMs ?? 0);
  return Math.max(MIN_STREAM_IDLE_TIMEOUT_MS, longestHold + STREAM_IDLE_MARGIN_MS);
}

export function millisToDuration(ms: number): { seconds: number; nanos?: number } {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms % 1000) * 1_000_000;
  return nanos === 0 ? { seconds } : { seconds, nanos };
}
