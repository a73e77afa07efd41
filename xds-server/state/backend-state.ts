// The port between the scaling controller and whichever source owns "which backends are held now": the
// file store (marks persisted in the state directory) or the Kubernetes state (derived from the cluster).
import type { DesiredState, WakeFailure } from '../../snapshots/desired-state.ts';
import type { ScalableBackend } from '../scaling/provider.ts';

export interface BackendView {
  backend: ScalableBackend;
  /** The filter holds this backend's requests now. */
  held: boolean;
  changedAt: string;
  reason?: string;
}

export interface BackendState {
  /** Every backend with a scale-to-zero policy. */
  scalable(): BackendView[];
  find(name: string): BackendView | undefined;
  /**
   * Holds or releases a backend. Returns false when nothing changed. The in-memory change is made before
   * the returned promise first yields, so a caller may publish while it is persisted.
   */
  setHeld(name: string, held: boolean, reason?: string): Promise<boolean>;
  /**
   * Reports a held backend's failed wake to the filter (undefined lifts it). Not persisted: after a restart
   * the next request simply tries again. Returns false when nothing changed; same timing as setHeld.
   */
  setWakeFailure(name: string, failure: WakeFailure | undefined): Promise<boolean>;
  desired(): DesiredState;
  readonly currentGeneration: number;
  /**
   * Raises the filter generation to at least `atLeast` (no-op when it is already there). For an Envoy that
   * reconnects holding a config of a higher generation (another replica's, or this one's before a restart with
   * a clock set back): the filter ignores any config older than the one it applied.
   */
  advanceGeneration(atLeast: number): void;
}

/** The admin API calls a scalable backend a "host" (in file mode it is one). */
export class UnknownHostError extends Error {
  constructor(readonly host: string) {
    super(`no host named "${host}" is configured`);
  }
}
