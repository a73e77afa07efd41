// The buffer filter's plugin configuration, as specified in docs/filter-contract.md. The filter parses
// exactly this shape; its bounds and name rules are stated once, in filter/assembly/config/rules.ts, which
// both the filter and filterConfigProblems() below compile.
import {
  MAX_HOLD_TIMEOUT_MS, MAX_MAX_HELD, MAX_RETRY_AFTER_SECONDS, MAX_WAKE_MS, MIN_HOLD_TIMEOUT_MS, MIN_MAX_HELD, MIN_RETRY_AFTER_SECONDS,
  MIN_WAKE_MS, clusterProblem, domainProblem, failureReasonProblem, hostNameProblem,
} from '../filter/assembly/config/rules.ts';
import type { DesiredState, WakeFailure } from './desired-state.ts';
import { CONTROL_PLANE_AUTHORITY, CONTROL_PLANE_CLUSTER, WAKE_PATH_PREFIX } from './names.ts';
import { compareNames } from '../model/name-order.ts';

export interface FilterHostConfig {
  name: string;
  /** Request hosts matched on :authority (the fast path; file mode). */
  domains: string[];
  /** Envoy clusters matched on the cluster the route picked (xds.cluster_name); absent when domains suffice. */
  clusters?: string[];
  holdTimeoutMs: number;
  maxHeld: number;
  retryAfterSeconds: number;
  /** The last wake failed: the filter answers this host's requests at once with the reason. */
  failure?: WakeFailure;
  /** Released requests carry x-scale-to-zero-held-ms. Sent only when true (a filter build before it refuses the field). */
  heldHeader?: true;
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
    .sort((a, b) => compareNames(a.name, b.name))
    .map((b): FilterHostConfig => {
      const policy = b.scaleToZero!;
      // A backend that owns its request hosts is matched on :authority alone; any other is matched on the
      // cluster the route picked, so a rule splitting traffic between a cold and a warm backend holds only
      // what goes to the cold one.
      const match = policy.exclusiveDomains.length > 0 ? { domains: [...policy.exclusiveDomains] } : { domains: [], clusters: [b.clusterName] };
      const failure = state.wakeFailures?.get(b.name);
      return {
        name: b.name,
        ...match,
        holdTimeoutMs: policy.buffer.holdTimeoutMs,
        maxHeld: policy.buffer.maxHeld,
        retryAfterSeconds: policy.buffer.retryAfterSeconds,
        ...(failure ? { failure: { reason: failure.reason, retryAfterSeconds: failure.retryAfterSeconds } } : {}),
        ...(policy.heldHeader ? { heldHeader: true as const } : {}),
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

/**
 * Every way `config` breaks the contract's rules, as "<json path>: <problem>" (the filter's wording): empty
 * when the filter will accept it. The sources validate their input more strictly than this; this is the
 * check that what we write is what the filter reads.
 */
export function filterConfigProblems(config: FilterConfig): string[] {
  const problems: string[] = [];
  const int = (v: number, path: string, min: number, max: number): void => {
    if (!Number.isSafeInteger(v) || v < min || v > max) problems.push(`${path}: must be in ${min}..${max}`);
  };
  int(config.generation, '$.generation', 1, Number.MAX_SAFE_INTEGER);
  const names = new Set<string>();
  const domains = new Set<string>();
  const clusters = new Set<string>();
  config.hosts.forEach((h, i) => {
    const path = `$.hosts[${i}]`;
    const nameProblem = hostNameProblem(h.name);
    if (nameProblem) problems.push(`${path}.name: ${nameProblem}`);
    if (names.has(h.name)) problems.push(`${path}.name: duplicate host name "${h.name}"`);
    names.add(h.name);
    const list = (items: readonly string[], key: string, problem: (s: string) => string, seen: Set<string>, what: string): void =>
      items.forEach((item, j) => {
        const p = problem(item);
        if (p) problems.push(`${path}.${key}[${j}]: ${p}`);
        else if (seen.has(item)) problems.push(`${path}.${key}[${j}]: duplicate ${what} "${item}"`);
        seen.add(item);
      });
    list(h.domains, 'domains', domainProblem, domains, 'domain');
    list(h.clusters ?? [], 'clusters', clusterProblem, clusters, 'cluster');
    if (h.domains.length === 0 && (h.clusters ?? []).length === 0) problems.push(`${path}.domains: must not be empty unless "clusters" lists at least one cluster`);
    int(h.holdTimeoutMs, `${path}.holdTimeoutMs`, MIN_HOLD_TIMEOUT_MS, MAX_HOLD_TIMEOUT_MS);
    int(h.maxHeld, `${path}.maxHeld`, MIN_MAX_HELD, MAX_MAX_HELD);
    int(h.retryAfterSeconds, `${path}.retryAfterSeconds`, MIN_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS);
    if (h.failure) {
      const p = failureReasonProblem(h.failure.reason);
      if (p) problems.push(`${path}.failure.reason: ${p}`);
      int(h.failure.retryAfterSeconds, `${path}.failure.retryAfterSeconds`, MIN_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS);
    }
  });
  if (config.wake) {
    int(config.wake.leaseMs, '$.wake.leaseMs', MIN_WAKE_MS, MAX_WAKE_MS);
    int(config.wake.timeoutMs, '$.wake.timeoutMs', MIN_WAKE_MS, MAX_WAKE_MS);
    if (!config.wake.pathPrefix.startsWith('/')) problems.push(`$.wake.pathPrefix: must start with '/'`);
  }
  return problems;
}
