// Route filters and header matches shared by HTTPRoute and GRPCRoute: RequestHeaderModifier becomes header
// edits, RequestRedirect a redirect (HTTPRoute only), Exact header matches the model's header values.
// Anything else makes the rule unsupported; the caller drops the rule and says why.
import type { HeaderEdits, HeaderValue } from '../../model/gateway-model.ts';
import type { HeaderMatch, HeaderModifier, HTTPRequestRedirect } from './types.ts';

/** A value, or the reason the input cannot be served. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;

/** A redirect before it is placed on a Listener: the port may still depend on the Listener's port. */
export interface RedirectSpec {
  scheme?: 'http' | 'https';
  hostname?: string;
  port?: number;
  path?: { kind: 'full' | 'prefix'; value: string };
  statusCode: RedirectStatus;
}

const REDIRECT_CODES: readonly number[] = [301, 302, 303, 307, 308];

/**
 * Exact header matches, names lower-cased. Of several entries with the same name (in any case) only the first
 * counts (HTTPHeaderMatch: "Subsequent entries with an equivalent header name MUST be ignored").
 */
export function headerMatches(matches: readonly HeaderMatch[] | undefined): Parsed<HeaderValue[]> {
  const out: HeaderValue[] = [];
  for (const m of matches ?? []) {
    const type = m.type ?? 'Exact';
    if (type !== 'Exact') return { ok: false, reason: `header match type ${type} is not supported` };
    const name = m.name.toLowerCase();
    if (!out.some((h) => h.name === name)) out.push({ name, value: m.value });
  }
  return { ok: true, value: out };
}

/** Folds RequestHeaderModifier filters into one set of edits (names lower-cased, as HTTP/2 sends them). */
export function addHeaderEdits(edits: HeaderEdits, modifier: HeaderModifier | undefined): void {
  for (const h of modifier?.set ?? []) edits.set.push({ name: h.name.toLowerCase(), value: h.value });
  for (const h of modifier?.add ?? []) edits.add.push({ name: h.name.toLowerCase(), value: h.value });
  for (const name of modifier?.remove ?? []) edits.remove.push(name.toLowerCase());
}

export function emptyEdits(): HeaderEdits {
  return { set: [], add: [], remove: [] };
}

export function hasEdits(edits: HeaderEdits): boolean {
  return edits.set.length + edits.add.length + edits.remove.length > 0;
}

/** HTTPRequestRedirectFilter; statusCode defaults to 302. */
export function redirectSpec(redirect: HTTPRequestRedirect | undefined, allPrefixMatches: boolean): Parsed<RedirectSpec> {
  if (!redirect) return { ok: false, reason: 'RequestRedirect filter without requestRedirect' };
  const statusCode = redirect.statusCode ?? 302;
  if (!REDIRECT_CODES.includes(statusCode)) return { ok: false, reason: `redirect status code ${statusCode} is not supported` };
  const spec: RedirectSpec = { statusCode: statusCode as RedirectStatus };
  if (redirect.scheme !== undefined) {
    if (redirect.scheme !== 'http' && redirect.scheme !== 'https') return { ok: false, reason: `redirect scheme ${redirect.scheme} is not supported` };
    spec.scheme = redirect.scheme;
  }
  if (redirect.hostname) spec.hostname = redirect.hostname.toLowerCase();
  if (redirect.port !== undefined) spec.port = redirect.port;
  if (redirect.path) {
    switch (redirect.path.type) {
      case 'ReplaceFullPath':
        spec.path = { kind: 'full', value: redirect.path.replaceFullPath ?? '/' };
        break;
      case 'ReplacePrefixMatch':
        if (!allPrefixMatches) return { ok: false, reason: 'ReplacePrefixMatch needs a PathPrefix match' };
        spec.path = { kind: 'prefix', value: redirect.path.replacePrefixMatch ?? '/' };
        break;
      default:
        return { ok: false, reason: `redirect path type ${redirect.path.type} is not supported` };
    }
  }
  return { ok: true, value: spec };
}

/**
 * The port a redirect names (HTTPRequestRedirectFilter.port): the one given; else the well-known port of the
 * scheme given; else the port of the Listener the request came in on.
 */
export function redirectPort(spec: RedirectSpec, listenerPort: number): number {
  if (spec.port !== undefined) return spec.port;
  if (spec.scheme === 'https') return 443;
  if (spec.scheme === 'http') return 80;
  return listenerPort;
}
