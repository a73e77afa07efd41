// What a DiscoveryRequest means, decided by one pure function (in the manner of Istio's ShouldRespond), so
// each rule of Envoy's xds_protocol doc is one table row in a test. Acting on the verdict happens elsewhere.
import type { DiscoveryRequest } from '../protos/codec.ts';

/** What the stream last did for one resource type. */
export interface TypeStreamState {
  /** Names the client asked for; empty = wildcard (all resources of the type). */
  names: ReadonlySet<string>;
  /** Nonce of the last response sent for this type, if any. */
  lastNonce?: string;
  /** Version of the last response sent for this type, if any. */
  lastSentVersion?: string;
}

export type Verdict =
  /** First request for this type on the stream: answer with the current snapshot. */
  | { kind: 'initial' }
  /** Answers a response that is no longer the latest: ignore it (xds_protocol "resource updates" / nonces). */
  | { kind: 'stale-nonce' }
  /** The latest response was applied. Nothing is sent back. */
  | { kind: 'ack'; version: string }
  /** The latest response was rejected; version_info is the last version the client accepted. */
  | { kind: 'nack'; rejectedVersion: string; lastGoodVersion: string; message: string; code: number }
  /** The client changed the names it wants: answer with the current snapshot for the new names. */
  | { kind: 'resubscribe' };

export function classifyRequest(state: TypeStreamState | undefined, request: DiscoveryRequest): Verdict {
  if (state === undefined) return { kind: 'initial' };
  if (request.response_nonce !== '' && request.response_nonce !== state.lastNonce) return { kind: 'stale-nonce' };
  if (request.error_detail !== undefined) {
    return {
      kind: 'nack',
      rejectedVersion: state.lastSentVersion ?? '',
      lastGoodVersion: request.version_info,
      message: request.error_detail.message ?? '',
      code: request.error_detail.code ?? 0,
    };
  }
  if (request.response_nonce === '' || !sameNames(state.names, request.resource_names)) return { kind: 'resubscribe' };
  return { kind: 'ack', version: request.version_info };
}

function sameNames(current: ReadonlySet<string>, requested: readonly string[]): boolean {
  const next = new Set(requested);
  if (next.size !== current.size) return false;
  for (const name of next) if (!current.has(name)) return false;
  return true;
}
