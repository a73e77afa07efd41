// Snapshots per node group, and the set of streams watching each group. The cache keeps no per-stream
// protocol state (that is the stream session's); it only tells watchers that their snapshot changed.
import type { Snapshot } from '../../snapshots/build.ts';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { clientKindOf, type ClientKind } from '../ads/client-kind.ts';
import type { AdsEvents } from '../ads/events.ts';
import { nodeMetadataString, type NodeInfo } from '../protos/codec.ts';

/** Where one client stands with one version of one type. */
export type Settlement =
  | { state: 'applied' }
  /** The client NACKed it. */
  | { state: 'rejected'; message: string }
  | { state: 'pending' }
  /** The client subscribes to nothing of this type (never asked, or dropped every name): nothing to wait for. */
  | { state: 'unsubscribed' };

export interface WatcherLabel {
  nodeId: string;
  streamId: number;
  client: ClientKind;
}

export interface SnapshotWatcher {
  readonly group: string;
  readonly label: WatcherLabel;
  onSnapshot(snapshot: Snapshot): void;
  settlement(kind: ResourceKind, version: string): Settlement;
}

/** A client that did not apply a change: it rejected it, or had not answered when the wait ended. */
export interface NotApplied extends WatcherLabel {
  type: ResourceKind;
  reason: 'rejected' | 'timeout';
  message?: string;
}

export interface SettleResult {
  /** Every client answered (ACK or NACK) or subscribes to none of the types. */
  settled: boolean;
  /** Clients that rejected the change or had not answered by the deadline. */
  notApplied: NotApplied[];
}

/**
 * The node metadata key an Envoy names its gateway with (Kubernetes mode: the Gateway's `<namespace>/<name>`).
 * Set it in the bootstrap: `node: {metadata: {"scaletozero.dev/gateway": "<namespace>/<name>"}}`.
 */
export const GATEWAY_METADATA_KEY = 'scaletozero.dev/gateway';
/**
 * Envoys that name no gateway: they get every gateway's listeners (all of them in Kubernetes mode, the one
 * gateway in file mode), as before per-gateway snapshots existed.
 */
export const DEFAULT_GROUP = 'default';
/** Proxyless gRPC clients get their own snapshot: API listeners that lead through the gateway. */
export const PROXYLESS_GROUP = 'proxyless-grpc';
const GATEWAY_GROUP_PREFIX = 'gateway/';

/** The snapshot group of the Envoys that name this gateway in their node metadata. */
export function gatewayGroup(gateway: string): string {
  return `${GATEWAY_GROUP_PREFIX}${gateway}`;
}

/** The gateway a group serves; undefined for the default and proxyless groups. */
export function gatewayOfGroup(group: string): string | undefined {
  return group.startsWith(GATEWAY_GROUP_PREFIX) ? group.slice(GATEWAY_GROUP_PREFIX.length) : undefined;
}

/**
 * Which snapshot a client gets: proxyless gRPC clients theirs; an Envoy that names its gateway in
 * node.metadata["scaletozero.dev/gateway"] that gateway's; any other client every gateway's (DEFAULT_GROUP).
 */
export function nodeGroup(node: NodeInfo | undefined): string {
  if (clientKindOf(node) === 'grpc') return PROXYLESS_GROUP;
  const gateway = nodeMetadataString(node, GATEWAY_METADATA_KEY)?.trim();
  return gateway ? gatewayGroup(gateway) : DEFAULT_GROUP;
}

/** Versions to wait for, per group. */
export type SettleTargets = ReadonlyMap<string, Partial<Record<ResourceKind, string>>>;

export class SnapshotCache {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly watchers = new Set<SnapshotWatcher>();
  /** Builds the snapshot of a group nobody asked for before (an Envoy of a gateway seen for the first time). */
  private source: ((group: string) => Snapshot | undefined) | undefined;

  constructor(private readonly events: AdsEvents) {}

  getSnapshot(group: string): Snapshot | undefined {
    return this.snapshots.get(group);
  }

  /** Groups that have a snapshot now. */
  get groups(): string[] {
    return [...this.snapshots.keys()].sort();
  }

  /** Groups some connected client watches. */
  watchedGroups(): Set<string> {
    return new Set([...this.watchers].map((w) => w.group));
  }

