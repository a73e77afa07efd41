// A Route rule in the one shape both route kinds reduce to: the matches as model matches, what to do with a
// matching request, and, for a rule we cannot serve, why (the rule is dropped and the Route's status says so).
import type { HeaderEdits, HeaderValue } from '../../model/gateway-model.ts';
import type { RedirectSpec } from './filters.ts';
import type { BackendRef } from './types.ts';

export interface MatchSpec {
  path: { kind: 'prefix' | 'exact'; value: string };
  headers: HeaderValue[];
}

export interface RuleSpec {
  index: number;
  name: string | undefined;
  matches: MatchSpec[];
  /** Why the rule cannot be served; undefined when it can. */
  unsupported: string | undefined;
  redirect: RedirectSpec | undefined;
  requestHeaders: HeaderEdits | undefined;
  backendRefs: BackendRef[];
  /** Upstream timeout for forwarded requests (see RouteAction): undefined keeps Envoy's default. */
  timeoutMs: number | undefined;
}

/** A rule with nothing decided yet: no matches, no filters, the rule's own backendRefs and name. */
export function ruleBase(rule: { name?: string; backendRefs?: BackendRef[] }, index: number, timeoutMs: number | undefined): RuleSpec {
  return {
    index,
    name: rule.name,
    matches: [],
    unsupported: undefined,
    redirect: undefined,
    requestHeaders: undefined,
    backendRefs: rule.backendRefs ?? [],
    timeoutMs,
  };
}

/** How the rule is named in status messages. */
export function describeRule(rule: RuleSpec): string {
  return rule.name ? `${rule.index} ("${rule.name}")` : `${rule.index}`;
}
