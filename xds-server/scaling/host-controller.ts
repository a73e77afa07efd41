// The one place that changes whether a host is scaled to zero. The admin API and the filter's wake calls
// both come here; scalers (issue 4) plug in behind the same two verbs.
import type { Snapshot } from '../../snapshots/build.ts';
import type { Publisher } from '../publisher.ts';
import type { GatewayStore } from '../state/store.ts';

export interface HostChange {
  changed: boolean;
  snapshot?: Snapshot;
}

export interface HostController {
  /** Idempotent "at least one replica": resolves once a snapshot releasing the host is in the cache. */
  wake(name: string, reason: string): Promise<HostChange>;
  /** Marks the host first (new requests are held), then stops it. */
  scaleToZero(name: string, reason: string): Promise<HostChange>;
}

/** Marks come only from the admin API; nothing is started or stopped. */
export class ManualHostController implements HostController {
  constructor(
    private readonly store: GatewayStore,
    private readonly publisher: Publisher,
  ) {}

  async wake(name: string, reason: string): Promise<HostChange> {
    return this.mark(name, false, reason);
  }

  async scaleToZero(name: string, reason: string): Promise<HostChange> {
    return this.mark(name, true, reason);
  }

  private async mark(name: string, scaledToZero: boolean, reason: string): Promise<HostChange> {
    const changed = await this.store.setScaledToZero(name, scaledToZero, reason);
    if (!changed) return { changed };
    return { changed, snapshot: await this.publisher.schedule() };
  }
}