  setSnapshotSource(source: (group: string) => Snapshot | undefined): void {
    this.source = source;
  }

  /** Forgets a group's snapshot (its gateway is gone and nobody watches it). */
  deleteSnapshot(group: string): void {
    this.snapshots.delete(group);
  }

  setSnapshot(group: string, snapshot: Snapshot): void {
    this.snapshots.set(group, snapshot);
    this.events.emit('snapshot-set', { group, versions: snapshot.versions });
    for (const watcher of this.watchers) if (watcher.group === group) watcher.onSnapshot(snapshot);
  }

  watch(watcher: SnapshotWatcher): () => void {
    this.watchers.add(watcher);
    if (!this.snapshots.has(watcher.group)) {
      const snapshot = this.source?.(watcher.group);
      if (snapshot) this.snapshots.set(watcher.group, snapshot);
    }
    return () => this.watchers.delete(watcher);
  }

  get watchCount(): number {
    return this.watchers.size;
  }

  /**
   * Resolves once every connected stream of the group has ACKed or NACKed the given versions of the types
   * it subscribes to, or at the deadline; says which clients did not apply them. A client that subscribes
   * to none of the types (an Envoy whose listener failed and dropped its RDS and ECDS names) is not waited
   * for. Used to push endpoints before the config that releases held requests, and by the admin API.
   * With a map, waits for every group in it at once (each with its own versions).
   */
  async waitUntilSettled(group: string, versions: Partial<Record<ResourceKind, string>>, timeoutMs: number): Promise<SettleResult>;
  async waitUntilSettled(targets: SettleTargets, timeoutMs: number): Promise<SettleResult>;
  async waitUntilSettled(a: string | SettleTargets, b: Partial<Record<ResourceKind, string>> | number, c?: number): Promise<SettleResult> {
    const targets: SettleTargets = typeof a === 'string' ? new Map([[a, b as Partial<Record<ResourceKind, string>>]]) : a;
    const timeoutMs = typeof a === 'string' ? c! : (b as number);
    const entriesOf = (group: string): [ResourceKind, string][] => Object.entries(targets.get(group) ?? {}) as [ResourceKind, string][];
    // A client that has already moved on to the current snapshot has settled every older one too (Envoy
    // ACKs only the latest response of a type, so an older version may never be ACKed on its own).
    const where = (w: SnapshotWatcher, kind: ResourceKind, v: string): Settlement => {
      const a = w.settlement(kind, v);
      const current = this.snapshots.get(w.group)?.versions[kind];
      const b = current === undefined || current === v ? a : w.settlement(kind, current);
      for (const s of [a, b]) if (s.state === 'applied' || s.state === 'unsubscribed') return s;
      for (const s of [a, b]) if (s.state === 'rejected') return s;
      return a;
    };
    const result = (timedOut: boolean): SettleResult => {
      const notApplied: NotApplied[] = [];
      for (const w of this.watchers) {
        for (const [kind, v] of entriesOf(w.group)) {
          const s = where(w, kind, v);
          if (s.state === 'rejected') notApplied.push({ ...w.label, type: kind, reason: 'rejected', message: s.message });
          else if (s.state === 'pending' && timedOut) notApplied.push({ ...w.label, type: kind, reason: 'timeout' });
        }
      }
      return { settled: !timedOut, notApplied };
    };
    const settled = (): boolean => [...this.watchers].every((w) => entriesOf(w.group).every(([kind, v]) => where(w, kind, v).state !== 'pending'));
    if (settled()) return result(false);
    return new Promise<SettleResult>((resolve) => {
      const check = (): void => {
        if (settled()) done(false);
      };
      const timer = setTimeout(() => done(true), timeoutMs);
      const done = (timedOut: boolean): void => {
        clearTimeout(timer);
        this.events.off('ack', check);
        this.events.off('settled', check);
        this.events.off('nack', check);
        this.events.off('request', check);
        this.events.off('stream-close', check);
        resolve(result(timedOut));
      };
      this.events.on('ack', check);
      this.events.on('settled', check);
      this.events.on('nack', check);
      // A client that drops its names (unsubscribes) settles by that request alone.
      this.events.on('request', check);
      this.events.on('stream-close', check);
    });
  }
}
