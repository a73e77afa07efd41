// How a publish reaches Envoy without breaking traffic (make before break), decided from the snapshot in force
// and the next one. Pure: the publisher (publisher.ts) carries the plan out.
//
// Envoy's rules behind it: a new cluster is warming until its endpoints arrive, and a route to a cluster that is
// not warm answers 503; an updated cluster keeps serving as it was until its new version is warm. One ADS stream
// delivers in order (clusters, endpoints, listeners, routes, filter config), so what matters is only whether
// Envoy may see the routes and filter config before the new clusters are warm.
import type { Snapshot } from '../snapshots/build.ts';
import { BUFFER_FILTER_NAME } from '../snapshots/names.ts';
import type { Resource } from '../snapshots/resource.ts';
import { sameResource } from '../snapshots/wire.ts';

/**
 * at-once: one push, nothing warms (or only clusters change).
 * warm-alongside: new clusters warm, but the routes and filter config that come with them only give requests
 *   that nothing served before a way to those clusters (new virtual hosts on new domains, say a cold load):
 *   no wait for an ACK; the clusters and endpoints go out first, the rest right after (once the route table is
 *   encoded), and the publish is done once the new clusters and endpoints are applied (so a later publish, a
 *   release say, never reaches a cluster still warming).
 * warm-first: new or changed clusters (and all endpoints) first, ACKed, then the rest.
 * remove-last: everything but the removal of clusters, then the removal, without a wait.
 */
export type PublishPlan = 'at-once' | 'warm-alongside' | 'warm-first' | 'remove-last';

export function planOf(previous: Snapshot, next: Snapshot): PublishPlan {
  // Only the clusters' and endpoints' versions are read before the alongside decision: a version is worked out
  // (its resources encoded) when first read, and the publisher sends the clusters before the route table's turn.
  const upstreamChanged = previous.versions.cluster !== next.versions.cluster || previous.versions.endpoint !== next.versions.endpoint;
  if (!upstreamChanged) return 'at-once';
  let anyAdded = false;
  let changed = false;
  // forEach, not for...of: no entry array per cluster (a cold load walks thousands, in unoptimised code at first).
  next.resources.cluster.forEach((cluster, name) => {
    const before = previous.resources.cluster.get(name);
    if (before === undefined) anyAdded = true;
    else if (!changed && !sameResource('cluster', before, cluster)) changed = true;
  });
  let removes = false;
  previous.resources.cluster.forEach((_, name) => {
    if (!removes && !next.resources.cluster.has(name)) removes = true;
  });
  // The added clusters, asked by name: no set of every new cluster's name (a cold load adds them all).
  const added: NameSet = { has: (name) => next.resources.cluster.has(name) && !previous.resources.cluster.has(name) };
  // A changed cluster serves as it was while its new version warms, but the filter config may release requests
  // onto it meanwhile (a woken host's new endpoints): those wait, as before. Removals are left to warm-first's
  // second phase, which removes them last. (With nothing downstream changed, alongside is at-once plus the wait.)
  if (anyAdded && !changed && !removes && reachesOnlyNewTraffic(previous, next, added)) return 'warm-alongside';
  const downstreamChanged =
    previous.versions.listener !== next.versions.listener ||
    previous.versions.route !== next.versions.route ||
    previous.versions.extensionConfig !== next.versions.extensionConfig;
  if (!downstreamChanged) return 'at-once';
  if (anyAdded || changed) return 'warm-first';
  return removes ? 'remove-last' : 'at-once';
}

/**
 * True when sending `next`'s listeners, routes and filter config before the `added` clusters are warm sends no
 * request that was served before to a cold cluster, and releases no held request: every listener in force
 * stays as it is; a virtual host that routes to an added cluster has no domain that any virtual host in force
 * (of the same route table) could have matched; the filter config releases no host and names no added cluster.
 */
/** Names asked one at a time (a ReadonlySet will do). */
export interface NameSet {
  has(name: string): boolean;
}

