// GRPCRoute rules -> RuleSpec. A gRPC call is a POST to /<service>/<method>, so method matches become path
// matches: service and method -> exact "/service/method"; service alone -> prefix "/service/" (whole
// segment: the builder's path_separated_prefix); neither -> every call. A method without a service is
// implementation-specific (it would need a regular expression the model cannot carry): the rule is dropped.
// Forwarded calls get no upstream timeout (model timeoutMs 0): gRPC streams may live for hours.
import { addHeaderEdits, emptyEdits, hasEdits, headerMatches, type Parsed } from './filters.ts';
import { ruleBase, type MatchSpec, type RuleSpec } from './rules.ts';
import type { GRPCRouteMatch, GRPCRouteRule } from './types.ts';

export function grpcRuleSpec(rule: GRPCRouteRule, index: number): RuleSpec {
  const base = ruleBase(rule, index, 0);
  const problem = (reason: string): RuleSpec => ({ ...base, unsupported: reason });

  const sources = rule.matches && rule.matches.length > 0 ? rule.matches : [{}];
  for (const source of sources) {
    const m = grpcMatch(source);
    if (!m.ok) return problem(m.reason);
    base.matches.push(m.value);
  }

  const edits = emptyEdits();
  for (const filter of rule.filters ?? []) {
    if (filter.type !== 'RequestHeaderModifier') return problem(`filter type ${filter.type} is not supported`);
    addHeaderEdits(edits, filter.requestHeaderModifier);
  }
  if (base.backendRefs.some((b) => (b.filters ?? []).length > 0)) return problem('filters on a backendRef are not supported');
  if (rule.sessionPersistence !== undefined) return problem('sessionPersistence is not supported');
  return { ...base, requestHeaders: hasEdits(edits) ? edits : undefined };
}

function grpcMatch(match: GRPCRouteMatch): Parsed<MatchSpec> {
  const path = grpcMethodPath(match.method);
  if (!path.ok) return path;
  const headers = headerMatches(match.headers);
  if (!headers.ok) return headers;
  return { ok: true, value: { path: path.value, headers: headers.value } };
}

/** GRPCMethodMatch -> path match. */
export function grpcMethodPath(method: GRPCRouteMatch['method']): Parsed<MatchSpec['path']> {
  if (!method) return { ok: true, value: { kind: 'prefix', value: '/' } };
  const type = method.type ?? 'Exact';
  if (type !== 'Exact') return { ok: false, reason: `method match type ${type} is not supported` };
  const service = method.service ?? '';
  const name = method.method ?? '';
  if (service.includes('/') || name.includes('/')) return { ok: false, reason: 'an Exact method match must not contain "/"' };
  if (service !== '' && name !== '') return { ok: true, value: { kind: 'exact', value: `/${service}/${name}` } };
  if (service !== '') return { ok: true, value: { kind: 'prefix', value: `/${service}/` } };
  if (name !== '') return { ok: false, reason: 'a method match without a service is not supported' };
  return { ok: true, value: { kind: 'prefix', value: '/' } };
}
