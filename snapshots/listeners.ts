import { MIN_STREAM_IDLE_TIMEOUT_MS, STREAM_IDLE_MARGIN_MS } from './defaults.ts';
import type { DesiredState } from './desired-state.ts';
import type { ListenerModel } from '../model/gateway-model.ts';
import { BUFFER_FILTER_NAME } from './names.ts';
import { adsConfigSource, socketAddress, type Resource } from './resource.ts';
import { ANY_TYPES } from './type-urls.ts';

export function buildListeners(state: DesiredState): Resource[] {
  return state.model.listeners.map((listener) => ({
    name: listener.name,
    address: socketAddress(listener.address, listener.port),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: httpConnectionManager(state, listener),
          },
        ],
      },
    ],
  }));
}

function httpConnectionManager(state: DesiredState, listener: ListenerModel): Record<string, unknown> {
  return {
    '@type': ANY_TYPES.hcm,
    stat_prefix: 'gateway',
    codec_type: 'AUTO',
    // Virtual host domains are listed without ports; the filter strips the port the same way.
    strip_any_host_port: true,
    stream_idle_timeout: millisToDuration(streamIdleTimeoutMs(state)),
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
  const longestHold = Math.max(0, ...state.model.backends.map((b) => b.scaleToZero?.buffer.holdTimeoutMs ?? 0));
  return Math.max(MIN_STREAM_IDLE_TIMEOUT_MS, longestHold + STREAM_IDLE_MARGIN_MS);
}

export function millisToDuration(ms: number): { seconds: number; nanos?: number } {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms % 1000) * 1_000_000;
  return nanos === 0 ? { seconds } : { seconds, nanos };
}
