// Envoy's bootstrap: who this Envoy is, where its admin listens, and where its control plane is. All else
// (listeners, routes, clusters, endpoints, the buffer filter) comes over ADS.
import { isIP } from 'node:net';
import { ANY_TYPES } from '../snapshots/type-urls.ts';
import { controlPlaneTransportSocket, type ControlPlaneTlsFiles } from '../snapshots/control-plane-tls.ts';

export interface BootstrapOptions {
  nodeId: string;
  nodeCluster?: string;
  xdsAddress: string;
  xdsPort: number;
  /**
   * More control-plane replicas. Envoy keeps one ADS stream to one of them (round robin); when that stream
   * breaks, its next attempt (within XDS_RECONNECT_BACKOFF) may go to another, so a replica that dies is
   * replaced in about a second.
   */
  moreXdsEndpoints?: readonly { address: string; port: number }[];
  adminAddress?: string;
  /** 0 = any free port; read it back with --admin-address-path. */
  adminPort?: number;
  /** ADS reconnect backoff; null leaves Envoy's own default (the benchmark's baseline). */
  reconnectBackoff?: { base_interval: string; max_interval: string } | null;
  /**
   * node.metadata. The control plane reads "scaletozero.dev/gateway" (`<namespace>/<name>` of a Gateway in
   * Kubernetes mode): this Envoy then gets only that gateway's config. Without it, every gateway's.
   */
  metadata?: Record<string, string>;
  /** State of the world (GRPC, the default) or incremental (DELTA_GRPC) ADS. */
  apiType?: 'GRPC' | 'DELTA_GRPC';
  /**
   * Mutual TLS to the control plane: the SDS files (written by the control plane, xds-server/security/file-pki.ts)
   * that name this Envoy's client certificate and the CA it trusts. Envoy watches them, so a re-issued
   * certificate is used for new connections without a restart. ALPN h2: the gRPC server speaks only HTTP/2.
   * Absent: plaintext.
   */
  xdsTls?: ControlPlaneTlsFiles;
}

export const XDS_CLUSTER_NAME = 'xds_control_plane';

/**
 * How fast Envoy re-opens its ADS stream after losing the control plane. Envoy's default (500 ms base, 30 s
 * cap, jittered) left a gateway 10-28 s without config updates after a control-plane restart: wakes could not
 * be released in that time. A 1 s cap costs one connection attempt per second per Envoy while the control
 * plane is away. Measured in bench/results/reconnect.md.
 */
export const XDS_RECONNECT_BACKOFF = { base_interval: '0.25s', max_interval: '1s' } as const;

export function renderBootstrap(o: BootstrapOptions): Record<string, unknown> {
  const ads = { ads: {}, resource_api_version: 'V3' };
  return {
    node: { id: o.nodeId, cluster: o.nodeCluster ?? 'scale-to-zero-gateway', ...(o.metadata ? { metadata: { ...o.metadata } } : {}) },
    admin: { address: { socket_address: { address: o.adminAddress ?? '127.0.0.1', port_value: o.adminPort ?? 0 } } },
    dynamic_resources: {
      ads_config: {
        api_type: o.apiType ?? 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [{ envoy_grpc: adsGrpcService(o.reconnectBackoff === undefined ? XDS_RECONNECT_BACKOFF : o.reconnectBackoff) }],
      },
      lds_config: ads,
      cds_config: { ads: {}, resource_api_version: 'V3' },
    },
    cluster_manager: {
      // Per-cluster request counts streamed to the control plane (LRS): its signal for idle hosts.
      load_stats_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER_NAME } }],
      },
    },
    static_resources: {
      clusters: [
        {
          name: XDS_CLUSTER_NAME,
          // A host name (a compose service) needs DNS; an IP literal needs none.
          type: [o.xdsAddress, ...(o.moreXdsEndpoints ?? []).map((e) => e.address)].every((a) => isIP(a)) ? 'STATIC' : 'STRICT_DNS',
          connect_timeout: '1s',
          ...(o.xdsTls ? { transport_socket: controlPlaneTransportSocket(o.xdsTls, ['h2']) } : {}),
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': ANY_TYPES.httpProtocolOptions,
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          load_assignment: {
            cluster_name: XDS_CLUSTER_NAME,
            endpoints: [
              {
                lb_endpoints: [{ address: o.xdsAddress, port: o.xdsPort }, ...(o.moreXdsEndpoints ?? [])].map((e) => ({
                  endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
                })),
              },
            ],
          },
        },
      ],
    },
  };
}

function adsGrpcService(backoff: BootstrapOptions['reconnectBackoff']): Record<string, unknown> {
  // Envoy honours retry_policy only on xDS streams; its LRS stream retries on a fixed 5 s timer (observed).
  return backoff ? { cluster_name: XDS_CLUSTER_NAME, retry_policy: { retry_back_off: backoff } } : { cluster_name: XDS_CLUSTER_NAME };
}

/** The checked-in bootstraps; test/golden/bootstrap.test.ts keeps the files equal to these renderings. */
export const CHECKED_IN_BOOTSTRAPS: Record<string, BootstrapOptions> = {
  'bootstrap.yaml': { nodeId: 'local-gateway', xdsAddress: '127.0.0.1', xdsPort: 18000, adminPort: 9901 },
  'bootstrap.docker.yaml': { nodeId: 'docker-gateway', xdsAddress: 'control-plane', xdsPort: 18000, adminAddress: '0.0.0.0', adminPort: 9901 },
};
