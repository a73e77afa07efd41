// Snapshots per node group, and the set of streams watching each group. The cache keeps no per-stream
// protocol state (that is the stream session's); it only tells watchers that their snapshot changed.
import type { Snapshot } from '../../snapshots/build.ts';
import type { ResourceKind } from '../../snapshots/type-urls.ts';
import type { AdsEvents } from '../ads/events.ts';

export interface SnapshotWatcher {
  readonly group: string;
  onSnapshot(snapshot: Snapshot): void;
  /** True when this watcher's client has settled (ACKed or NACKed) the given version of a type, or never asked for the type. */
  hasSettled(kind: ResourceKind, version: string): boolean;
}

export const DEFAULT_GROUP = 'default';

/** All Envoys share one snapshot today; the hash function is the seam for per-group snapshots. */
export function nodeGroup(_node: { id?: string; cluster?: string } | undefined): string {
  return DEFAULT_GROUP;
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
   * Resolves once every connected stream of the group has ACKed or NACKed the given versions, or at the
   * deadline. Used to push endpoints before the config that releases held requests.
   */
  async waitUntilSettled(group: string, versions: Partial<Record<ResourceKind, string>>, timeoutMs: number): Promise<boolean> {
    // A client that has already moved on to the current snapshot has settled every older one too (Envoy
    // ACKs only the latest response of a type, so an older version may never be ACKed on its own).
    const settled = (): boolean =>
      [...this.watchers].every(
        (w) =>
          w.group !== group ||
          (Object.entries(versions) as [ResourceKind, string][]).every(
            ([kind, v]) => w.hasSettled(kind, v) || w.hasSettled(kind, this.snapshots.get(group)?.versions[kind] ?? v),
          ),
      );
    if (settled()) return true;
    return new Promise<boolean>((resolve) => {
      const check = (): void => {
        if (!settled()) return;
        done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.events.off('ack', check);
        this.events.off('nack', check);
        this.events.off('stream-close', check);
        resolve(ok);
      };
      this.events.on('ack', check);
      this.events.on('nack', check);
      this.events.on('stream-close', check);
    });
  }
}
