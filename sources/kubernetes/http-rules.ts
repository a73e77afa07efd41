// HTTPRoute rules -> RuleSpec. Supported: PathPrefix and Exact paths, Exact headers, RequestHeaderModifier,
// RequestRedirect, request timeouts. Anything else (regular expressions, query parameter and method matches,
// other filters, per-backend filters) makes the rule unsupported: it is dropped, never half-served.
import { parseDuration } from './durations.ts';
import { addHeaderEdits, emptyEdits, hasEdits, headerMatches, redirectSpec, type Parsed, type RedirectSpec } from './filters.ts';
import { ruleBase, type MatchSpec, type RuleSpec } from './rules.ts';
import type { HTTPRouteMatch, HTTPRouteRule } from './types.ts';

/** The default match (HTTPRouteRule.matches): PathPrefix "/", every request. */
const MATCH_ALL: HTTPRouteMatch = { path: { type: 'PathPrefix', value: '/' } };

export function httpRuleSpec(rule: HTTPRouteRule, index: number): RuleSpec {
  const base = ruleBase(rule, index, undefined);
  const problem = (reason: string): RuleSpec => ({ ...base, unsupported: reason });

  const sources = rule.matches && rule.matches.length > 0 ? rule.matches : [MATCH_ALL];
  for (const source of sources) {
    const m = httpMatch(source);
    if (!m.ok) return problem(m.reason);
    base.matches.push(m.value);
  }

  const edits = emptyEdits();
  let redirect: RedirectSpec | undefined;
  for (const filter of rule.filters ?? []) {
    if (filter.type === 'RequestHeaderModifier') {
      addHeaderEdits(edits, filter.requestHeaderModifier);
    } else if (filter.type === 'RequestRedirect') {
      const r = redirectSpec(filter.requestRedirect, base.matches.every((m) => m.path.kind === 'prefix'));
      if (!r.ok) return problem(r.reason);
      redirect = r.value;
    } else {
      return problem(`filter type ${filter.type} is not supported`);
    }
  }
  if (redirect && base.backendRefs.length > 0) return problem('RequestRedirect cannot be combined with backendRefs');
  if (base.backendRefs.some((b) => (b.filters ?? []).length > 0)) return problem('filters on a backendRef are not supported');
  if (rule.retry !== undefined || rule.sessionPersistence !== undefined) return problem('retry and sessionPersistence are not supported');

  const timeout = timeoutMs(rule.timeouts);
  if (!timeout.ok) return problem(timeout.reason);

  return { ...base, redirect, requestHeaders: hasEdits(edits) ? edits : undefined, timeoutMs: timeout.value };
}

function httpMatch(match: HTTPRouteMatch): Parsed<MatchSpec> {
  if ((match.queryParams ?? []).length > 0) return { ok: false, reason: 'query parameter matches are not supported' };
  if (match.method !== undefined) return { ok: false, reason: 'method matches are not supported' };
  const type = match.path?.type ?? 'PathPrefix';
  const value = match.path?.value ?? '/';
  let path: MatchSpec['path'];
  if (type === 'Exact') path = { kind: 'exact', value };
  else if (type === 'PathPrefix') path = { kind: 'prefix', value: normalisePrefix(value) };
  else return { ok: false, reason: `path match type ${type} is not supported` };
  const headers = headerMatches(match.headers);
  if (!headers.ok) return headers;
  return { ok: true, value: { path, headers: headers.value } };
}

/** PathPrefix ignores a trailing "/" (HTTPPathMatch): "/abc/" and "/abc" are the same prefix. */
export function normalisePrefix(value: string): string {
  const trimmed = value.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/**
 * HTTPRouteTimeouts: with no retries, the shorter of `request` and `backendRequest` bounds the upstream
 * request; "0s" disables a timeout (model: 0 = none).
 */
function timeoutMs(timeouts: HTTPRouteRule['timeouts']): Parsed<number | undefined> {
  if (!timeouts) return { ok: true, value: undefined };
  const values: number[] = [];
  for (const [field, text] of Object.entries(timeouts)) {
    if (text === undefined) continue;
    const ms = parseDuration(text);
    if (ms === undefined) return { ok: false, reason: `timeouts.${field} "${text}" is not a duration` };
    values.push(ms);
  }
  const bounded = values.filter((v) => v > 0);
  if (bounded.length > 0) return { ok: true, value: Math.min(...bounded) };
  return { ok: true, value: values.length > 0 ? 0 : undefined };
}
