// A list-then-watch cache of one resource, written for watches that break: it resumes from the last
// resourceVersion it saw (bookmarks keep that fresh on quiet watches), lists again when the server says
// the version is too old (410 Gone), restarts after any error with jittered exponential backoff, and a
// watchdog ends a watch that has carried nothing at all for too long (a silently dead connection).
import { EventEmitter } from 'node:events';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { KubeApiError, type KubeClient, type KubeObject, type WatchEventType, type WatchHandle } from './rest.ts';

export interface InformerOptions {
  /** No event and no bookmark for this long: the watch is presumed dead and replaced. */
  watchdogMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  clock?: Clock;
  /** 0..1; injected so tests are deterministic. */
  random?: () => number;
}

export const DEFAULT_INFORMER_OPTIONS: InformerOptions = { watchdogMs: 5 * 60_000 + 30_000, backoffInitialMs: 200, backoffMaxMs: 30_000 };

export type InformerEvents = {
  /** The cache changed (after the first list, on every event, after a relist). */
  change: [];
  /** The first list has landed. */
  synced: [];
  /** Something broke and the informer will retry (for logs and metrics). */
  retry: [reason: string, delayMs: number];
};

const keyOf = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class Informer<T extends KubeObject = KubeObject> extends EventEmitter<InformerEvents> {
  private readonly items = new Map<string, T>();
  private resourceVersion = '';
  private hasSynced = false;
  private stopped = false;
  private handle: WatchHandle | undefined;
  private failures = 0;
  /** Events (bookmarks included, errors not) the current watch has carried. */
  private delivered = 0;
  private readonly clock: Clock;
  private readonly random: () => number;
  /** Ends the watchdog and backoff sleeps on stop(). */
  private readonly stopAll = new AbortController();
  /** Counts for tests and metrics. */
  readonly stats = { lists: 0, watches: 0, relistsOnGone: 0, watchdogRestarts: 0, errors: 0 };

  constructor(
    private readonly client: KubeClient,
    /** Collection path, e.g. /apis/discovery.k8s.io/v1/endpointslices. */
    readonly path: string,
    private readonly log: Logger,
    private readonly options: InformerOptions = DEFAULT_INFORMER_OPTIONS,
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  list(): T[] {
    return [...this.items.values()];
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.items.get(`${namespace ?? ''}/${name}`);
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.handle?.abort();
    this.stopAll.abort();
  }

  /** Resolves once the first list has landed. */
  waitForSync(): Promise<void> {
    return this.hasSynced ? Promise.resolve() : new Promise((resolve) => this.once('synced', () => resolve()));
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) await this.relist();
        needList = false;
        const startedAt = this.clock.now();
        this.delivered = 0;
        const ended = await this.watchOnce();
        // A watch that worked for a while (or carried events) proves the connection: earlier failures are
        // forgiven. One that ends at once, however it ends, must not be retried in a tight loop.
        const worked = this.delivered > 0 || this.clock.now() - startedAt >= 1_000;
        if (worked) this.failures = 0;
        if (ended === 'gone') {
          this.stats.relistsOnGone += 1;
          needList = true;
        }
        if (ended === 'error' || !worked) await this.backoff(ended === 'gone' ? 'the watch was refused with 410 right after a list' : 'watch failed');
      } catch (err) {
        this.stats.errors += 1;
        if (err instanceof KubeApiError && err.status === 410) needList = true;
        await this.backoff(err instanceof Error ? err.message : String(err));
      }
    }
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.client.list(this.path);
    this.stats.lists += 1;
    this.items.clear();
    for (const item of items) this.items.set(keyOf(item), item as T);
    this.resourceVersion = resourceVersion;
    this.emit('change');
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.emit('synced');
    }
  }

  /** One watch, until it ends: 'closed' (the server ended it), 'gone' (410: list again), 'error'. */
  private watchOnce(): Promise<'closed' | 'gone' | 'error'> {
    return new Promise((resolve) => {
      let settled = false;
      let lastActivity = this.clock.now();
      const watchdog = new AbortController();
      const finish = (how: 'closed' | 'gone' | 'error', why?: string): void => {
        if (settled) return;
        settled = true;
        watchdog.abort();
        this.handle?.abort();
        this.handle = undefined;
        if (how === 'error' && why) this.log.warn('watch ended with an error; resuming', { path: this.path, error: why });
        resolve(how);
      };
      const onEvent = (type: WatchEventType, object: KubeObject): void => {
        lastActivity = this.clock.now();
        if (settled) return;
        if (type !== 'ERROR') this.delivered += 1;
        if (type === 'ERROR') {
          const status = object as unknown as { code?: number; message?: string };
          // 410: the version we asked for is compacted away; only a fresh list can catch up.
          finish(status.code === 410 ? 'gone' : 'error', status.message ?? 'watch ERROR event');
          return;
        }
        if (object.metadata?.resourceVersion) this.resourceVersion = object.metadata.resourceVersion;
        if (type === 'BOOKMARK') return;
        if (type === 'DELETED') this.items.delete(keyOf(object));
        else this.items.set(keyOf(object), object as T);
        this.emit('change');
      };
      const onDone = (err: unknown): void => {
        if (this.stopped) return finish('closed');
        if (err instanceof KubeApiError && err.status === 410) finish('gone');
        else if ((err as { statusCode?: number } | null)?.statusCode === 410) finish('gone');
        else finish(err ? 'error' : 'closed', err ? String((err as Error).message ?? err) : undefined);
      };
      this.stats.watches += 1;
      this.client.watch(this.path, this.resourceVersion, onEvent, onDone).then(
        (handle) => {
          if (settled || this.stopped) handle.abort();
          else this.handle = handle;
        },
        (err: unknown) => finish('error', String((err as Error).message ?? err)),
      );
      void (async () => {
        while (!settled && !this.stopped) {
          await this.clock.sleep(Math.max(10, Math.floor(this.options.watchdogMs / 4)), watchdog.signal);
          if (this.stopped) break;
          if (!settled && this.clock.now() - lastActivity >= this.options.watchdogMs) {
            this.stats.watchdogRestarts += 1;
            this.log.warn('watch silent for too long; replacing it', { path: this.path, silentMs: this.clock.now() - lastActivity });
            finish('closed');
          }
        }
        if (this.stopped) finish('closed');
      })();
    });
  }

  /** Full jitter: a restarting fleet of control planes does not hit the API server in lockstep. */
  private async backoff(reason: string): Promise<void> {
    this.failures += 1;
    const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffInitialMs * 2 ** (this.failures - 1));
    const delay = Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
    this.emit('retry', reason, delay);
    await this.clock.sleep(delay, this.stopAll.signal);
  }
}
