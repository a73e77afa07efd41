// Route attachment: which Listeners of which of our Gateways each parentRef of a Route binds to, with the
// host names it serves there, or why it binds to none. A parentRef attaches to every Listener it selects
// (sectionName, port) that allows the Route (kind, namespace) and shares a host name with it; it is Accepted
// when it attaches to at least one ("If 1 of 2 Gateway listeners accept attachment from the referencing
// Route, the Route MUST be considered successfully attached").
import { GATEWAY_GROUP, LABEL_NAMESPACE_NAME, REASON } from './api.ts';
import type { GatewayInfo, ListenerInfo } from './gateways.ts';
import { effectiveHostnames, intersectHostname } from './hostnames.ts';
import { allRulesUnsupported, supportedRules, type RouteInfo } from './routes.ts';
import { describeRule } from './rules.ts';
import { selectorMatches } from './selectors.ts';
import type { Namespace, ParentReference } from './types.ts';

export interface Attachment {
  listener: ListenerInfo;
  /** Host names the Route serves through this Listener (never empty). */
  hostnames: string[];
}

export interface ParentResult {
  /** The parentRef as written. */
  ref: ParentReference;
  gateway: GatewayInfo;
  attachments: Attachment[];
  /** Why the Route is not accepted by this parent; undefined when it is. */
  failure: { reason: string; message: string } | undefined;
}

export type NamespaceLabels = ReadonlyMap<string, Readonly<Record<string, string>>>;

export function namespaceLabels(namespaces: readonly Namespace[]): NamespaceLabels {
  return new Map(namespaces.map((n) => [n.metadata.name, { [LABEL_NAMESPACE_NAME]: n.metadata.name, ...(n.metadata.labels ?? {}) }]));
}

/**
 * The parentRefs of a Route that name one of our Gateways, each with its result; parentRefs naming anything
 * else (another controller's Gateway, a Service for a mesh) are not ours to answer and are left out.
 */
