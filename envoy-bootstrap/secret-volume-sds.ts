// The SDS files an Envoy reads its xDS client certificate through when the certificate comes from a mounted
// Kubernetes Secret (tls.crt, tls.key, ca.crt in one directory, which the kubelet updates by renaming its
// `..data` symlink): both name files in that directory and watch it, so a renewed Secret is read whole,
// certificate and key together, without restarting Envoy. The bootstrap points at these files
// (renderBootstrap's xdsTls); they never change, so they can live in a ConfigMap.
import path from 'node:path';
import { SDS_CA_SECRET, SDS_CERTIFICATE_SECRET } from '../snapshots/control-plane-tls.ts';

const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

export interface SecretVolumeSds {
  certificate: Record<string, unknown>;
  ca: Record<string, unknown>;
}

/** The two SDS documents for a Secret mounted at `secretDir`. */
export function secretVolumeSds(secretDir: string): SecretVolumeSds {
  const watched = { path: secretDir };
  return {
    certificate: {
      resources: [
        {
          '@type': SECRET_TYPE,
          name: SDS_CERTIFICATE_SECRET,
          tls_certificate: {
            certificate_chain: { filename: path.posix.join(secretDir, 'tls.crt') },
            private_key: { filename: path.posix.join(secretDir, 'tls.key') },
            watched_directory: watched,
          },
        },
      ],
    },
    ca: {
      resources: [{ '@type': SECRET_TYPE, name: SDS_CA_SECRET, validation_context: { trusted_ca: { filename: path.posix.join(secretDir, 'ca.crt') }, watched_directory: watched } }],
    },
  };
}
