// What a DiscoveryRequest means, decided by pure functions (in the manner of Istio's ShouldRespond), so
// each rule of Envoy's xds_protocol doc is one table row in a test. Acting on the verdict happens elsewhere.
import type { DiscoveryRequest } from '../protos/codec.ts';

/**
 * What a client subscribes to for one type (xds_protocol "How the client specifies what resources to
 * return"): a wildcard ("*", or the legacy empty list on the first request) and/or explicit names.
 */
export interface Subscription {
  wildcard: boolean;
  /** The wildcard came from an empty list (legacy): a later empty list keeps it; named resources end it. */
  legacyWildcard: boolean;
  /** Explicitly named resources ("*" excluded). */
  names: ReadonlySet<string>;
}

export const WILDCARD = '*';

/**
 * The subscription a request asks for, given the one before it (undefined: the type's first request).
 * `legacyWildcardType`: LDS and CDS, the types for which an empty list may still mean "all".
 */
export function nextSubscription(previous: Subscription | undefined, requested: readonly string[], legacyWildcardType = true): Subscription {
  const names = new Set(requested.filter((n) => n !== WILDCARD));
  if (requested.includes(WILDCARD)) return { wildcard: true, legacyWildcard: false, names };
  // Legacy wildcard (LDS and CDS only): an empty list on the first request of the type, or again while in
  // legacy wildcard. Elsewhere, and after named resources, an empty list subscribes to nothing: Envoy
  // sends one for RDS and ECDS when the listener that used them is gone, sometimes as its first request.
  if (legacyWildcardType && requested.length === 0 && (previous === undefined || previous.legacyWildcard)) return { wildcard: true, legacyWildcard: true, names };
  return { wildcard: false, legacyWildcard: false, names };
}

export function sameSubscription(a: Subscription, b: Subscription): boolean {
  if (a.wildcard !== b.wildcard || a.names.size !== b.names.size) return false;
  for (const name of a.names) if (!b.names.has(name)) return false;
  return true;
}

/** Subscribes to nothing: neither a wildcard nor a name (a client that dropped every resource of a type). */
export function subscribesToNothing(s: Subscription): boolean {
  return !s.wildcard && s.names.size === 0;
}

/** What the stream last did for one resource type. */
export interface TypeStreamState {
  subscription: Subscription;
  /** Nonce of the last response sent for this type, if any. */
  lastNonce?: string;
  /** Version of the last response sent for this type, if any. */
  lastSentVersion?: string;
  /** Nonce of the response the client last NACKed: a request repeating that NACK is not a new one. */
  nackedNonce?: string;
}

export type Verdict =
  /** First request for this type on the stream: answer with the current snapshot. */
  | { kind: 'initial'; subscription: Subscription }
  /** Answers a response that is no longer the latest: ignore it (xds_protocol "resource updates" / nonces). */
  | { kind: 'stale-nonce' }
  /** The latest response was applied. Nothing is sent back. */
  | { kind: 'ack'; version: string }
  /**
   * The latest response was rejected; version_info is the last version the client accepted. `subscription`
   * is set when the same request also changed what the client subscribes to.
   */
  | { kind: 'nack'; rejectedVersion: string; lastGoodVersion: string; message: string; code: number; subscription?: Subscription }
  /**
   * The NACK already recorded for this nonce, sent again (Envoy repeats its error_detail on every request of
   * the type until a response is accepted, e.g. when it drops names): not counted again.
   */
  | { kind: 'nack-repeat'; subscription?: Subscription }
  /** The client changed what it subscribes to: answer with the current snapshot for the new subscription. */
  | { kind: 'resubscribe'; subscription: Subscription };

export function classifyRequest(state: TypeStreamState | undefined, request: DiscoveryRequest, legacyWildcardType = true): Verdict {
  if (state === undefined) return { kind: 'initial', subscription: nextSubscription(undefined, request.resource_names, legacyWildcardType) };
  if (request.response_nonce !== '' && request.response_nonce !== state.lastNonce) return { kind: 'stale-nonce' };
  const next = nextSubscription(state.subscription, request.resource_names, legacyWildcardType);
  const changed = sameSubscription(state.subscription, next) ? undefined : next;
  if (request.error_detail !== undefined && request.response_nonce !== '') {
    if (state.nackedNonce === request.response_nonce) return { kind: 'nack-repeat', ...(changed ? { subscription: changed } : {}) };
    return {
      kind: 'nack',
      rejectedVersion: state.lastSentVersion ?? '',
      lastGoodVersion: request.version_info,
      message: request.error_detail.message ?? '',
      code: request.error_detail.code ?? 0,
      ...(changed ? { subscription: changed } : {}),
    };
  }
  if (request.response_nonce === '' || changed) return { kind: 'resubscribe', subscription: next };
  return { kind: 'ack', version: request.version_info };
}
