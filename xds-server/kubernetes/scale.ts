// The /scale subresource of any workload (Deployment, StatefulSet, a custom resource that declares one),
// written only with guards: a wake moves replicas from exactly 0, a scale-down moves them from exactly
// the count we woke to. The write carries the resourceVersion it was decided on, so the API server itself
// refuses it if anything changed meanwhile: a user's HPA (which owns 1..N) or a GitOps tool is never
// overruled, whichever replica of the control plane writes.
import { KubeApiError, type KubeClient } from './rest.ts';

export interface WorkloadTarget {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface ScaleReading {
  /** spec.replicas: what is asked for. */
  replicas: number;
  /** status.replicas: what exists. */
  current: number;
  /** The workload's uid (a Scale carries its parent's), for Events that `kubectl describe` shows. */
  uid?: string;
}

export type GuardedResult = { ok: true; uid?: string } | { ok: false; replicas: number; reason: string; uid?: string };

/** One workload, whichever backends (Service ports) it serves. */
export function workloadKey(t: WorkloadTarget): string {
  return `k8s/${t.namespace}/${t.apiVersion}/${t.kind}/${t.name}`;
}

/** The workload cannot be scaled at all: not found, not scalable, or we may not. */
export class ScaleTargetError extends Error {}

export const FIELD_MANAGER = 'envoy-scale-to-zero';

export class ScaleClient {
  private readonly resources = new Map<string, string>();

  constructor(private readonly client: KubeClient) {}

  async read(target: WorkloadTarget): Promise<ScaleReading> {
    const path = await this.scalePath(target);
    let scale: { metadata?: { uid?: string }; spec?: { replicas?: number }; status?: { replicas?: number } };
    try {
      scale = (await this.client.get(path)) as typeof scale;
    } catch (err) {
      throw this.explain(err, target);
    }
    return { replicas: scale.spec?.replicas ?? 0, current: scale.status?.replicas ?? 0, ...(scale.metadata?.uid ? { uid: scale.metadata.uid } : {}) };
  }

  /**
   * Replicas from `from` to `to`, only if they are `from` right now: read, then write with the read's
   * resourceVersion as a precondition, so any write in between (an HPA, a user, another replica of ours)
   * makes the API server refuse ours (409). A refusal caused by something else (the workload's status
   * moving during a rollout) is retried while the replicas are still `from`. (A JSON Patch `test` on
   * /spec/replicas cannot express `from` = 0: a Scale omits replicas when they are 0.)
   */
  async setIf(target: WorkloadTarget, from: number, to: number): Promise<GuardedResult> {
    const path = await this.scalePath(target);
    for (let attempt = 0; ; attempt++) {
      let scale: { metadata?: { resourceVersion?: string; uid?: string }; spec?: { replicas?: number } };
      try {
        scale = (await this.client.get(path)) as typeof scale;
      } catch (err) {
        throw this.explain(err, target);
      }
      const replicas = scale.spec?.replicas ?? 0;
      const uid = scale.metadata?.uid ? { uid: scale.metadata.uid } : {};
      if (replicas !== from) return { ok: false, replicas, reason: `replicas are ${replicas}, not ${from}`, ...uid };
      try {
        await this.client.request(
          'PATCH',
          `${path}?fieldManager=${FIELD_MANAGER}`,
          { metadata: { resourceVersion: scale.metadata?.resourceVersion }, spec: { replicas: to } },
          'application/merge-patch+json',
        );
        return { ok: true, ...uid };
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 409 && attempt < 5) continue;
        throw this.explain(err, target);
      }
    }
  }

  private explain(err: unknown, target: WorkloadTarget): Error {
    const what = `${target.kind} ${target.namespace}/${target.name}`;
    if (err instanceof KubeApiError && err.status === 404) return new ScaleTargetError(`${what} does not exist`);
    if (err instanceof KubeApiError && err.status === 403) return new ScaleTargetError(`the control plane may not scale ${what}: ${err.message}`);
    return err instanceof Error ? err : new Error(String(err));
  }

  /** Finds the resource name of a kind through API discovery, and checks it has a scale subresource. */
  private async scalePath(target: WorkloadTarget): Promise<string> {
    const key = `${target.apiVersion}/${target.kind}`;
    let resource = this.resources.get(key);
    if (!resource) {
      const base = target.apiVersion.includes('/') ? `/apis/${target.apiVersion}` : `/api/${target.apiVersion}`;
      let list: { resources?: { name: string; kind: string }[] };
      try {
        list = (await this.client.get(base)) as unknown as typeof list;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) throw new ScaleTargetError(`the API server serves no ${target.apiVersion}`);
        throw err;
      }
      const main = list.resources?.find((r) => r.kind === target.kind && !r.name.includes('/'));
      if (!main) throw new ScaleTargetError(`${target.apiVersion} has no kind ${target.kind}`);
      if (!list.resources?.some((r) => r.name === `${main.name}/scale`)) throw new ScaleTargetError(`${target.kind} (${target.apiVersion}) has no /scale subresource, so it cannot be scaled`);
      resource = main.name;
      this.resources.set(key, resource);
    }
    const base = target.apiVersion.includes('/') ? `/apis/${target.apiVersion}` : `/api/${target.apiVersion}`;
    return `${base}/namespaces/${target.namespace}/${resource}/${target.name}/scale`;
  }
}
