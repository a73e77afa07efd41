// The per-backend scaling state machine, as data. Both providers (local processes, Kubernetes workloads)
// drive it through the backend controller; nothing else changes a phase. Pure: tested as a table.

/**
 * `failed`: the last wake failed. The filter answers the backend's requests at once (503 / UNAVAILABLE with
 * the reason) until the backoff is over; then it is `scaled_to_zero` again and the next request wakes it.
 */
export type ScalingPhase = 'scaled_to_zero' | 'waking' | 'ready' | 'draining' | 'failed';

export type ScalingEvent =
  /** A wake was asked for (a held request, the admin API). */
  | 'wake'
  /** The woken backend answers and Envoy applied its release. */
  | 'became_ready'
  /** The backend did not become ready (timeout, crash while starting, the provider refused). */
  | 'wake_failed'
  /** The backoff after a failed wake is over: the next request wakes the backend again. */
  | 'backoff_over'
  /** Idle, or the admin API: hold new requests, drain, stop. */
  | 'scale_down'
  /** Drained and stopped. */
  | 'stopped'
  /** A scale-down that could not finish after its mark landed; the backend stays held (its next request wakes it). */
  | 'stop_failed'
  /** A scale-down that failed before its mark landed: nothing is held, the backend keeps serving. */
  | 'drain_aborted'
  /** The provider declined to stop: another writer owns the replicas (an HPA, GitOps); the hold is lifted. */
  | 'stop_refused'
  /** The replicas died on their own while ready. */
  | 'crashed'
  /** Someone else gave the backend ready endpoints (a user's scale-up, an HPA). */
  | 'observed_ready'
  /** Someone else took every endpoint away (a user's scale to 0). */
  | 'observed_zero';

/** phase → event → next phase. A pair that is not listed is not a legal transition. */
export const TRANSITIONS: Readonly<Record<ScalingPhase, Readonly<Partial<Record<ScalingEvent, ScalingPhase>>>>> = {
  scaled_to_zero: { wake: 'waking', observed_ready: 'ready' },
  waking: { became_ready: 'ready', wake_failed: 'failed', observed_ready: 'ready' },
  // An admin wake may retry before the backoff is over; a wake call from the filter waits for it.
  failed: { wake: 'waking', backoff_over: 'scaled_to_zero', observed_ready: 'ready' },
  ready: { scale_down: 'draining', crashed: 'scaled_to_zero', observed_zero: 'scaled_to_zero' },
  draining: { stopped: 'scaled_to_zero', stop_failed: 'scaled_to_zero', drain_aborted: 'ready', stop_refused: 'ready' },
};

export type Transition = { ok: true; next: ScalingPhase } | { ok: false; reason: string };

export function transition(phase: ScalingPhase, event: ScalingEvent): Transition {
  const next = TRANSITIONS[phase][event];
  return next === undefined ? { ok: false, reason: `"${event}" is not a transition out of ${phase}` } : { ok: true, next };
}

export const PHASES: readonly ScalingPhase[] = ['scaled_to_zero', 'waking', 'ready', 'draining', 'failed'];
export const EVENTS: readonly ScalingEvent[] = ['wake', 'became_ready', 'wake_failed', 'backoff_over', 'scale_down', 'stopped', 'stop_failed', 'drain_aborted', 'stop_refused', 'crashed', 'observed_ready', 'observed_zero'];
