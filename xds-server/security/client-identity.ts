// Who an mTLS client is, from its certificate's URI SANs, and which snapshot group that lets it have. Pure.
import { DEFAULT_GROUP, GATEWAY_METADATA_KEY, gatewayGroup, nodeGroup } from '../cache/snapshot-cache.ts';
import { nodeMetadataString, type NodeInfo } from '../protos/codec.ts';
import { parseGatewayIdentity } from './pki.ts';

/**
 * A certificate for tools that are not a gateway's Envoy (an operator's xDS client, a dashboard): it may read
 * every gateway's config, as a plaintext client does, and its load reports count for every backend.
 */
export const ALL_GATEWAYS_IDENTITY = 'spiffe://scaletozero.dev/gateways/all';

/** `serial`: the certificate's serial number (hex), so logs and the status show which certificate connected. */
export type ClientIdentity =
  /** `wholeModel`: the gateway is the one of a file-mode config; its Envoys get the default group, as before. */
  | { kind: 'gateway'; uri: string; gateway: string; serial?: string; wholeModel?: boolean }
  | { kind: 'all-gateways'; uri: string; serial?: string };

export type RefusalReason = 'no_certificate' | 'unknown_ca' | 'expired' | 'not_yet_valid' | 'invalid_certificate' | 'handshake_failed' | 'no_identity' | 'identity_mismatch' | 'wake_not_routed';

/** The identity a certificate's URI SANs carry; undefined when it names none we know (refused for xDS). */
export function clientIdentityOf(uris: readonly string[]): ClientIdentity | undefined {
  for (const uri of uris) {
    const g = parseGatewayIdentity(uri);
    if (g) return { kind: 'gateway', uri, gateway: `${g.namespace}/${g.name}` };
  }
  if (uris.includes(ALL_GATEWAYS_IDENTITY)) return { kind: 'all-gateways', uri: ALL_GATEWAYS_IDENTITY };
  return undefined;
}

export type GroupDecision = { ok: true; group: string } | { ok: false; reason: RefusalReason; message: string };

/**
 * The snapshot group of a client: without mTLS (identity null) what its node says; with a gateway certificate
 * that gateway's group, whatever node.metadata says, and a node that names another gateway is refused.
 */
export function groupForClient(identity: ClientIdentity | null, node: NodeInfo | undefined): GroupDecision {
  if (identity === null || identity.kind === 'all-gateways') return { ok: true, group: nodeGroup(node) };
  const named = nodeMetadataString(node, GATEWAY_METADATA_KEY)?.trim();
  if (named && named !== identity.gateway) {
    return {
      ok: false,
      reason: 'identity_mismatch',
      message: `node.metadata["${GATEWAY_METADATA_KEY}"] names gateway ${named}, but the client certificate (${identity.uri}) is for gateway ${identity.gateway}`,
    };
  }
  return { ok: true, group: identity.wholeModel ? DEFAULT_GROUP : gatewayGroup(identity.gateway) };
}
