// The buffer filter's plugin configuration, as specified in docs/filter-contract.md. The filter parses
// exactly this shape; keep both sides in step with that document.
import type { DesiredState } from './desired-state.ts';
import { CONTROL_PLANE_AUTHORITY, CONTROL_PLANE_CLUSTER, WAKE_PATH_PREFIX } from './names.ts';

export interface FilterHostConfig {
  name: string;
  domains: string[];
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
  const hosts = state.config.hosts
    .filter((h) => state.scaledToZero.has(h.name))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((h) => ({
      name: h.name,
      domains: [...h.domains],
      holdTimeoutMs: h.buffer.holdTimeoutMs,
      maxHeld: h.buffer.maxHeld,
      retryAfterSeconds: h.buffer.retryAfterSeconds,
    }));
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
