// The buffer filter's plugin configuration, as specified in docs/filter-contract.md. The filter parses
// exactly this shape; keep both sides in step with that document.
import type { DesiredState } from './desired-state.ts';
import { CONTROL_PLANE_AUTHORITY, CONTROL_PLANE_CLUSTER, WAKE_PATH_PREFIX } from './names.ts';

export interface FilterHostConfig {
  name: string;
  /** Request hosts matched on :authority (the fast path; file mode). */
  domains: string[];
  /** Envoy clusters matched on the cluster the route picked (xds.cluster_name); absent when domains suffice. */
  clusters?: string[];
  holdTimeoutMs: number;
  maxHeld: number;
  retryAfterSeconds: number;
}

export interface FilterWakeConfig {
  cluster: string;
  authority: string;
  pathPrefix: string;
  leaseMs: number;
  timeoutMs: number;
}

export interface FilterConfig {
  generation: number;
  hosts: FilterHostConfig[];
  wake?: FilterWakeConfig;
}

/** What the filter must know, without the generation: a change here is what bumps the generation. */
export function filterConfigContent(state: Omit<DesiredState, 'generation'>): Omit<FilterConfig, 'generation'> {
  const hosts = state.model.backends
    .filter((b) => b.scaleToZero !== undefined && state.held.has(b.name))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((b): FilterHostConfig => {
      const policy = b.scaleToZero!;
      // A backend that owns its request hosts is matched on :authority alone; any other is matched on the
      // cluster the route picked, so a rule splitting traffic between a cold and a warm backend holds only
      // what goes to the cold one.
      const match = policy.exclusiveDomains.length > 0 ? { domains: [...policy.exclusiveDomains] } : { domains: [], clusters: [b.clusterName] };
      return {
        name: b.name,
        ...match,
        holdTimeoutMs: policy.buffer.holdTimeoutMs,
        maxHeld: policy.buffer.maxHeld,
        retryAfterSeconds: policy.buffer.retryAfterSeconds,
      };
    });
  const content: Omit<FilterConfig, 'generation'> = { hosts };
  if (state.wake) {
    content.wake = {
      cluster: CONTROL_PLANE_CLUSTER,
      authority: CONTROL_PLANE_AUTHORITY,
      pathPrefix: WAKE_PATH_PREFIX,
      leaseMs: state.wake.leaseMs,
      timeoutMs: state.wake.timeoutMs,
    };
  }
  return content;
}

export function buildFilterConfig(state: DesiredState): FilterConfig {
  return { generation: state.generation, ...filterConfigContent(state) };
}

/** Key order is fixed by construction, so equal configs serialise to equal bytes. */
export function serialiseFilterConfig(config: FilterConfig): string {
  return JSON.stringify(config);
}
