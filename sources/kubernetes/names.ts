// Every name the Kubernetes source gives a model object. All are deterministic functions of the objects'
// identities, so an unrelated change never renames anything (a rename would drain listeners or drop held
// requests). Kubernetes names never contain `_`, which is therefore a safe separator.
import { createHash } from 'node:crypto';

/** One Envoy listener per Gateway and port. */
export function listenerName(namespace: string, gateway: string, port: number): string {
  return `gw_${namespace}_${gateway}_${port}`;
}

export function routeConfigName(namespace: string, gateway: string, port: number): string {
  return `gw_${namespace}_${gateway}_${port}_routes`;
}

/** Virtual host names are unique within a route configuration because domains are: `vh_` + the domain. */
export function virtualHostName(domain: string): string {
  return `vh_${domain}`;
}

/** Traces an Envoy route back to the Route object, rule and match that declared it. */
export function routeName(kind: string, namespace: string, name: string, rule: number, match: number): string {
  return `${kind.toLowerCase()}/${namespace}/${name}/rule/${rule}/match/${match}`;
}

export function clusterName(namespace: string, service: string, port: number): string {
  return `k8s_${namespace}_${service}_${port}`;
}

/** The Service namespace a clusterName() names, or undefined for another name. */
export function clusterNamespace(name: string): string | undefined {
  return /^k8s_([^_]+)_[^_]+_\d+$/.exec(name)?.[1];
}

const BACKEND_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HASH_LENGTH = 8;

/** `<ns>-<svc>-<port>` when that is a valid backend name (a DNS label), else its hashed form. */
export function plainBackendName(namespace: string, service: string, port: number): string {
  const plain = `${namespace}-${service}-${port}`;
  return BACKEND_NAME.test(plain) ? plain : hashedBackendName(namespace, service, port);
}

/**
 * The plain name cut to fit, then `-` and 8 hex digits of a hash of the identity. Also used when two
 * identities share a plain name (`a-b`/`c` and `a`/`b-c`), so backend names stay unique.
 */
export function hashedBackendName(namespace: string, service: string, port: number): string {
  const hash = createHash('sha256').update(`${namespace}/${service}/${port}`).digest('hex').slice(0, HASH_LENGTH);
  const head = `${namespace}-${service}-${port}`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63 - HASH_LENGTH - 1)
    .replace(/-+$/, '');
  return head === '' ? hash : `${head}-${hash}`;
}
