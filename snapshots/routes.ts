import type { BackendModel, HeaderEdits, ListenerModel, RouteAction, RouteModel, VirtualHostModel } from '../model/gateway-model.ts';
import type { DesiredState } from './desired-state.ts';
import { STREAM_IDLE_MARGIN_MS } from './defaults.ts';
import { millisToDuration } from './listeners.ts';
import { BuildMemo, deepFrozen } from './memo.ts';
import { BUFFER_FILTER_NAME } from './names.ts';
import type { Resource } from './resource.ts';
import { ANY_TYPES } from './type-urls.ts';

/** What a route needs to know about backends: their cluster, and how long one of their requests may be held. */
class Backends {
  /** One map of the model's own objects (no pair array per backend, nor a map per fact). */
  private readonly byName = new Map<string, BackendModel>();

  constructor(backends: readonly BackendModel[]) {
    for (let i = 0; i < backends.length; i++) this.byName.set(backends[i]!.name, backends[i]!);
  }

  clusterOf(name: string): string | undefined {
    return this.byName.get(name)?.clusterName;
  }

  holdTimeoutMs(name: string): number {
    return this.byName.get(name)?.scaleToZero?.buffer.holdTimeoutMs ?? 0;
  }
}

export function buildRoutes(state: DesiredState): Resource[] {
  const backends = new Backends(state.model.backends);
  const tables: Resource[] = [];
  for (const listener of state.model.listeners) tables.push(routeConfig(listener, state.held, backends));
  return tables;
}

function routeConfig(listener: ListenerModel, held: ReadonlySet<string>, backends: Backends): Resource {
  // Indexed loops, no closure nor iterator per host: a cold load builds thousands of virtual hosts in a fresh
  // process, whose code runs unoptimised at first (where for...of allocates an iterator result per step).
  const virtualHosts: Record<string, unknown>[] = [];
  const models = listener.virtualHosts;
  for (let i = 0; i < models.length; i++) {
    const model = models[i]!;
    const facts = backendFacts(model, held, backends);
    let vh = virtualHostMemo.known(model, facts);
    if (vh === undefined) {
      vh = virtualHost(model, held, backends);
      virtualHostMemo.remember(model, facts, vh);
    }
    virtualHosts.push(vh);
  }
  // The same virtual hosts as last time (the same objects, or a rebuilt one equal to the old: a host whose
  // endpoints changed): the same (frozen) table, so a publish that changes no route neither encodes nor hashes
  // the table again (at 5,000 hosts that is a quarter of a second).
  const known = routeTables.get(listener.routeConfigName);
  if (known !== undefined && known.virtualHosts.length === virtualHosts.length && known.virtualHosts.every((vh, i) => vh === virtualHosts[i] || samePlainData(vh, virtualHosts[i]))) return known.table;
  // The virtual hosts are frozen (built so): only the list and the table are left to freeze.
  const table = Object.freeze<Resource>({
    name: listener.routeConfigName,
    // Virtual host domains are listed without ports (the filter ignores the port the same way). Ignoring it
    // in matching, rather than stripping it from the request, forwards the Host header untouched.
    ignore_port_in_host_matching: true,
    virtual_hosts: Object.freeze(virtualHosts),
  });
  // Bounded: a table per route config name, forgotten all at once should names churn (Kubernetes).
  if (routeTables.size >= 1_000) routeTables.clear();
  routeTables.set(listener.routeConfigName, { virtualHosts, table });
  return table;
}

/** The last table built per route config name, with the virtual host objects it was built from. */
const routeTables = new Map<string, { virtualHosts: readonly Record<string, unknown>[]; table: Resource }>();

/** Equal JSON-like data (what the builders make: objects, arrays, strings, numbers, booleans). */
function samePlainData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && samePlainData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const virtualHostMemo = new BuildMemo<VirtualHostModel, Record<string, unknown>>();

