// Desired state → snapshot → cache, debounced, with make-before-break across types (publish-plan.ts): when new
// or changed clusters (which Envoy warms until their endpoints arrive) come together with what the filter or
// routes see, the clusters and endpoints go first and the control plane waits for every Envoy to ACK them, so a
// request the new filter config releases never meets a cluster that is still warming. Where the routes that
// come with new clusters only reach requests nothing served before (new hosts on new domains: a cold load),
// everything goes at once and the publish ends once the clusters are applied. Changed endpoints of existing
// clusters need no wait: one ADS stream delivers them before the routes and filter config, in order. Removed
// clusters go last: everything else first, then their removal, also without a wait.
import { buildProxylessSnapshot } from '../snapshots/api-listener.ts';
import { buildSnapshot, buildUpstream, snapshotFromResources, type Snapshot, type Upstream } from '../snapshots/build.ts';
import type { DesiredState } from '../snapshots/desired-state.ts';
import { formatFieldErrors } from '../snapshots/errors.ts';
import { gatewaysOf, modelForGateway } from '../snapshots/gateways.ts';
import type { Resource, ResourcesByKind } from '../snapshots/resource.ts';
import { sameResource } from '../snapshots/wire.ts';
import { DEFAULT_GROUP, PROXYLESS_GROUP, gatewayGroup, gatewayOfGroup, type SettleTargets, type SnapshotCache } from './cache/snapshot-cache.ts';
import type { Logger } from './log.ts';
import { planOf } from './publish-plan.ts';
import { compareNames } from '../model/name-order.ts';

/** What one publish set: every group's snapshot. */
export interface Published {
  /** The snapshot of Envoys that name no gateway (every gateway's config). */
  snapshot: Snapshot;
  /** Every Envoy group's snapshot (the default group and one per gateway), by group. */
  groups: ReadonlyMap<string, Snapshot>;
}

export interface PublisherOptions {
  /** A change waits this long for more changes before it is pushed. */
  quietMs: number;
  /** The same for an urgent change (a release that held requests wait for); 0 = the next turn of the event loop. */
  urgentQuietMs: number;
  /** ...but never longer than this after the first change of a burst. */
  maxDelayMs: number;
  /** How long to wait for Envoys to ACK new clusters/endpoints before pushing the rest anyway. */
  settleTimeoutMs: number;
}

// A release sits on the path of every held request, so it waits only for the next turn of the event loop
// (urgentQuietMs 0: setImmediate; changes made in the same turn still merge; a 1 ms timer cost ~1.2 ms of
// every wake: bench/results/wake-cost.md); other changes wait 5 ms, so bursts (scripts, reloads, idle
// scale-downs) make one push.
export const DEFAULT_PUBLISHER_OPTIONS: PublisherOptions = { quietMs: 5, urgentQuietMs: 0, maxDelayMs: 50, settleTimeoutMs: 5_000 };

export class SnapshotBuildError extends Error {}

