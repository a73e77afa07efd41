// Snapshots per node group, and the set of streams watching each group. The cache keeps no per-stream
// protocol state (that is the stream session's); it only tells watchers that their snapshot changed.
import type { Snapshot } from '../../snapshots/build.ts';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import { clientKindOf, type ClientKind } from '../ads/client-kind.ts';
import type { AdsEvents } from '../ads/events.ts';

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

export const DEFAULT_GROUP = 'default';
/** Proxyless gRPC clients get their own snapshot: API listeners that lead through the gateway. */
export const PROXYLESS_GROUP = 'proxyless-grpc';

/** Envoys share one snapshot; proxyless gRPC clients share another. */
export function nodeGroup(node: { id?: string; cluster?: string; user_agent_name?: string } | undefined): string {
  return clientKindOf(node) === 'grpc' ? PROXYLESS_GROUP : DEFAULT_GROUP;
}

export class SnapshotCache {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly watchers = new Set<SnapshotWatcher>();

  constructor(private readonly events: AdsEvents) {}

  getSnapshot(group: string): Snapshot | undefined {
    return this.snapshots.get(group);
  }

  setSnapshot(group: string, snapshot: Snapshot): void {
    this.snapshots.set(group, snapshot);
    this.events.emit('snapshot-set', { group, versions: snapshot.versions });
    for (const watcher of this.watchers) if (watcher.group === group) watcher.onSnapshot(snapshot);
  }

  watch(watcher: SnapshotWatcher): () => void {
    this.watchers.add(watcher);
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
   */
  async waitUntilSettled(group: string, versions: Partial<Record<ResourceKind, string>>, timeoutMs: number): Promise<SettleResult> {
    const entries = Object.entries(versions) as [ResourceKind, string][];
    // A client that has already moved on to the current snapshot has settled every older one too (Envoy
    // ACKs only the latest response of a type, so an older version may never be ACKed on its own).
    const where = (w: SnapshotWatcher, kind: ResourceKind, v: string): Settlement => {
      const a = w.settlement(kind, v);
      const current = this.snapshots.get(group)?.versions[kind];
      const b = current === undefined || current === v ? a : w.settlement(kind, current);
      for (const s of [a, b]) if (s.state === 'applied' || s.state === 'unsubscribed') return s;
      for (const s of [a, b]) if (s.state === 'rejected') return s;
      return a;
    };
    const result = (timedOut: boolean): SettleResult => {
      const notApplied: NotApplied[] = [];
      for (const w of this.watchers) {
        if (w.group !== group) continue;
        for (const [kind, v] of entries) {
          const s = where(w, kind, v);
          if (s.state === 'rejected') notApplied.push({ ...w.label, type: kind, reason: 'rejected', message: s.message });
          else if (s.state === 'pending' && timedOut) notApplied.push({ ...w.label, type: kind, reason: 'timeout' });
        }
      }
      return { settled: !timedOut, notApplied };
    };
    const settled = (): boolean => [...this.watchers].every((w) => w.group !== group || entries.every(([kind, v]) => where(w, kind, v).state !== 'pending'));
    if (settled()) return result(false);
    return new Promise<SettleResult>((resolve) => {
      const check = (): void => {
        if (settled()) done(false);
      };
      const timer = setTimeout(() => done(true), timeoutMs);
      const done = (timedOut: boolean): void => {
        clearTimeout(timer);
        this.events.off('ack', check);
        this.events.off('nack', check);
        this.events.off('request', check);
        this.events.off('stream-close', check);
        resolve(result(timedOut));
      };
      this.events.on('ack', check);
      this.events.on('nack', check);
      // A client that drops its names (unsubscribes) settles by that request alone.
      this.events.on('request', check);
      this.events.on('stream-close', check);
    });
  }
}
