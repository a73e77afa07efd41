// How an Envoy reaches the control plane over mutual TLS, for both of its connections to it: the xDS/LRS
// cluster of the bootstrap (envoy-bootstrap/render.ts) and the wake calls' cluster of the snapshot
// (clusters.ts). Envoy presents its client certificate and trusts only a server certificate from the CA it
// was given that carries the control plane's identity. Both come from SDS files Envoy watches, and the same
// path and secret name make both clusters share one watched secret. Pure.
import { ANY_TYPES } from './type-urls.ts';

/** The URI SAN of the control plane's server certificate (xds-server/security/pki.ts issues it). */
export const CONTROL_PLANE_IDENTITY = 'spiffe://scaletozero.dev/control-plane';
export const SDS_CERTIFICATE_SECRET = 'xds_client_certificate';
export const SDS_CA_SECRET = 'xds_trusted_ca';

/** The SDS files (DiscoveryResponse documents) naming the Envoy's client certificate and its trusted CA. */
export interface ControlPlaneTlsFiles {
  certificateSds: string;
  caSds: string;
}

export function controlPlaneTransportSocket(files: ControlPlaneTlsFiles, alpn: readonly string[]): Record<string, unknown> {
  const sds = (name: string, file: string): Record<string, unknown> => ({ name, sds_config: { path_config_source: { path: file }, resource_api_version: 'V3' } });
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': ANY_TYPES.upstreamTlsContext,
      common_tls_context: {
        alpn_protocols: [...alpn],
        tls_certificate_sds_secret_configs: [sds(SDS_CERTIFICATE_SECRET, files.certificateSds)],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: CONTROL_PLANE_IDENTITY } }] },
          validation_context_sds_secret_config: sds(SDS_CA_SECRET, files.caSds),
        },
      },
    },
  };
}