/**
 * Everything a virtual host's xDS depends on besides its model: the facts about the backends it forwards to, in
 * the model's order. The backends' names are not in it: the memo is keyed by the model object, which names them.
 * A host forwarding to one backend that is not held (most) gets its cluster's own name: no string is built, and
 * none kept per host.
 */
function backendFacts(model: VirtualHostModel, held: ReadonlySet<string>, backends: Backends): string {
  let facts: string | undefined;
  const routes = model.routes;
  for (let r = 0; r < routes.length; r++) {
    const action = routes[r]!.action;
    if (action.kind !== 'forward') continue;
    for (let i = 0; i < action.backends.length; i++) {
      const b = action.backends[i]!;
      const cluster = backends.clusterOf(b.backend) ?? '';
      const fact = held.has(b.backend) ? `${cluster}\u0001${backends.holdTimeoutMs(b.backend)}` : cluster;
      facts = facts === undefined ? fact : `${facts}\u0000${fact}`;
    }
  }
  return facts ?? '';
}

/** A route can reach a held backend: the filter must run for it. */
function reachesHeld(route: RouteModel, held: ReadonlySet<string>): boolean {
  if (route.action.kind !== 'forward') return false;
  const backends = route.action.backends;
  for (let i = 0; i < backends.length; i++) if (held.has(backends[i]!.backend)) return true;
  return false;
}

// The filter is on in the HCM and switched off where it has nothing to do, rather than the reverse (Envoy
// Gateway enables its Wasm filters per route): a route we forget to mark still holds for a cold backend
// instead of forwarding to nothing. Switched off, Envoy does not even create the Wasm context: the hot path
// of a ready backend costs nothing. A whole virtual host is switched off when none of its routes needs it.
//
// Built frozen, object by object as it is made (the memo shares virtual hosts between builds, memo.ts), rather
// than walked by deepFrozen afterwards: at 5,000 hosts that walk was ~5-20 ms of a cold load's CPU.
// test/unit/snapshots/routes-frozen.test.ts holds every built virtual host to being frozen all the way down.
function virtualHost(model: VirtualHostModel, held: ReadonlySet<string>, backends: Backends): Record<string, unknown> {
  const modelRoutes = model.routes;
  let anyHeld = false;
  for (let i = 0; i < modelRoutes.length && !anyHeld; i++) anyHeld = reachesHeld(modelRoutes[i]!, held);
  // A host of one route (most) gets an array of one: pushing onto [] gave each a backing store of 17.
  let routes: Record<string, unknown>[];
  if (modelRoutes.length === 1) {
    const r = modelRoutes[0]!;
    routes = [Object.freeze(buildRoute(r, backends, held, anyHeld && !reachesHeld(r, held)))];
  } else {
    routes = [];
    for (let i = 0; i < modelRoutes.length; i++) {
      const r = modelRoutes[i]!;
      routes.push(Object.freeze(buildRoute(r, backends, held, anyHeld && !reachesHeld(r, held))));
    }
  }
  const domains = Object.freeze(model.domains.slice());
  // Every key in the one literal (adding one after would give the object a property array of its own).
  return Object.freeze(
    anyHeld ? { name: model.name, domains, routes: Object.freeze(routes) } : { name: model.name, domains, routes: Object.freeze(routes), typed_per_filter_config: filterDisabled() },
  );
}

// Parts most routes share, one frozen object each (virtual hosts are frozen once built, memo.ts, so sharing
// is safe): at 5,000 hosts, ~0.8 MiB fewer objects kept than building them per route.
const FILTER_DISABLED = deepFrozen({ [BUFFER_FILTER_NAME]: { '@type': ANY_TYPES.routeFilterConfig, disabled: true } });
const MATCH_ANY_PATH = deepFrozen({ prefix: '/' });

function filterDisabled(): Record<string, unknown> {
  return FILTER_DISABLED;
}

const durations = new Map<number, Readonly<Record<string, unknown>>>();

/** millisToDuration, one frozen object per value (bounded: forgotten all at once past 1,000 values). */
function sharedDuration(ms: number): Readonly<Record<string, unknown>> {
  let d = durations.get(ms);
  if (d === undefined) {
    if (durations.size >= 1_000) durations.clear();
    d = deepFrozen(millisToDuration(ms));
    durations.set(ms, d);
  }
  return d;
}

