// Kubernetes workloads as a BackendProvider: wake and stop through the workload's /scale subresource with
// guarded writes (ScaleClient), readiness when an endpoint from the backend's EndpointSlices answers our
// own check (KubernetesState + EndpointVerifier). Replica counts above 0 belong to whoever set them: a user,
// an HPA, a GitOps tool. We only ever move 0 -> wakeReplicas and wakeReplicas -> 0.
import type { Logger } from '../log.ts';
import { StopRefusedError, type BackendProvider, type ScalableBackend } from '../scaling/provider.ts';
import type { KubernetesState } from './cluster-state.ts';
import type { EventRecorder } from './events.ts';
import { ScaleTargetError, workloadKey, type ScaleClient, type WorkloadTarget } from './scale.ts';

export class KubernetesProvider implements BackendProvider {
  readonly kind = 'kubernetes';
  readonly managesReplicas = true;
  readonly stopsFailedWakes = false;
  /** Workload uids seen, so Events name the object `kubectl describe` shows them on. */
  private readonly uids = new Map<string, string>();

  constructor(
    private readonly scale: ScaleClient,
    private readonly state: Pick<KubernetesState, 'waitForVerified' | 'setPolicyCondition' | 'afterStop'>,
    private readonly events: Pick<EventRecorder, 'record'>,
    private readonly log: Logger,
  ) {}

  workloadKey(backend: ScalableBackend): string {
    const { target } = this.workload(backend);
    return workloadKey(target);
  }

  async stopRefusal(backend: ScalableBackend): Promise<string | undefined> {
    const { target, wakeReplicas } = this.workload(backend);
    const now = await this.read(backend, target);
    return now.replicas === 0 || now.replicas === wakeReplicas ? undefined : this.otherWriter(target, now.replicas, wakeReplicas, backend);
  }

  async wake(backend: ScalableBackend): Promise<void> {
    const { target, wakeReplicas } = this.workload(backend);
    // One read and a guarded write (the read is inside setIf): a cold start waits on both.
    // The reason is what held requests are answered with: name the workload whatever went wrong.
    const result = await this.reported(backend, () => this.scale.setIf(target, 0, wakeReplicas)).catch((err: Error) => {
      throw err instanceof ScaleTargetError ? err : new Error(`could not scale ${describe(target)} up from 0: ${err.message}`);
    });
    if (result.uid) this.uids.set(workloadKey(target), result.uid);
    this.report(backend, 'WorkloadScalable', true, 'Scalable', `${describe(target)} has a /scale subresource the control plane may use`);
    if (!result.ok) {
      // Replicas above 0 (someone else's, or a wake by another replica of ours): wait for an endpoint.
      this.log.info('workload already has replicas; waiting for an endpoint to answer', { host: backend.name, workload: describe(target), replicas: result.replicas });
      return;
    }
    this.report(backend, 'ReplicasOwned', true, 'ScaledFromZero', `woken from 0 to ${wakeReplicas} replicas; above that they belong to whoever sets them`);
    this.log.info('scaled workload up from 0', { host: backend.name, workload: describe(target), replicas: wakeReplicas });
    void this.events.record(this.involved(target), 'Normal', 'ScaledUpFromZero', `Scaled ${describe(target)} from 0 to ${wakeReplicas} replicas: a request for backend "${backend.name}" is held by Envoy until an endpoint answers`);
  }

  waitReady(backend: ScalableBackend, deadline: number, signal: AbortSignal): Promise<void> {
    return this.state.waitForVerified(backend.name, deadline, signal).catch((err: Error) => {
      if (signal.aborted) throw err;
      throw new Error(`not ready within wakeTimeoutMs ${backend.scaleToZero.wakeTimeoutMs} ms: ${err.message}`);
    });
  }

  async stop(backend: ScalableBackend): Promise<void> {
    const { target, wakeReplicas } = this.workload(backend);
    const result = await this.reported(backend, () => this.scale.setIf(target, wakeReplicas, 0));
    if (result.ok) {
      this.report(backend, 'ReplicasOwned', true, 'ScaledToZero', `scaled to 0 after ${backend.scaleToZero.idleAfterMs} ms without traffic (or by the admin API)`);
      // Until the old pods leave the EndpointSlices, a wake queued behind this stop would find their
      // endpoints still verified and release held requests to pods being killed.
      await this.state.afterStop(workloadKey(target), STOP_SETTLE_MS);
      this.log.info('scaled idle workload to 0', { host: backend.name, workload: describe(target), from: wakeReplicas });
      void this.events.record(this.involved(target), 'Normal', 'ScaledToZero', `Scaled ${describe(target)} from ${wakeReplicas} to 0 replicas: backend "${backend.name}" had no traffic; its next request is held and wakes it`);
      return;
    }
    if (result.replicas === 0) return;
    throw new StopRefusedError(this.otherWriter(target, result.replicas, wakeReplicas, backend));
  }

  failure(): undefined {
    // Kubernetes restarts what crashes; readiness (EndpointSlices + our check) tells us the rest.
    return undefined;
  }

  async close(): Promise<void> {}

  private async read(backend: ScalableBackend, target: WorkloadTarget): Promise<{ replicas: number }> {
    const now = await this.reported(backend, () => this.scale.read(target));
    if (now.uid) this.uids.set(workloadKey(target), now.uid);
    return now;
  }

  private otherWriter(target: WorkloadTarget, replicas: number, wakeReplicas: number, backend?: ScalableBackend): string {
    const message = `${describe(target)} has ${replicas} replicas, not the ${wakeReplicas} a wake sets: another writer (an HPA, a GitOps tool, a user) owns them, so it is not scaled to 0`;
    void this.events.record(this.involved(target), 'Warning', 'ScaleDownSkipped', message);
    if (backend) this.report(backend, 'ReplicasOwned', false, 'OtherWriter', message);
    return message;
  }

  private involved(t: WorkloadTarget): { apiVersion: string; kind: string; namespace: string; name: string; uid?: string } {
    const uid = this.uids.get(workloadKey(t));
    return { apiVersion: t.apiVersion, kind: t.kind, namespace: t.namespace, name: t.name, ...(uid ? { uid } : {}) };
  }

  /** A workload that cannot be scaled at all is the user's to fix: say so on the policy and in an Event. */
  private async reported<T>(backend: ScalableBackend, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof ScaleTargetError) {
        this.report(backend, 'WorkloadScalable', false, 'ScaleTargetUnusable', err.message);
        const by = backend.scaleToZero.declaredBy;
        if (by) void this.events.record({ apiVersion: 'scaletozero.dev/v1alpha1', kind: by.kind, namespace: by.namespace, name: by.name }, 'Warning', 'ScaleTargetUnusable', err.message);
      }
      throw err;
    }
  }

  private report(backend: ScalableBackend, type: string, status: boolean, reason: string, message: string): void {
    const by = backend.scaleToZero.declaredBy;
    if (by) this.state.setPolicyCondition(by, { type, status, reason, message });
  }

  private workload(backend: ScalableBackend): { target: WorkloadTarget; wakeReplicas: number } {
    const w = backend.scaleToZero.workload;
    if (w.kind !== 'kubernetes') throw new Error(`backend "${backend.name}" is not a Kubernetes workload`);
    return { target: w.target, wakeReplicas: w.wakeReplicas };
  }
}

function describe(t: WorkloadTarget): string {
  return `${t.kind} ${t.namespace}/${t.name}`;
}

/** How long a stop waits for the old pods to leave the EndpointSlices. */
const STOP_SETTLE_MS = 30_000;
