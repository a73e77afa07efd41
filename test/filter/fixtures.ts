// Builders for plugin configurations in the shape of docs/filter-contract.md.

export interface HostEntry {
  name: string;
  domains: string[];
  /** Envoy cluster names (contract: optional). */
  clusters?: string[];
  holdTimeoutMs: number;
  maxHeld: number;
  retryAfterSeconds: number;
  /** The host's last wake failed (contract "Failed wakes"). */
  failure?: { reason: string; retryAfterSeconds: number };
  /** Released requests carry x-scale-to-zero-held-ms (contract "Held-time header"). */
  heldHeader?: boolean;
}

export interface WakeEntry {
  cluster: string;
  authority: string;
  pathPrefix: string;
  leaseMs: number;
  timeoutMs: number;
}

export interface PluginConfig {
  generation: number;
  hosts: HostEntry[];
  wake?: WakeEntry;
}

export function host(name: string, overrides: Partial<HostEntry> = {}): HostEntry {
  return {
    name,
    domains: [`${name}.local`],
    holdTimeoutMs: 30_000,
    maxHeld: 1000,
    retryAfterSeconds: 5,
    ...overrides,
  };
}

export function wake(overrides: Partial<WakeEntry> = {}): WakeEntry {
  return {
    cluster: 'scale_to_zero_control_plane',
    authority: 'scale-to-zero-control-plane',
    pathPrefix: '/v1/wake/',
    leaseMs: 5000,
    timeoutMs: 2000,
    ...overrides,
  };
}

export function config(generation: number, hosts: HostEntry[], wakeEntry?: WakeEntry): PluginConfig {
  return wakeEntry ? { generation, hosts, wake: wakeEntry } : { generation, hosts };
}

export const HELD = 'scale_to_zero.held';
export const RELEASED = 'scale_to_zero.released';
export const TIMED_OUT = 'scale_to_zero.timed_out';
export const OVERFLOWED = 'scale_to_zero.overflowed';
export const CANCELLED = 'scale_to_zero.cancelled';
export const HOLD_TIME_MS = 'scale_to_zero.hold_time_ms';
export const WAKE_CALLS = 'scale_to_zero.wake_calls';
export const WAKE_FAILED = 'scale_to_zero.wake_failed';
export const hostHeld = (name: string): string => `scale_to_zero.host.${name}.held`;
