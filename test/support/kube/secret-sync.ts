// What the kubelet does for a pod that mounts a Secret: it follows the Secret and rewrites the volume (an
// atomic directory swap, secret-volume.ts) whenever the Secret's content changes. Polls the API server every
// `intervalMs` (the kubelet's own sync period is about a minute; tests use less).
import type { KubeClient } from '../../../xds-server/kubernetes/rest.ts';
import { secretFiles, writeSecretVolume } from './secret-volume.ts';

export interface SecretSync {
  /** Resolves once the volume holds the Secret (the first write). */
  ready: Promise<void>;
  /** How many times the volume was written. */
  writes(): number;
  /** The resourceVersion the volume holds. */
  version(): string | undefined;
  stop(): Promise<void>;
}

export function syncSecretVolume(client: KubeClient, namespace: string, name: string, dir: string, intervalMs = 200): SecretSync {
  let stopped = false;
  let version: string | undefined;
  let writes = 0;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const loop = (async () => {
    while (!stopped) {
      try {
        const secret = await client.get(`/api/v1/namespaces/${namespace}/secrets/${name}`);
        if (secret.metadata.resourceVersion !== version) {
          await writeSecretVolume(dir, secretFiles(secret));
          version = secret.metadata.resourceVersion;
          writes++;
          resolveReady();
        }
      } catch {
        // not there yet: try again
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    ready,
    writes: () => writes,
    version: () => version,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
