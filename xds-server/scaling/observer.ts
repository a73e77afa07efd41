// What the backend controller tells those who watch it (metrics, the status page's cold-start record).
// Calls only: an observer never changes what the controller does, and a throwing observer is not its problem.
import type { ScalingStatus, WakeSource } from './backend-controller.ts';
import type { ReadyEvidence } from './provider.ts';

/** Why a wake failed, as a bounded set (a metric label); the message says the rest. */
export type WakeFailureReason =
  /** The provider refused to start it (a command that cannot run, a /scale write refused). */
  | 'refused'
  /** It started and exited (or its replicas died) before becoming ready. */
  | 'exited'
  /** Not ready within wakeTimeoutMs. */
  | 'not_ready'
  /** Ready, but the release could not be persisted or pushed. */
  | 'release_failed';

export type ScaleDownCause = 'idle' | 'admin';

export interface ScalingObserver {
  /** A wake begins (the phase is now `waking`). */
  wakeStarted?(host: string, source: WakeSource, reason: string): void;
  /** The provider started the replicas (a process spawned; a /scale write answered). */
  wakeSpawned?(host: string): void;
  /**
   * The provider says the backend is ready; the release is pushed next. `by`: how a process host was found
   * ready (its health check or its own signal); undefined when the provider does not say (manual, Kubernetes).
   */
  wakeReady?(host: string, by: ReadyEvidence | undefined): void;
  /** The snapshot that releases the backend is published (its responses are written to the Envoys' streams). */
  releasePushed?(host: string): void;
  /** Every connected Envoy applied the release (or the wait for it ended: `notApplied` clients). */
  released?(host: string, notApplied: number): void;
  wakeFailed?(host: string, reason: WakeFailureReason, message: string): void;
  /** Drained and stopped. */
  scaledDown?(host: string, cause: ScaleDownCause): void;
  phaseChanged?(host: string, status: ScalingStatus): void;
}
