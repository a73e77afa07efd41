import { isIP } from 'node:net';
import type { BackendModel } from '../model/gateway-model.ts';
import { CLUSTER_CONNECTION_LIMIT, CLUSTER_REQUEST_LIMIT } from './defaults.ts';
import { controlPlaneTransportSocket } from './control-plane-tls.ts';
import type { DesiredState, WakeTarget } from './desired-state.ts';
import { BuildMemo } from './memo.ts';
import { CONTROL_PLANE_CLUSTER } from './names.ts';
import { adsConfigSource, socketAddress, type Resource } from './resource.ts';
import { ANY_TYPES } from './type-urls.ts';

export function buildClusters(state: DesiredState): Resource[] {
  const clusters = state.model.backends.map((b) => clusterMemo.get(b, '', () => backendCluster(b)));
  if (state.wake) clusters.push(controlPlaneCluster(state.wake));
  return clusters;
}

const clusterMemo = new BuildMemo<BackendModel, Resource>();

function backendCluster(backend: BackendModel): Resource {
  const name = backend.clusterName;
  const cluster: Resource = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: adsConfigSource(), service_name: name },
    connect_timeout: { seconds: 2 },
    lb_policy: 'ROUND_ROBIN',
    circuit_breakers: { thresholds: [circuitBreaker()] },
  };
  if (backend.protocol !== 'http1') {
    // gRPC and HTTP/2 backends are reached with h2c prior knowledge.
    cluster.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': ANY_TYPES.httpProtocolOptions,
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  }
  return cluster;
}

/** The filter's wake calls go here; static, so it needs no EDS and is usable as soon as CDS lands. */
function controlPlaneCluster({ address, port, tls }: WakeTarget): Resource {
  return {
    name: CONTROL_PLANE_CLUSTER,
    // The wake port speaks HTTP/1.1 (Node's https server): no ALPN needed beyond it.
    ...(tls ? { transport_socket: controlPlaneTransportSocket(tls, ['http/1.1']) } : {}),
    // A name (e.g. a compose service) needs DNS; an IP literal needs none.
    type: isIP(address) ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: { seconds: 1 },
    load_assignment: {
      cluster_name: CONTROL_PLANE_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address, port) } }] }],
    },
  };
}

function circuitBreaker(): Record<string, unknown> {
  return {
    priority: 'DEFAULT',
    max_connections: { value: CLUSTER_CONNECTION_LIMIT },
    max_pending_requests: { value: CLUSTER_REQUEST_LIMIT },
    max_requests: { value: CLUSTER_REQUEST_LIMIT },
  };
}