export class Publisher {
  private waiters: { resolve: (s: Published) => void; reject: (e: Error) => void }[] = [];
  private quietTimer: NodeJS.Timeout | undefined;
  private quietImmediate: NodeJS.Immediate | undefined;
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
  ) {
    // An Envoy of a gateway no publish has built yet gets its snapshot when it connects.
    cache.setSnapshotSource((group) => (group === PROXYLESS_GROUP ? undefined : this.buildGroup(this.desired(), group)));
  }

  /** Publishes now, without debounce (start-up). */
  async publishNow(): Promise<Published> {
    const next = this.buildAll();
    this.setAll(next);
    this.forgetUnused(next);
    this.publishProxyless();
    this.publishCount += 1;
    return published(next);
  }

  /** Resolves once a snapshot containing every change made before this call is in the cache. */
  schedule(options: { urgent?: boolean } = {}): Promise<Published> {
    const done = new Promise<Published>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (options.urgent || !this.urgentPending) {
      this.urgentPending ||= options.urgent === true;
      this.clearQuiet();
      const wait = options.urgent ? this.options.urgentQuietMs : this.options.quietMs;
      // setTimeout(0) waits at least 1 ms in Node; setImmediate runs after this turn's I/O.
      if (wait <= 0) this.quietImmediate = setImmediate(() => this.flush());
      else this.quietTimer = setTimeout(() => this.flush(), wait);
    }
    this.maxTimer ??= setTimeout(() => this.flush(), this.options.maxDelayMs);
    return done;
  }

  close(): void {
    this.clearQuiet();
    clearTimeout(this.maxTimer);
  }

  private clearQuiet(): void {
    clearTimeout(this.quietTimer);
    clearImmediate(this.quietImmediate);
    this.quietTimer = undefined;
    this.quietImmediate = undefined;
  }

  private flush(): void {
    this.clearQuiet();
    clearTimeout(this.maxTimer);
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

  private async publishInPhases(): Promise<Published> {
    const desired = this.desired();
    const groups = this.groupsOf(desired);
    const previousOf = new Map(groups.map((group) => [group, this.cache.getSnapshot(group)]));
    // New or changed clusters go on the wire first, beside every cluster in force and with the routes, listeners
    // and filter config in force (firstPhaseOf): that is safe whatever the plan turns out to be (nothing that
    // routes anywhere changes; a changed cluster serves as it was until its new version is warm), and Envoy
    // warms them while the rest is built, planned and encoded (at 5,000 hosts a cold load's first CDS byte
    // waited ~100 ms for the routes to be built and the plan to be made). Every plan that warms sends this
    // very snapshot as its first phase, so nothing is sent twice.
    const upstream = new Map<string, Upstream>();
    const early = new Map<string, Snapshot>();
    for (const group of groups) {
      const up = buildUpstream(this.stateOf(desired, group));
      upstream.set(group, up);
      const previous = previousOf.get(group);
      if (previous !== undefined && addsOrChangesClusters(previous, up.cluster)) early.set(group, firstPhaseOf(previous, up, previous));
    }
    for (const [group, first] of early) this.cache.setSnapshot(group, first);
    // The bytes leave on the next turn of the event loop: let them go before the rest is built.
    if (early.size > 0) await new Promise((resolve) => setImmediate(resolve));
    let next: Map<string, Snapshot>;
    try {
      next = new Map(groups.map((group) => [group, this.buildGroup(desired, group, upstream.get(group))]));
    } catch (err) {
      // Only the clusters were sent: take them back (the removal of a cluster nothing routes to is safe).
      for (const group of early.keys()) {
        const previous = previousOf.get(group);
        if (previous !== undefined) this.cache.setSnapshot(group, previous);
      }
      throw err;
    }
    const firstPhase = new Map<string, Snapshot>();
    const removeLast = new Map<string, Snapshot>();
    const alongside = new Map<string, Snapshot>();
    for (const [group, snapshot] of next) {
      const previous = previousOf.get(group);
      const plan = previous ? planOf(previous, snapshot) : 'at-once';
      if (plan === 'warm-first') firstPhase.set(group, early.get(group) ?? firstPhaseOf(previous!, snapshot.resources, previous!));
      else if (plan === 'remove-last') removeLast.set(group, firstPhaseOf(previous!, snapshot.resources, snapshot));
      else if (plan === 'warm-alongside') alongside.set(group, early.get(group) ?? firstPhaseOf(previous!, snapshot.resources, previous!));
    }
    // Everything but the removal of clusters: the removal follows on the same stream, after the routes.
    for (const [group, first] of removeLast) this.cache.setSnapshot(group, first);
    const notSentYet = (phase: Map<string, Snapshot>): [string, Snapshot][] => [...phase].filter(([group, first]) => early.get(group) !== first);
    const alongsideLate = notSentYet(alongside);
    if (alongsideLate.length > 0) {
      // The new clusters and endpoints (with the routes in force) go on the wire before the new route table is
      // encoded (its version is worked out when the full snapshot is set): Envoy warms while we encode.
      for (const [group, first] of alongsideLate) this.cache.setSnapshot(group, first);
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (firstPhase.size > 0) {
      const targets = new Map<string, { cluster: string; endpoint: string }>();
      for (const [group, first] of firstPhase) targets.set(group, { cluster: first.versions.cluster, endpoint: first.versions.endpoint });
      for (const [group, first] of notSentYet(firstPhase)) this.cache.setSnapshot(group, first);
      await this.settle(targets, 'pushing the rest anyway');
    }
    this.setAll(next);
    this.forgetUnused(next);
    this.publishProxyless();
    this.publishCount += 1;
    // Sent at once; the next publish (which may release requests onto the new clusters) waits until they are warm.
    if (alongside.size > 0) await this.settle(new Map([...alongside.keys()].map((group) => [group, { cluster: next.get(group)!.versions.cluster, endpoint: next.get(group)!.versions.endpoint }])), 'publishing on');
    return published(next);
  }

  private async settle(targets: Map<string, { cluster: string; endpoint: string }>, then: string): Promise<void> {
    const settled = await this.cache.waitUntilSettled(targets as SettleTargets, this.options.settleTimeoutMs);
    if (!settled.settled) {
      this.log.warn(`not every Envoy settled the new clusters/endpoints in time; ${then}`, {
        timeoutMs: this.options.settleTimeoutMs,
        pending: settled.notApplied.filter((n) => n.reason === 'timeout').map((n) => `${n.nodeId}#${n.streamId} (${n.type})`),
      });
    }
  }

  /** The default group is always set (a publish is an event); a gateway's only when it changed. */
  private setAll(next: ReadonlyMap<string, Snapshot>): void {
    for (const [group, snapshot] of next) {
      const current = this.cache.getSnapshot(group);
      if (group !== DEFAULT_GROUP && current !== undefined && sameVersions(current, snapshot)) continue;
      this.cache.setSnapshot(group, snapshot);
    }
  }

  /**
   * Every Envoy group's next snapshot: the default group (every gateway), each gateway of the model, and each
   * gateway a connected Envoy names even if the model has none of it (it gets an empty gateway, and its
   * listeners as soon as they exist).
   */
  private buildAll(): Map<string, Snapshot> {
    const desired = this.desired();
    return new Map(this.groupsOf(desired).map((group) => [group, this.buildGroup(desired, group)]));
  }

  private groupsOf(desired: DesiredState): string[] {
    const groups = new Set([DEFAULT_GROUP, ...gatewaysOf(desired.model).map(gatewayGroup)]);
    for (const group of this.cache.watchedGroups()) if (gatewayOfGroup(group) !== undefined) groups.add(group);
    return [...groups].sort();
  }

  /** Drops the snapshots of gateways that are gone and that no Envoy watches. */
  private forgetUnused(built: ReadonlyMap<string, Snapshot>): void {
    for (const group of this.cache.groups) if (gatewayOfGroup(group) !== undefined && !built.has(group)) this.cache.deleteSnapshot(group);
  }

  /** The proxyless gRPC clients' snapshot, from the same desired state; set only when it changed. */
  private publishProxyless(): void {
    const result = buildProxylessSnapshot(this.desired());
    if (!result.ok) throw new SnapshotBuildError(`refusing an inconsistent proxyless snapshot: ${formatFieldErrors(result.errors)}`);
    const previous = this.cache.getSnapshot(PROXYLESS_GROUP);
    if (previous === undefined || !sameVersions(previous, result.value)) this.cache.setSnapshot(PROXYLESS_GROUP, result.value);
  }

  /** The desired state one group's Envoys see (a gateway's own part of the model). */
  private stateOf(desired: DesiredState, group: string): DesiredState {
    const gateway = gatewayOfGroup(group);
    return gateway === undefined ? desired : { ...desired, model: modelForGateway(desired.model, gateway) };
  }

  private buildGroup(desired: DesiredState, group: string, upstream?: Upstream): Snapshot {
    const gateway = gatewayOfGroup(group);
    const result = buildSnapshot(this.stateOf(desired, group), upstream);
    if (!result.ok) {
      // Input is validated before it reaches the store, so this is a bug, not a user error.
      throw new SnapshotBuildError(`refusing an inconsistent snapshot${gateway !== undefined ? ` for gateway ${gateway}` : ''}: ${formatFieldErrors(result.errors)}`);
    }
    return result.value;
  }
}

function sameVersions(a: Snapshot, b: Snapshot): boolean {
  return (Object.keys(b.versions) as (keyof Snapshot['versions'])[]).every((k) => a.versions[k] === b.versions[k]);
}

function published(groups: ReadonlyMap<string, Snapshot>): Published {
  return { snapshot: groups.get(DEFAULT_GROUP)!, groups };
}

/**
 * True when `clusters` has a cluster that `previous` has not, or has in another content: what Envoy must warm.
 */
function addsOrChangesClusters(previous: Snapshot, clusters: ReadonlyMap<string, Resource>): boolean {
  for (const [name, cluster] of clusters) {
    const before = previous.resources.cluster.get(name);
    if (before === undefined || !sameResource('cluster', before, cluster)) return true;
  }
  return false;
}

/** New clusters and endpoints alongside the old ones (so old routes still resolve), `downstream`'s listeners, routes and filter config. */
function firstPhaseOf(previous: Snapshot, next: Upstream, downstream: Snapshot): Snapshot {
  // When `b` has every name of `a` (a cold load, or any publish that removes nothing) the union is `b` itself:
  // the same map, so its version is worked out once for both snapshots (snapshots/version.ts).
  const union = (a: ReadonlyMap<string, Resource>, b: ReadonlyMap<string, Resource>): ReadonlyMap<string, Resource> => {
    let covers = true;
    for (const name of a.keys()) if (!b.has(name)) covers = false;
    return covers ? b : new Map([...a, ...b].sort(([x], [y]) => compareNames(x, y)));
  };
  const resources: ResourcesByKind = {
    cluster: union(previous.resources.cluster, next.cluster),
    endpoint: union(previous.resources.endpoint, next.endpoint),
    listener: downstream.resources.listener,
    route: downstream.resources.route,
    extensionConfig: downstream.resources.extensionConfig,
  };
  const result = snapshotFromResources(resources);
  if (!result.ok) throw new SnapshotBuildError(`refusing an inconsistent first-phase snapshot: ${formatFieldErrors(result.errors)}`);
  return result.value;
}