/** A route, not frozen itself yet (its parts are): virtualHost may still add the filter's switch. */
/** A route; `switchedOff`: the filter is switched off for it (a route of a host whose other routes need it). */
function buildRoute(route: RouteModel, backends: Backends, held: ReadonlySet<string>, switchedOff: boolean): Record<string, unknown> {
  const action = route.action;
  // The common route (forwarding, no header edits) as one literal: keys in the same order as below.
  if (action.kind === 'forward' && route.requestHeaders === undefined) {
    const match = buildMatch(route);
    const target = forwardTarget(action, backends, held);
    return switchedOff ? { name: route.name, match, route: target, typed_per_filter_config: filterDisabled() } : { name: route.name, match, route: target };
  }
  // The action's one key set on the route itself (no object spread, no object per action to spread).
  const out: Record<string, unknown> = { name: route.name, match: buildMatch(route) };
  if (action.kind === 'forward') out.route = forwardTarget(action, backends, held);
  else if (action.kind === 'redirect') out.redirect = deepFrozen(buildRedirect(action, route.match.path));
  else out.direct_response = deepFrozen({ status: action.status, ...(action.body !== undefined ? { body: { inline_string: action.body } } : {}) });
  if (route.requestHeaders) Object.assign(out, deepFrozen(headerEdits(route.requestHeaders)));
  if (switchedOff) out.typed_per_filter_config = filterDisabled();
  return out;
}

/** Only slashes (or nothing): a prefix that matches every path. */
function matchesEveryPath(prefix: string): boolean {
  for (let i = 0; i < prefix.length; i++) if (prefix.charCodeAt(i) !== 0x2f) return false;
  return true;
}

function buildMatch(route: RouteModel): Readonly<Record<string, unknown>> {
  const { path, headers } = route.match;
  if (path.kind === 'prefix' && (headers === undefined || headers.length === 0) && matchesEveryPath(path.value)) return MATCH_ANY_PATH;
  return deepFrozen(matchOf(path, headers));
}

function matchOf(path: RouteModel['match']['path'], headers: RouteModel['match']['headers']): Record<string, unknown> {
  const match: Record<string, unknown> = {};
  if (path.kind === 'exact') {
    match.path = path.value;
  } else {
    // Gateway API prefixes match whole path segments ("/foo" matches "/foo" and "/foo/bar", not "/foobar"),
    // and a trailing slash is ignored: exactly Envoy's path_separated_prefix (which refuses a trailing "/").
    const trimmed = path.value.replace(/\/+$/, '');
    if (trimmed === '') match.prefix = '/';
    else match.path_separated_prefix = trimmed;
  }
  if (headers && headers.length > 0) match.headers = headers.map((h) => ({ name: h.name, string_match: { exact: h.value } }));
  return match;
}

/** A forwarding route's target, frozen. */
function forwardTarget(action: Extract<RouteAction, { kind: 'forward' }>, backends: Backends, held: ReadonlySet<string>): Readonly<Record<string, unknown>> {
  const timeout = action.timeoutMs !== undefined ? sharedDuration(action.timeoutMs) : undefined;
  const idleMs = routeIdleTimeoutMs(action, backends, held);
  const idle = idleMs !== undefined ? sharedDuration(idleMs) : undefined;
  let target: Record<string, unknown>;
  if (action.backends.length === 1) {
    const backend = action.backends[0]!.backend;
    const cluster = backends.clusterOf(backend) ?? backend;
    // One literal per combination (keys in the order below): no property array added per route.
    if (timeout !== undefined && idle !== undefined) return Object.freeze({ cluster, timeout, idle_timeout: idle });
    if (timeout === undefined && idle === undefined) return Object.freeze({ cluster });
    target = { cluster };
  } else {
    target = {
      weighted_clusters: deepFrozen({
        // In a split that reaches a held backend, the warm halves still skip the filter (Envoy creates no
        // Wasm context for a request whose picked ClusterWeight disables it; checked on Envoy 1.40).
        clusters: action.backends.map((b) => ({
          name: backends.clusterOf(b.backend) ?? b.backend,
          weight: { value: b.weight },
          ...(held.has(b.backend) ? {} : { typed_per_filter_config: filterDisabled() }),
        })),
      }),
    };
  }
  if (timeout !== undefined) target.timeout = timeout;
  if (idle !== undefined) target.idle_timeout = idle;
  return Object.freeze(target);
}

