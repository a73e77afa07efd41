// Desired state → snapshot → cache, debounced, with make-before-break across types: when clusters or
// endpoints change together with what the filter or routes see, the new clusters and endpoints go first
// and the control plane waits for every Envoy to ACK them, so a request the new filter config releases
// never meets a cluster without its endpoints.
import { buildProxylessSnapshot } from '../snapshots/api-listener.ts';
import { buildSnapshot, snapshotFromResources, type Snapshot } from '../snapshots/build.ts';
import type { DesiredState } from '../snapshots/desired-state.ts';
import { formatFieldErrors } from '../snapshots/errors.ts';
import type { Resource, ResourcesByKind } from '../snapshots/resource.ts';
import { DEFAULT_GROUP, PROXYLESS_GROUP, type SnapshotCache } from './cache/snapshot-cache.ts';
import type { Logger } from './log.ts';

export interface PublisherOptions {
  /** A change waits this long for more changes before it is pushed. */
  quietMs: number;
  /** The same for an urgent change (a release that held requests wait for). */
  urgentQuietMs: number;
  /** ...but never longer than this after the first change of a burst. */
  maxDelayMs: number;
  /** How long to wait for Envoys to ACK new clusters/endpoints before pushing the rest anyway. */
  settleTimeoutMs: number;
}

// A release sits on the path of every held request, so it waits only 1 ms (changes made in the same tick
// still merge); other changes wait 5 ms, so bursts (scripts, reloads, idle scale-downs) make one push.
export const DEFAULT_PUBLISHER_OPTIONS: PublisherOptions = { quietMs: 5, urgentQuietMs: 1, maxDelayMs: 50, settleTimeoutMs: 5_000 };

export class SnapshotBuildError extends Error {}

export class Publisher {
  private waiters: { resolve: (s: Snapshot) => void; reject: (e: Error) => void }[] = [];
  private quietTimer: NodeJS.Timeout | undefined;
  /** An urgent change is waiting: calmer changes join it without delaying it. */
  private urgentPending = false;
  private maxTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  publishCount = 0;

  constructor(
    private readonly desired: () => DesiredState,
    private readonly cache: SnapshotCache,
    private readonly log: Logger,
    private readonly options: PublisherOptions = DEFAULT_PUBLISHER_OPTIONS,
  ) {}

  /** Publishes now, without debounce (start-up). */
  async publishNow(): Promise<Snapshot> {
    const result = this.build();
    this.cache.setSnapshot(DEFAULT_GROUP, result);
    this.publishProxyless();
    this.publishCount += 1;
    return result;
  }

  /** Resolves once a snapshot containing every change made before this call is in the cache. */
  schedule(options: { urgent?: boolean } = {}): Promise<Snapshot> {
    const done = new Promise<Snapshot>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (options.urgent || !this.urgentPending) {
      this.urgentPending ||= options.urgent === true;
      clearTimeout(this.quietTimer);
      this.quietTimer = setTimeout(() => this.flush(), options.urgent ? this.options.urgentQuietMs : this.options.quietMs);
    }
    this.maxTimer ??= setTimeout(() => this.flush(), this.options.maxDelayMs);
    return done;
  }

  close(): void {
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxTimer);
  }

  private flush(): void {
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxTimer);
    this.quietTimer = undefined;
    this.maxTimer = undefined;
    this.urgentPending = false;
    const waiters = this.waiters;
    this.waiters = [];
    // Publishes run one at a time, so the two phases of one never interleave with another's.
    this.running = this.running.then(async () => {
      try {
        const snapshot = await this.publishInPhases();
        for (const w of waiters) w.resolve(snapshot);
      } catch (err) {
        for (const w of waiters) w.reject(err as Error);
      }
    });
  }

  private async publishInPhases(): Promise<Snapshot> {
    const next = this.build();
    const previous = this.cache.getSnapshot(DEFAULT_GROUP);
    if (previous && needsTwoPhases(previous, next)) {
      const first = firstPhase(previous, next);
      this.cache.setSnapshot(DEFAULT_GROUP, first);
      const settled = await this.cache.waitUntilSettled(
        DEFAULT_GROUP,
        { cluster: first.versions.cluster, endpoint: first.versions.endpoint },
        this.options.settleTimeoutMs,
      );
      if (!settled.settled) {
        this.log.warn('not every Envoy settled the new clusters/endpoints in time; pushing the rest anyway', {
          timeoutMs: this.options.settleTimeoutMs,
          pending: settled.notApplied.filter((n) => n.reason === 'timeout').map((n) => `${n.nodeId}#${n.streamId} (${n.type})`),
        });
      }
    }
    this.cache.setSnapshot(DEFAULT_GROUP, next);
    this.publishProxyless();
    this.publishCount += 1;
    return next;
  }

  /** The proxyless gRPC clients' snapshot, from the same desired state; set only when it changed. */
  private publishProxyless(): void {
    const result = buildProxylessSnapshot(this.desired());
    if (!result.ok) throw new SnapshotBuildError(`refusing an inconsistent proxyless snapshot: ${formatFieldErrors(result.errors)}`);
    const previous = this.cache.getSnapshot(PROXYLESS_GROUP);
    const same = previous !== undefined && (Object.keys(result.value.versions) as (keyof Snapshot['versions'])[]).every((k) => previous.versions[k] === result.value.versions[k]);
    if (!same) this.cache.setSnapshot(PROXYLESS_GROUP, result.value);
  }

  private build(): Snapshot {
    const result = buildSnapshot(this.desired());
    if (!result.ok) {
      // Input is validated before it reaches the store, so this is a bug, not a user error.
      throw new SnapshotBuildError(`refusing an inconsistent snapshot: ${formatFieldErrors(result.errors)}`);
    }
    return result.value;
  }
}

function needsTwoPhases(previous: Snapshot, next: Snapshot): boolean {
  const upstreamChanged = previous.versions.cluster !== next.versions.cluster || previous.versions.endpoint !== next.versions.endpoint;
  const downstreamChanged =
    previous.versions.listener !== next.versions.listener ||
    previous.versions.route !== next.versions.route ||
    previous.versions.extensionConfig !== next.versions.extensionConfig;
  return upstreamChanged && downstreamChanged;
}

/** New clusters and endpoints alongside the old ones (so old routes still resolve), old everything else. */
function firstPhase(previous: Snapshot, next: Snapshot): Snapshot {
  const union = (a: ReadonlyMap<string, Resource>, b: ReadonlyMap<string, Resource>): ReadonlyMap<string, Resource> =>
    new Map([...a, ...b].sort(([x], [y]) => x.localeCompare(y)));
  const resources: ResourcesByKind = {
    cluster: union(previous.resources.cluster, next.resources.cluster),
    endpoint: union(previous.resources.endpoint, next.resources.endpoint),
    listener: previous.resources.listener,
    route: previous.resources.route,
    extensionConfig: previous.resources.extensionConfig,
  };
  const result = snapshotFromResources(resources);
  if (!result.ok) throw new SnapshotBuildError(`refusing an inconsistent first-phase snapshot: ${formatFieldErrors(result.errors)}`);
  return result.value;
}
