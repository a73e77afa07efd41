// What the scaling controller asks of whatever runs a backend's replicas. Two implementations: local
// processes (file mode) and Kubernetes workloads through their /scale subresource. A manual backend has a
// provider that does nothing: readiness is the operator's business.
import type { BackendModel, ScaleToZeroPolicy, WorkloadRef } from '../../model/gateway-model.ts';

/** How a backend was found ready: its readiness check passed, or it said so itself (process hosts). */
export type ReadyEvidence = 'probe' | 'signal';

/** A backend the controller may scale: one with a scale-to-zero policy. */
export type ScalableBackend = BackendModel & { scaleToZero: ScaleToZeroPolicy };

export interface BackendProvider {
  readonly kind: WorkloadRef['kind'];
  /**
   * False for manual backends: the control plane neither starts nor stops anything, so it does not drain,
   * does not scale down on idle, and ignores the filter's wake calls (the admin API still marks).
   */
  readonly managesReplicas: boolean;
  /**
   * Undo a wake that did not become ready. True for local processes (they are ours alone); false for
   * Kubernetes, where a slow start (an image pull) would otherwise be scaled down and up again forever, and
   * the replicas may not even be ours: there the idle detector decides later.
   */
  readonly stopsFailedWakes: boolean;
  /** Replicas that several backends share (one workload behind several Service ports) have one key. */
  workloadKey(backend: ScalableBackend): string;
  /** At least one replica. Idempotent, and never lowers a replica count someone else set. */
  wake(backend: ScalableBackend): Promise<void>;
  /**
   * Why stop() would refuse now (another writer owns the replicas), checked before anything is held; or
   * undefined. Optional: stop() still decides.
   */
  stopRefusal?(backend: ScalableBackend): Promise<string | undefined>;
  /**
   * Resolves once the backend can take requests (an endpoint answers its readiness check). Rejects with a
   * reason a user can act on when `deadline` (epoch ms) passes. Stops early when `signal` aborts (the
   * replicas died, the control plane stops). May say how it knew (default: its readiness check).
   */
  waitReady(backend: ScalableBackend, deadline: number, signal: AbortSignal): Promise<ReadyEvidence | void>;
  /** No replicas, if they are still the ones we set (never fights another writer). */
  stop(backend: ScalableBackend): Promise<void>;
  /** Resolves with a reason if the replicas die on their own after a wake (a crashed process). */
  failure(backend: ScalableBackend): Promise<string> | undefined;
  close(): Promise<void>;
}

/**
 * stop() declined on purpose: the replicas are no longer the ones we set, so another writer (a user's HPA, a
 * GitOps tool) owns them. The backend keeps serving; the controller lifts its hold.
 */
export class StopRefusedError extends Error {}

export class ManualProvider implements BackendProvider {
  readonly kind = 'manual';
  readonly managesReplicas = false;
  readonly stopsFailedWakes = false;
  workloadKey(backend: ScalableBackend): string {
    return `manual/${backend.name}`;
  }
  async wake(): Promise<void> {}
  async waitReady(): Promise<void> {}
  async stop(): Promise<void> {}
  failure(): undefined {
    return undefined;
  }
  async close(): Promise<void> {}
}