export function attachRoute(route: RouteInfo, gateways: ReadonlyMap<string, GatewayInfo>, labels: NamespaceLabels): ParentResult[] {
  const results: ParentResult[] = [];
  for (const ref of route.parentRefs) {
    if ((ref.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP || (ref.kind ?? 'Gateway') !== 'Gateway') continue;
    const gateway = gateways.get(`${ref.namespace ?? route.namespace}/${ref.name}`);
    if (!gateway) continue;
    results.push(attachParent(route, ref, gateway, labels));
  }
  return results;
}

function attachParent(route: RouteInfo, ref: ParentReference, gateway: GatewayInfo, labels: NamespaceLabels): ParentResult {
  const fail = (reason: string, message: string): ParentResult => ({ ref, gateway, attachments: [], failure: { reason, message } });
  const selected = gateway.listeners.filter(
    (l) => (ref.sectionName === undefined || l.spec.name === ref.sectionName) && (ref.port === undefined || l.spec.port === ref.port),
  );
  if (selected.length === 0) return fail(REASON.NoMatchingParent, `Gateway ${gateway.key} has no listener${selector(ref)}`);
  const allowed = selected.filter((l) => l.kinds.includes(route.kind) && namespaceAllowed(l, gateway.namespace, route.namespace, labels));
  if (allowed.length === 0) return fail(REASON.NotAllowedByListeners, `no listener${selector(ref)} of Gateway ${gateway.key} allows ${route.kind}s from namespace ${route.namespace}`);
  const attachments = allowed
    .map((listener) => ({ listener, hostnames: effectiveHostnames(listener.hostname, route.hostnames) }))
    .filter((a) => a.hostnames.length > 0);
  if (attachments.length === 0) return fail(REASON.NoMatchingListenerHostname, `no listener${selector(ref)} of Gateway ${gateway.key} shares a hostname with the route`);
  if (allRulesUnsupported(route)) {
    const dropped = route.rules.map((r) => `Dropped Rule ${describeRule(r)}: ${r.unsupported}`).join('; ');
    return fail(REASON.UnsupportedValue, dropped);
  }
  return { ref, gateway, attachments, failure: undefined };
}

function selector(ref: ParentReference): string {
  const parts = [ref.sectionName !== undefined ? `named ${ref.sectionName}` : '', ref.port !== undefined ? `on port ${ref.port}` : ''].filter((p) => p !== '');
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}

/** allowedRoutes.namespaces: Same (the default), All, Selector (labels of the Route's namespace), None. */
export function namespaceAllowed(listener: ListenerInfo, gatewayNamespace: string, routeNamespace: string, labels: NamespaceLabels): boolean {
  const from = listener.spec.allowedRoutes?.namespaces?.from ?? 'Same';
  switch (from) {
    case 'All':
      return true;
    case 'Same':
      return routeNamespace === gatewayNamespace;
    case 'Selector': {
      const sel = listener.spec.allowedRoutes?.namespaces?.selector;
      if (!sel) return false;
      return selectorMatches(sel, labels.get(routeNamespace) ?? { [LABEL_NAMESPACE_NAME]: routeNamespace });
    }
    default:
      return false;
  }
}

/**
 * HTTPRoutes and GRPCRoutes must not share host names on one Listener: of two that do, the older keeps the
 * Listener and the newer loses it (GRPCRouteSpec.hostnames). Routes come oldest first, so a Route only ever
 * loses to Routes already kept. A parentRef left with no Listener is refused.
 */
export function resolveKindConflicts(routes: readonly { route: RouteInfo; parents: ParentResult[] }[]): void {
  const kept = new Map<ListenerInfo, { kind: RouteInfo['kind']; key: string; hostnames: string[] }[]>();
  for (const { route, parents } of routes) {
    for (const parent of parents) {
      if (parent.failure) continue;
      const losers: string[] = [];
      parent.attachments = parent.attachments.filter((a) => {
        const rival = (kept.get(a.listener) ?? []).find(
          (k) => k.kind !== route.kind && k.hostnames.some((h) => a.hostnames.some((mine) => intersectHostname(h, mine) !== undefined)),
        );
        if (rival) {
          losers.push(`${a.listener.spec.name} (${rival.kind} ${rival.key})`);
          return false;
        }
        return true;
      });
      for (const a of parent.attachments) {
        const list = kept.get(a.listener) ?? [];
        if (!list.some((k) => k.key === route.key && k.kind === route.kind)) list.push({ kind: route.kind, key: route.key, hostnames: a.hostnames });
        kept.set(a.listener, list);
      }
      if (parent.attachments.length === 0) {
        parent.failure = { reason: REASON.HostnameConflict, message: `an older route of the other kind serves the same hostnames on listener ${losers.join(', ')}` };
      }
    }
  }
}

/** Routes counted on each Listener: distinct Routes attached and accepted there. */
export function attachedRouteCounts(routes: readonly { route: RouteInfo; parents: ParentResult[] }[]): Map<ListenerInfo, number> {
  const seen = new Map<ListenerInfo, Set<string>>();
  for (const { route, parents } of routes) {
    for (const p of parents) {
      for (const a of p.attachments) {
        const set = seen.get(a.listener) ?? new Set<string>();
        set.add(`${route.kind}/${route.key}`);
        seen.set(a.listener, set);
      }
    }
  }
  return new Map([...seen.entries()].map(([l, s]) => [l, s.size]));
}

/** The Route's rules that are dropped, as the PartiallyInvalid message wants them ("Dropped Rule ..."). */
export function droppedRulesMessage(route: RouteInfo): string | undefined {
  if (supportedRules(route).length === route.rules.length) return undefined;
  return route.rules
    .filter((r) => r.unsupported !== undefined)
    .map((r) => `Dropped Rule ${describeRule(r)}: ${r.unsupported}`)
    .join('; ');
}
