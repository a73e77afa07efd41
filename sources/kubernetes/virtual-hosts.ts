// The model's listeners: one Envoy listener per Gateway and port, its HTTP Listeners merged into one route
// table. Virtual hosts are keyed by host name (Envoy wants domains unique per route table, and picks the
// most specific domain matching a request: exact, then the longest wildcard suffix, then `*`):
//  - a domain is every host name a Route serves through a Listener, plus each Listener's own host name (so
//    a request for a host a more specific Listener owns never falls through to a less specific Listener's
//    routes: Listener isolation);
//  - a domain belongs to the most specific Listener covering it, and only Routes attached to that Listener
//    serve it: all of those whose host name covers the domain (a Route naming `foo.example.com` comes
//    before one naming `*.example.com` for `foo.example.com`, and both serve it);
//  - within a domain, routes are in Gateway API precedence order (precedence.ts).
import type { ListenerModel, ListenerTlsModel, RouteAction, RouteModel, TlsFilterChainModel, VirtualHostModel } from '../../model/gateway-model.ts';
import type { ParentResult } from './attachment.ts';
import type { BackendUse, RefResolution } from './backends.ts';
import { redirectPort } from './filters.ts';
import { listenerProgrammable, programmablePorts, type GatewayInfo, type ListenerInfo } from './gateways.ts';
import { ANY_HOST, covers, listenerSpecificity, routeHostnameRank } from './hostnames.ts';
import { listenerName, routeConfigName, routeName, virtualHostName } from './names.ts';
import { compareStrings } from './objects.ts';
import { comparePrecedence, type PrecedenceKey } from './precedence.ts';
import type { RouteInfo } from './routes.ts';
import type { MatchSpec, RuleSpec } from './rules.ts';

/** A Route with its parents' results and each rule's resolved backendRefs (in backendRefs order). */
export interface ServedRoute {
  route: RouteInfo;
  parents: ParentResult[];
  refs: ReadonlyMap<RuleSpec, readonly RefResolution[]>;
}

export interface ListenersBuild {
  /** Forward actions name backends by backend id (backends.ts backendId); the caller renames them. */
  listeners: ListenerModel[];
  /** Every backend a forward action names, by id. */
  uses: Map<string, BackendUse>;
  /** Backend id -> keys of the Gateways whose listeners forward to it. */
  reach: Map<string, Set<string>>;
}

interface Contribution {
  served: ServedRoute;
  listener: ListenerInfo;
  host: string;
}

export function buildListeners(gateways: readonly GatewayInfo[], routes: readonly ServedRoute[]): ListenersBuild {
  const out: ListenersBuild = { listeners: [], uses: new Map(), reach: new Map() };
  for (const g of gateways) {
    for (const port of programmablePorts(g)) {
      const own = g.listeners.filter((l) => l.spec.port === port && listenerProgrammable(g, l));
      const tls = listenerTls(own);
      out.listeners.push({
        name: listenerName(g.namespace, g.name, port),
        gateway: g.key,
        address: g.address!,
        port,
        routeConfigName: routeConfigName(g.namespace, g.name, port),
        virtualHosts: virtualHosts(g, port, own, routes, out),
        ...(tls ? { tls } : {}),
      });
    }
  }
  out.listeners.sort((a, b) => compareStrings(a.name, b.name));
  return out;
}

/**
 * HTTPS Listeners on one port (conflicts leave only one protocol per port): a filter chain per Listener,
 * matched on SNI by its hostname, the one without a hostname as the default. All chains share the route
 * table, where Listener isolation already holds per domain.
 */
function listenerTls(own: readonly ListenerInfo[]): ListenerTlsModel | undefined {
  const https = own.filter((l) => l.spec.protocol === 'HTTPS' && l.certificates !== undefined);
  if (https.length === 0) return undefined;
  const chains: TlsFilterChainModel[] = https.map((l) => ({
    serverNames: l.hostname !== undefined ? [l.hostname] : [],
    certificates: l.certificates!.map((c) => ({ ...c })),
  }));
  const rank = (c: TlsFilterChainModel): number => (c.serverNames.length === 0 ? 2 : c.serverNames[0]!.startsWith('*.') ? 1 : 0);
  chains.sort((a, b) => rank(a) - rank(b) || compareStrings(a.serverNames[0] ?? '', b.serverNames[0] ?? ''));
  return { filterChains: chains };
}

