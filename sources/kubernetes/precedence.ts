// Route precedence within one virtual host, which Envoy walks in order and takes the first match of.
// Gateway API (HTTPRouteSpec.hostnames, HTTPRouteRule.matches, GRPCRouteRule.matches), continuing on ties:
//   1. the Route's matching host name: most non-wildcard characters, then most characters;
//   2. an Exact path before a prefix; then the longest path (gRPC: service and method characters, which
//      become the path); then a method match (not supported: such rules are dropped);
//   3. the most header matches; then the most query parameter matches (not supported);
//   4. the oldest Route (creationTimestamp); then "{namespace}/{name}" alphabetically;
//   5. within a Route, the first rule, then the first match, in list order.
import { compareStrings } from './objects.ts';

export interface PrecedenceKey {
  /** routeHostnameRank() of the host name the Route matches this virtual host with. */
  hostRank: readonly [number, number];
  pathKind: 'exact' | 'prefix';
  pathLength: number;
  headerCount: number;
  /** creationTimestamp in ms; +Infinity when unknown. */
  created: number;
  /** "{namespace}/{name}". */
  routeKey: string;
  /** Only ever breaks a tie between an HTTPRoute and a GRPCRoute of the same name: keeps the order total. */
  routeKind: string;
  rule: number;
  match: number;
}

/** Negative when `a` must come first. */
export function comparePrecedence(a: PrecedenceKey, b: PrecedenceKey): number {
  return (
    b.hostRank[0] - a.hostRank[0] ||
    b.hostRank[1] - a.hostRank[1] ||
    kindRank(a.pathKind) - kindRank(b.pathKind) ||
    b.pathLength - a.pathLength ||
    b.headerCount - a.headerCount ||
    compareTimes(a.created, b.created) ||
    compareStrings(a.routeKey, b.routeKey) ||
    compareStrings(a.routeKind, b.routeKind) ||
    a.rule - b.rule ||
    a.match - b.match
  );
}

function kindRank(kind: PrecedenceKey['pathKind']): number {
  return kind === 'exact' ? 0 : 1;
}

function compareTimes(a: number, b: number): number {
  return a === b ? 0 : a < b ? -1 : 1;
}
