import type { DesiredState } from './desired-state.ts';
import { clusterName } from './names.ts';
import { socketAddress, type Resource } from './resource.ts';

export function buildEndpoints(state: DesiredState): Resource[] {
  return state.config.hosts.map((host) => {
    const name = clusterName(host.name);
    return {
      name,
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: host.endpoints.map((e) => ({ endpoint: { address: socketAddress(e.address, e.port) } })),
        },
      ],
    };
  });
}