function virtualHosts(g: GatewayInfo, port: number, own: readonly ListenerInfo[], routes: readonly ServedRoute[], out: ListenersBuild): VirtualHostModel[] {
  const contributions: Contribution[] = [];
  const seen = new Set<string>();
  for (const served of routes) {
    for (const parent of served.parents) {
      if (parent.gateway !== g) continue;
      for (const a of parent.attachments) {
        if (!own.includes(a.listener)) continue;
        for (const host of a.hostnames) {
          const id = `${served.route.kind}/${served.route.key}|${a.listener.spec.name}|${host}`;
          if (seen.has(id)) continue;
          seen.add(id);
          contributions.push({ served, listener: a.listener, host });
        }
      }
    }
  }
  if (contributions.length === 0) return [];
  const domains = new Set(contributions.map((c) => c.host));
  for (const l of own) if (l.hostname !== undefined) domains.add(l.hostname);

  return [...domains].sort(compareDomains).map((domain) => {
    const owner = [...own].filter((l) => covers(l.hostname ?? ANY_HOST, domain)).sort((a, b) => listenerSpecificity(b.hostname) - listenerSpecificity(a.hostname))[0];
    const serving = contributions.filter((c) => c.listener === owner && covers(c.host, domain));
    return { name: virtualHostName(domain), domains: [domain], routes: orderedRoutes(g, port, serving, out) };
  });
}

/** Exact names, then wildcards, then `*`; alphabetical within each. */
function compareDomains(a: string, b: string): number {
  const rank = (d: string): number => (d === ANY_HOST ? 2 : d.startsWith('*.') ? 1 : 0);
  return rank(a) - rank(b) || compareStrings(a, b);
}

interface Entry {
  key: PrecedenceKey;
  served: ServedRoute;
  rule: RuleSpec;
  match: MatchSpec;
}

function orderedRoutes(g: GatewayInfo, port: number, serving: readonly Contribution[], out: ListenersBuild): RouteModel[] {
  const best = new Map<string, Entry>();
  for (const c of serving) {
    const { route } = c.served;
    for (const rule of route.rules) {
      if (rule.unsupported !== undefined) continue;
      rule.matches.forEach((match, m) => {
        const key: PrecedenceKey = {
          hostRank: routeHostnameRank(c.host),
          pathKind: match.path.kind,
          pathLength: match.path.value.length,
          headerCount: match.headers.length,
          created: route.created,
          routeKey: route.key,
          routeKind: route.kind,
          rule: rule.index,
          match: m,
        };
        const id = `${route.kind}/${route.key}/${rule.index}/${m}`;
        const before = best.get(id);
        if (!before || comparePrecedence(key, before.key) < 0) best.set(id, { key, served: c.served, rule, match });
      });
    }
  }
  return [...best.values()].sort((a, b) => comparePrecedence(a.key, b.key)).map((e) => routeModel(g, port, e, out));
}

function routeModel(g: GatewayInfo, port: number, e: Entry, out: ListenersBuild): RouteModel {
  const { route } = e.served;
  const action = routeAction(g, port, e, out);
  return {
    name: routeName(route.kind, route.namespace, route.name, e.rule.index, e.key.match),
    match: { path: { ...e.match.path }, ...(e.match.headers.length > 0 ? { headers: e.match.headers.map((h) => ({ ...h })) } : {}) },
    action,
    ...(action.kind === 'forward' && e.rule.requestHeaders ? { requestHeaders: structuredClone(e.rule.requestHeaders) } : {}),
  };
}

/**
 * A redirect; else the rule's valid backends with weight > 0 (the same backend twice counts once, weights
 * added); else 500 (HTTPRouteRule.backendRefs: "If *all* entries in BackendRefs are invalid, and there are
 * also no filters specified in this route rule, *all* traffic which matches this rule MUST receive a 500").
 */
function routeAction(g: GatewayInfo, port: number, e: Entry, out: ListenersBuild): RouteAction {
  const { rule } = e;
  if (rule.redirect) {
    const { scheme, hostname, path, statusCode } = rule.redirect;
    return {
      kind: 'redirect',
      ...(scheme !== undefined ? { scheme } : {}),
      ...(hostname !== undefined ? { hostname } : {}),
      port: redirectPort(rule.redirect, port),
      ...(path !== undefined ? { path: { ...path } } : {}),
      statusCode,
    };
  }
  const weights = new Map<string, number>();
  for (const r of e.served.refs.get(rule) ?? []) {
    if (!r.ok || r.weight <= 0) continue;
    weights.set(r.id, (weights.get(r.id) ?? 0) + r.weight);
    const use = out.uses.get(r.id) ?? { key: r.key, servicePort: r.servicePort, protocols: new Set() };
    use.protocols.add(r.protocol);
    out.uses.set(r.id, use);
    const reach = out.reach.get(r.id) ?? new Set<string>();
    reach.add(g.key);
    out.reach.set(r.id, reach);
  }
  if (weights.size === 0) return { kind: 'respond', status: 500 };
  return {
    kind: 'forward',
    backends: [...weights.entries()].map(([backend, weight]) => ({ backend, weight })),
    ...(rule.timeoutMs !== undefined ? { timeoutMs: rule.timeoutMs } : {}),
  };
}
