// Host names as Gateway API defines them: exact names, and `*.suffix` wildcards that match one or more labels
// in front of the suffix (`*.example.com` matches `foo.example.com` and `foo.bar.example.com`, not
// `example.com`). `*` alone stands for "any host" (a Listener or Route that names none).

export const ANY_HOST = '*';

function isWildcard(h: string): boolean {
  return h.startsWith('*.');
}

/** The suffix a wildcard matches below, with its leading dot: `*.example.com` -> `.example.com`. */
function wildcardSuffix(h: string): string {
  return h.slice(1);
}

/**
 * Whether every host `specific` matches is also matched by `general`: `*` covers everything; a wildcard
 * covers the exact names below its suffix and the wildcards with the same or a longer suffix.
 */
export function covers(general: string, specific: string): boolean {
  if (general === ANY_HOST || general === specific) return true;
  if (!isWildcard(general) || specific === ANY_HOST) return false;
  const suffix = wildcardSuffix(general);
  if (isWildcard(specific)) return wildcardSuffix(specific).endsWith(suffix);
  return specific.endsWith(suffix) && specific.length > suffix.length;
}

/** The hosts both match, as one pattern (the more specific of the two), or undefined when they are disjoint. */
export function intersectHostname(a: string, b: string): string | undefined {
  if (covers(a, b)) return b;
  if (covers(b, a)) return a;
  return undefined;
}

/**
 * The host names a Route serves through a Listener (Gateway API, HTTPRoute/GRPCRoute spec.hostnames): the
 * Route's names that intersect the Listener's, each narrowed to the intersection; the Listener's name when
 * the Route names none; `*` when neither does. Empty: the Route does not attach to this Listener.
 */
export function effectiveHostnames(listenerHostname: string | undefined, routeHostnames: readonly string[]): string[] {
  const listener = listenerHostname ? listenerHostname.toLowerCase() : ANY_HOST;
  if (routeHostnames.length === 0) return [listener];
  const out: string[] = [];
  for (const raw of routeHostnames) {
    const h = intersectHostname(listener, raw.toLowerCase());
    if (h !== undefined && !out.includes(h)) out.push(h);
  }
  return out;
}

/**
 * Listener precedence for one port (Gateway API, "Listeners that are distinct only by Hostname"): exact names
 * before wildcards, a wildcard with more labels to the right of the `*` before one with fewer, and the
 * Listener with no host name last. Larger is more specific.
 */
export function listenerSpecificity(hostname: string | undefined): number {
  if (!hostname || hostname === ANY_HOST) return 0;
  const labels = hostname.split('.').length;
  return isWildcard(hostname) ? labels : 1000 + labels;
}

/**
 * Route hostname precedence across Routes (HTTPRoute spec.hostnames): the most characters in a matching
 * non-wildcard host name first, then the most characters in a matching host name. Compare the tuples in order.
 */
export function routeHostnameRank(hostname: string): [number, number] {
  if (hostname === ANY_HOST) return [0, 0];
  return isWildcard(hostname) ? [0, hostname.length] : [hostname.length, hostname.length];
}