export function reachesOnlyNewTraffic(previous: Snapshot, next: Snapshot, added: NameSet): boolean {
  for (const [name, listener] of previous.resources.listener) {
    const after = next.resources.listener.get(name);
    if (after === undefined || !sameResource('listener', after, listener)) return false;
  }
  if (previous.versions.extensionConfig !== next.versions.extensionConfig && !filterConfigHoldsOn(previous.resources.extensionConfig.get(BUFFER_FILTER_NAME), next.resources.extensionConfig.get(BUFFER_FILTER_NAME), added)) return false;
  for (const [name, table] of next.resources.route) {
    const before = previous.resources.route.get(name);
    // A route table nothing used before serves only a listener that is new (or was waiting for it).
    if (before === undefined || before === table) continue;
    const domainsInForce = virtualHostsOf(before).flatMap((vh) => vh.domains ?? []);
    if (domainsInForce.length === 0) continue;
    const domainsBefore = new DomainIndex(domainsInForce);
    // The domains first: they are few per virtual host, while mentionsAny walks the whole host. A cold load (a
    // table in force with no virtual host, every host new) then walks none of them: ~10-30 ms at 5,000 hosts.
    for (const vh of virtualHostsOf(table)) {
      if ((vh.domains ?? []).some((d) => domainsBefore.overlaps(d)) && mentionsAny(vh, added)) return false;
    }
  }
  return true;
}

interface VirtualHostShape {
  domains?: string[];
}

function virtualHostsOf(table: Resource): VirtualHostShape[] {
  return (table.virtual_hosts as VirtualHostShape[] | undefined) ?? [];
}

/** Any string anywhere in the value is one of the names (a route's cluster, a weighted or mirrored one). */
function mentionsAny(value: unknown, names: NameSet): boolean {
  if (typeof value === 'string') return names.has(value);
  if (value === null || typeof value !== 'object') return false;
  // for...in, not Object.values: no array per object walked (plain data, no inherited keys).
  for (const key in value) if (mentionsAny((value as Record<string, unknown>)[key], names)) return true;
  return false;
}

/**
 * Could one request host match both domain patterns (Envoy's: exact, "*", "*suffix", "prefix*"; the route
 * tables ignore the port)? Two wildcards are taken to overlap: the answer only has to be safe.
 */
export function domainsOverlap(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y) return true;
  const wildA = x.includes('*');
  const wildB = y.includes('*');
  if (wildA && wildB) return true;
  if (wildA) return wildcardMatches(x, y);
  if (wildB) return wildcardMatches(y, x);
  return false;
}

/**
 * The domains in force, for asking whether a new one overlaps any of them (domainsOverlap against each, the
 * same answers) without comparing every pair: adding 5,000 hosts to 5,000 took 1.3 s of pairs.
 */
export class DomainIndex {
  private readonly exact = new Set<string>();
  private readonly wild: string[] = [];

  constructor(domains: readonly string[]) {
    for (const d of domains) {
      const x = d.toLowerCase();
      if (x.includes('*')) this.wild.push(x);
      else this.exact.add(x);
    }
  }

  overlaps(domain: string): boolean {
    const y = domain.toLowerCase();
    // A wildcard overlaps every wildcard (domainsOverlap's safe answer) and the exact names it matches.
    if (y.includes('*')) return this.wild.length > 0 || [...this.exact].some((x) => wildcardMatches(y, x));
    return this.exact.has(y) || this.wild.some((w) => wildcardMatches(w, y));
  }
}

function wildcardMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return host.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return host.startsWith(pattern.slice(0, -1));
  return true;
}

/** The filter config's hosts, by name, and every cluster it names (a host matched by cluster, the wake cluster). */
function filterConfigOf(resource: Resource | undefined): { hosts: Set<string>; clusters: Set<string> } | undefined {
  const text = (resource as { typed_config?: { config?: { configuration?: { value?: unknown } } } } | undefined)?.typed_config?.config?.configuration?.value;
  if (typeof text !== 'string') return undefined;
  try {
    const config = JSON.parse(text) as { hosts?: { name?: unknown; clusters?: unknown }[]; wake?: { cluster?: unknown } };
    const hosts = new Set<string>();
    const clusters = new Set<string>();
    for (const h of config.hosts ?? []) {
      if (typeof h.name === 'string') hosts.add(h.name);
      if (Array.isArray(h.clusters)) for (const c of h.clusters) if (typeof c === 'string') clusters.add(c);
    }
    if (typeof config.wake?.cluster === 'string') clusters.add(config.wake.cluster);
    return { hosts, clusters };
  } catch {
    return undefined;
  }
}

/** The next filter config still holds every host the one in force holds, and names none of the added clusters. */
function filterConfigHoldsOn(before: Resource | undefined, after: Resource | undefined, added: NameSet): boolean {
  const a = filterConfigOf(before);
  const b = filterConfigOf(after);
  if (a === undefined || b === undefined) return false;
  for (const host of a.hosts) if (!b.hosts.has(host)) return false;
  for (const cluster of b.clusters) if (added.has(cluster)) return false;
  return true;
}
