import type { BackendModel } from '../model/gateway-model.ts';
import type { DesiredState } from './desired-state.ts';
import { BuildMemo } from './memo.ts';
import { socketAddress, type Resource } from './resource.ts';

export function buildEndpoints(state: DesiredState): Resource[] {
  return endpointsOf(state.model.backends);
}

/** Each backend's endpoints (a ClusterLoadAssignment named after its cluster). */
export function endpointsOf(backends: readonly BackendModel[]): Resource[] {
  return backends.map((backend) => endpointsMemo.get(backend, '', () => ({
    name: backend.clusterName,
    cluster_name: backend.clusterName,
    endpoints: [
      {
        lb_endpoints: backend.endpoints.map((e) => ({ endpoint: { address: socketAddress(e.address, e.port) } })),
      },
    ],
  })));
}

const endpointsMemo = new BuildMemo<BackendModel, Resource>();
