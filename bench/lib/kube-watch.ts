// The benchmark's own list+watch of one Kubernetes collection, separate from the control plane's
// informers: every event is handed over with the time it was taken off the watch stream (epoch ms, the
// same clock as every other stamp in the benchmark). A watch that ends is resumed from the last version;
// one that cannot be resumed is listed again. Stops when close() is called; every wait is bounded.
import { performance } from 'node:perf_hooks';
import { KubeApiError, type KubeClient, type KubeObject, type WatchEventType, type WatchHandle } from '../../xds-server/kubernetes/rest.ts';

export const epochMs = (): number => performance.timeOrigin + performance.now();

export interface BenchWatch {
  /** Resolves once the first list has been handed over (as ADDED events). */
  readonly synced: Promise<void>;
  close(): void;
}

/** `onReset` runs before each (re)list is handed over as ADDED events, so a cache built from the events can start afresh. */
export function benchWatch(
  client: KubeClient,
  collection: string,
  onEvent: (type: Exclude<WatchEventType, 'BOOKMARK' | 'ERROR'>, obj: KubeObject, at: number) => void,
  onReset: () => void = () => {},
): BenchWatch {
  let stopped = false;
  let handle: WatchHandle | undefined;
  let markSynced!: () => void;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));
  const run = async (): Promise<void> => {
    let rv = '';
    while (!stopped) {
      try {
        if (rv === '') {
          const list = await client.list(collection);
          const at = epochMs();
          onReset();
          for (const item of list.items) onEvent('ADDED', item, at);
          rv = list.resourceVersion;
          markSynced();
        }
        const ended = await new Promise<'closed' | 'gone'>((resolve) => {
          void client
            .watch(
              collection,
              rv,
              (type, obj) => {
                const at = epochMs();
                if (type === 'ERROR') {
                  if ((obj as unknown as { code?: number }).code === 410) resolve('gone');
                  return;
                }
                if (obj.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
                if (type === 'BOOKMARK') return;
                onEvent(type, obj, at);
              },
              (err) => resolve(err instanceof KubeApiError && err.status === 410 ? 'gone' : 'closed'),
            )
            .then(
              (h) => {
                handle = h;
                if (stopped) h.abort();
              },
              () => resolve('closed'),
            );
        });
        handle = undefined;
        if (ended === 'gone') rv = '';
        if (!stopped) await new Promise((r) => setTimeout(r, 50));
      } catch {
        if (!stopped) await new Promise((r) => setTimeout(r, 200));
        rv = '';
      }
    }
  };
  void run();
  return {
    synced,
    close() {
      stopped = true;
      handle?.abort();
    },
  };
}
