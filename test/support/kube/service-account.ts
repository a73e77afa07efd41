// Acting as a ServiceAccount against the local test cluster: a token from the TokenRequest API (what the
// kubelet mounts into a pod), a KubeConfig / RestKubeClient / kubeconfig file that authenticate with it, and
// "can I?" questions answered by the API server's own authorizer (SelfSubjectAccessReview).
import { writeFile } from 'node:fs/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { RestKubeClient, type KubeClient } from '../../../xds-server/kubernetes/rest.ts';
import type { KubeCluster } from './cluster.ts';

export interface ServiceAccountIdentity {
  namespace: string;
  name: string;
  /** system:serviceaccount:<namespace>:<name> */
  username: string;
  token: string;
  kubeConfig: KubeConfig;
  client: RestKubeClient;
}

/** A bound token for the ServiceAccount (TokenRequest, POST .../serviceaccounts/<name>/token), asked for by `admin`. */
export async function serviceAccountToken(admin: KubeClient, namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
  const answer = await admin.request('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds },
  });
  const token = (answer.status as { token?: string } | undefined)?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token: ${JSON.stringify(answer).slice(0, 300)}`);
  return token;
}

/** Everything needed to talk to the cluster as ServiceAccount namespace/name (which must exist). */
export async function asServiceAccount(cluster: KubeCluster, namespace: string, name: string, userAgent = 'stz-test-sa'): Promise<ServiceAccountIdentity> {
  const admin = new RestKubeClient(cluster.kubeConfig(), 'stz-test');
  const token = await serviceAccountToken(admin, namespace, name);
  const kubeConfig = cluster.kubeConfig(token);
  return { namespace, name, username: `system:serviceaccount:${namespace}:${name}`, token, kubeConfig, client: new RestKubeClient(kubeConfig, userAgent) };
}

/** A kubeconfig file for a token (for processes started with --kubeconfig). */
export async function writeTokenKubeconfig(cluster: KubeCluster, token: string, file: string): Promise<void> {
  await writeFile(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stz-kube', cluster: { server: cluster.server, 'certificate-authority': cluster.caPath } }],
      users: [{ name: 'sa', user: { token } }],
      contexts: [{ name: 'stz-kube', context: { cluster: 'stz-kube', user: 'sa', namespace: 'default' } }],
      'current-context': 'stz-kube',
    }),
    { mode: 0o600 },
  );
}

export interface ResourceQuestion {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  /** Absent: across all namespaces (or a cluster-scoped resource). */
  namespace?: string;
  name?: string;
}

export interface NonResourceQuestion {
  verb: string;
  path: string;
}

export interface AccessAnswer {
  allowed: boolean;
  denied?: boolean;
  reason?: string;
}

/** Asks the API server whether the client's own identity may do this (SelfSubjectAccessReview). */
export async function canI(client: KubeClient, question: ResourceQuestion | NonResourceQuestion): Promise<AccessAnswer> {
  const spec =
    'path' in question
      ? { nonResourceAttributes: { verb: question.verb, path: question.path } }
      : {
          resourceAttributes: {
            verb: question.verb,
            group: question.group,
            resource: question.resource,
            ...(question.subresource ? { subresource: question.subresource } : {}),
            ...(question.namespace ? { namespace: question.namespace } : {}),
            ...(question.name ? { name: question.name } : {}),
          },
        };
  const review = await client.request('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec,
  });
  const status = (review.status ?? {}) as AccessAnswer;
  return { allowed: status.allowed === true, ...(status.denied !== undefined ? { denied: status.denied } : {}), ...(status.reason ? { reason: status.reason } : {}) };
}

/** "verb group/resource[/subresource] [in ns]", for assertion messages. */
export function describeQuestion(q: ResourceQuestion | NonResourceQuestion): string {
  if ('path' in q) return `${q.verb} ${q.path}`;
  const what = `${q.group || 'core'}/${q.resource}${q.subresource ? `/${q.subresource}` : ''}`;
  return `${q.verb} ${what}${q.namespace ? ` in ${q.namespace}` : ' (all namespaces)'}`;
}