function buildRedirect(action: Extract<RouteAction, { kind: 'redirect' }>, matched: RouteModel['match']['path']): Record<string, unknown> {
  const redirect: Record<string, unknown> = { response_code: REDIRECT_CODES[action.statusCode] };
  if (action.scheme) redirect.scheme_redirect = action.scheme;
  if (action.hostname) redirect.host_redirect = action.hostname;
  if (action.port !== undefined) redirect.port_redirect = action.port;
  if (action.path?.kind === 'full') redirect.path_redirect = action.path.value;
  if (action.path?.kind === 'prefix') redirect.regex_rewrite = replacePrefix(matched, action.path.value);
  return redirect;
}

/**
 * Envoy arms a route's idle timer when the HCM decodes the request headers, before the buffer filter holds
 * it: a route that can reach a held backend gets at least that backend's hold timeout plus a margin, or a
 * short idle timeout would cut held requests (the request timeout needs no such care: it starts in the
 * router, after the filter let the request go). The route goes back to the configured value on wake; streams
 * that were held keep the longer one.
 */
function routeIdleTimeoutMs(action: Extract<RouteAction, { kind: 'forward' }>, backends: Backends, held: ReadonlySet<string>): number | undefined {
  if (action.idleTimeoutMs === undefined || action.idleTimeoutMs === 0) return action.idleTimeoutMs;
  // A loop: no two arrays and a spread call per route (every route of the file model has an idle timeout).
  let longestHold = 0;
  for (let i = 0; i < action.backends.length; i++) {
    const backend = action.backends[i]!.backend;
    if (held.has(backend)) longestHold = Math.max(longestHold, backends.holdTimeoutMs(backend));
  }
  return longestHold === 0 ? action.idleTimeoutMs : Math.max(action.idleTimeoutMs, longestHold + STREAM_IDLE_MARGIN_MS);
}

/**
 * Gateway API's ReplacePrefixMatch replaces the path segments the route's prefix matched. Envoy's
 * prefix_rewrite swaps characters, not segments ("/foo" -> "/" makes "/foo/bar" into "//bar"), so the
 * rewrite is a regex on segment boundaries: "/foo" -> "/xyz" gives "/foo/bar" -> "/xyz/bar" and
 * "/foo" -> "/xyz"; "/foo" -> "/" gives "/bar"; "/" -> "/xyz" gives "/xyz/foo/bar".
 */
function replacePrefix(matched: RouteModel['match']['path'], replacement: string): Record<string, unknown> {
  const prefix = matched.kind === 'prefix' ? matched.value.replace(/\/+$/, '') : matched.value;
  const target = replacement.replace(/\/+$/, '');
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (prefix === '') return { pattern: { regex: '^/(.*)' }, substitution: `${target}/\\1` };
  if (target === '') return { pattern: { regex: `^${escaped}/?(.*)` }, substitution: '/\\1' };
  return { pattern: { regex: `^${escaped}(/.*)?` }, substitution: `${target}\\1` };
}

const REDIRECT_CODES: Record<301 | 302 | 303 | 307 | 308, string> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

function headerEdits(edits: HeaderEdits): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const add = [
    ...edits.set.map((h) => ({ header: { key: h.name, value: h.value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...edits.add.map((h) => ({ header: { key: h.name, value: h.value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
  if (add.length > 0) out.request_headers_to_add = add;
  if (edits.remove.length > 0) out.request_headers_to_remove = [...edits.remove];
  return out;
}
