import { isIP } from 'node:net';
import type { BackendModel } from '../model/gateway-model.ts';
import { CLUSTER_CONNECTION_LIMIT, CLUSTER_REQUEST_LIMIT } from './defaults.ts';
import { controlPlaneTransportSocket } from './control-plane-tls.ts';
import type { DesiredState, WakeTarget } from './desired-state.ts';
import { BuildMemo, deepFrozen } from './memo.ts';
import { CONTROL_PLANE_CLUSTER } from './names.ts';
import { adsConfigSource, socketAddress, type Resource } from './resource.ts';
import { ANY_TYPES } from './type-urls.ts';

export function buildClusters(state: DesiredState): Resource[] {
  const clusters = state.model.backends.map((b) => clusterMemo.get(b, '', () => backendCluster(b)));
  if (state.wake) clusters.push(controlPlaneCluster(state.wake));
  return clusters;
}

const clusterMemo = new BuildMemo<BackendModel, Resource>();

// What every backend's cluster says alike: one frozen object each, shared by all clusters (they are frozen
// once built, snapshots/memo.ts, so sharing is safe). A cluster's own parts are its name and protocol: at
// 5,000 hosts this keeps ~1.8 MiB fewer objects than building these anew per cluster.
const EDS_CONFIG = deepFrozen(adsConfigSource());
const CONNECT_TIMEOUT = deepFrozen({ seconds: 2 });
const CIRCUIT_BREAKERS = deepFrozen({ thresholds: [circuitBreaker()] });
// gRPC and HTTP/2 backends are reached with h2c prior knowledge.
const H2C_PROTOCOL_OPTIONS = deepFrozen({
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': ANY_TYPES.httpProtocolOptions,
    explicit_http_config: { http2_protocol_options: {} },
  },
});

function backendCluster(backend: BackendModel): Resource {
  const name = backend.clusterName;
  const cluster: Resource = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: EDS_CONFIG, service_name: name },
    connect_timeout: CONNECT_TIMEOUT,
    lb_policy: 'ROUND_ROBIN',
    circuit_breakers: CIRCUIT_BREAKERS,
  };
  if (backend.protocol !== 'http1') cluster.typed_extension_protocol_options = H2C_PROTOCOL_OPTIONS;
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
