// Writes the status the translation computed, only where it differs from what the object has (ignoring
// lastTransitionTime), as a merge patch on the status subresource carrying the resourceVersion it was
// computed from: a concurrent change makes the API server refuse (409), and the next translation, which
// sees that change, writes again. One write per object at a time; a burst of translations coalesces.
// With several replicas only the leader writes (`mayWrite`); the others drop what they are offered, and a new
// leader re-translates everything (KubernetesState.resync) and offers it again.
import { canonicalJson } from '../../snapshots/version.ts';
import type { StatusUpdate } from '../../sources/kubernetes/translate.ts';
import type { Logger } from '../log.ts';
import { KubeApiError, type KubeClient, type KubeObject } from './rest.ts';

const PLURALS: Record<string, string> = {
  GatewayClass: 'gatewayclasses',
  Gateway: 'gateways',
  HTTPRoute: 'httproutes',
  GRPCRoute: 'grpcroutes',
  ScaleToZeroPolicy: 'scaletozeropolicies',
};

export function statusPath(update: Pick<StatusUpdate, 'apiVersion' | 'kind' | 'namespace' | 'name'>): string {
  const plural = PLURALS[update.kind];
  if (!plural) throw new Error(`no status path for kind ${update.kind}`);
  const ns = update.namespace ? `/namespaces/${update.namespace}` : '';
  return `/apis/${update.apiVersion}${ns}/${plural}/${update.name}/status`;
}

/** Status without lastTransitionTime, so "nothing changed" is not mistaken for a change. */
export function comparableStatus(status: unknown): string {
  return canonicalJson(JSON.parse(JSON.stringify(status ?? {}), (k, value: unknown) => (k === 'lastTransitionTime' ? undefined : value)));
}

export class StatusWriter {
  private pending = new Map<string, StatusUpdate>();
  private running = false;
  private closed = false;
  readonly stats = { writes: 0, conflicts: 0, failures: 0 };

  constructor(
    private readonly client: KubeClient,
    /** The object as the informer has it now (for its status and resourceVersion). */
    private readonly current: (update: StatusUpdate) => KubeObject | undefined,
    private readonly log: Logger,
    private readonly mayWrite: () => boolean = () => true,
  ) {}

  offer(updates: readonly StatusUpdate[]): void {
    if (!this.mayWrite()) {
      this.pending.clear();
      return;
    }
    for (const u of updates) {
      const obj = this.current(u);
      if (!obj) continue;
      if (comparableStatus(obj.status) === comparableStatus(u.status)) {
        this.pending.delete(key(u));
        continue;
      }
      this.pending.set(key(u), u);
    }
    void this.drain();
  }

  close(): void {
    this.closed = true;
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.closed && this.pending.size > 0) {
        if (!this.mayWrite()) {
          this.pending.clear();
          break;
        }
        const [k, update] = this.pending.entries().next().value as [string, StatusUpdate];
        this.pending.delete(k);
        const obj = this.current(update);
        if (!obj || comparableStatus(obj.status) === comparableStatus(update.status)) continue;
        try {
          await this.client.request('PATCH', statusPath(update), { metadata: { resourceVersion: obj.metadata.resourceVersion }, status: update.status }, 'application/merge-patch+json');
          this.stats.writes += 1;
        } catch (err) {
          if (err instanceof KubeApiError && (err.status === 409 || err.status === 404)) {
            // Changed or gone since: the informer brings the new version and the next translation.
            this.stats.conflicts += 1;
          } else {
            this.stats.failures += 1;
            this.log.warn('status write failed; retried on the next change', { object: k, error: (err as Error).message });
          }
        }
      }
    } finally {
      this.running = false;
    }
  }
}

function key(u: StatusUpdate): string {
  return `${u.kind}/${u.namespace ?? ''}/${u.name}`;
}
