// HTTPRoutes and GRPCRoutes in one shape, oldest first (the order every tie-break in Gateway API uses).
import type { RouteKind } from './api.ts';
import { grpcRuleSpec } from './grpc-rules.ts';
import { httpRuleSpec } from './http-rules.ts';
import { compareAge, creationTime, namespaceOf, objectKey } from './objects.ts';
import type { RuleSpec } from './rules.ts';
import type { GRPCRoute, HTTPRoute, ParentReference, TranslateInput } from './types.ts';

export interface RouteInfo {
  kind: RouteKind;
  route: HTTPRoute | GRPCRoute;
  namespace: string;
  name: string;
  /** "{namespace}/{name}". */
  key: string;
  created: number;
  /** Lower-case. */
  hostnames: string[];
  parentRefs: ParentReference[];
  rules: RuleSpec[];
}

export function collectRoutes(input: TranslateInput): RouteInfo[] {
  // An HTTPRoute without rules gets the CRD's default: one rule matching every request (and no backend).
  const http = input.httpRoutes.map((route) => info('HTTPRoute', route, (route.spec?.rules ?? [{}]).map(httpRuleSpec)));
  const grpc = input.grpcRoutes.map((route) => info('GRPCRoute', route, (route.spec?.rules ?? []).map(grpcRuleSpec)));
  return [...http, ...grpc].sort((a, b) => compareAge(a.route, b.route) || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}

function info(kind: RouteKind, route: HTTPRoute | GRPCRoute, rules: RuleSpec[]): RouteInfo {
  return {
    kind,
    route,
    namespace: namespaceOf(route),
    name: route.metadata.name,
    key: objectKey(route),
    created: creationTime(route),
    hostnames: (route.spec?.hostnames ?? []).map((h) => h.toLowerCase()),
    parentRefs: route.spec?.parentRefs ?? [],
    rules,
  };
}

export function supportedRules(route: RouteInfo): RuleSpec[] {
  return route.rules.filter((r) => r.unsupported === undefined);
}

/** The Route has rules and none can be served. */
export function allRulesUnsupported(route: RouteInfo): boolean {
  return route.rules.length > 0 && supportedRules(route).length === 0;
}
