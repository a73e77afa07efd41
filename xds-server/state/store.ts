// File mode's state: the validated config plus the runtime marks (which hosts are held). Every change goes
// through here, is persisted (callers await it; a wake publishes while the write runs; a reload's write waits
// until its push is applied, state-writer.ts), and bumps the filter generation when (and only when) what the
// filter sees changes.
import type { GatewayModel } from '../../model/gateway-model.ts';
import type { DesiredState, WakeFailure, WakeTarget } from '../../snapshots/desired-state.ts';
import { filterConfigContent } from '../../snapshots/filter-config.ts';
import { canonicalJson } from '../../snapshots/version.ts';
import type { GatewayConfig, HostConfig } from '../../sources/file/config.ts';
import { keepUnchangedHosts, type ReloadDiff } from '../../sources/file/reload-diff.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';
import type { ScalableBackend } from '../scaling/provider.ts';
import { UnknownHostError, type BackendState, type BackendView } from './backend-state.ts';
import { saveState, type PersistedHostState, type PersistedState } from './persistence.ts';
import { StateWriter } from './state-writer.ts';

export { UnknownHostError } from './backend-state.ts';

export interface HostView {
  config: HostConfig;
  scaledToZero: boolean;
  changedAt: string;
  reason?: string;
}

export class GatewayStore implements BackendState {
  private config: GatewayConfig;
  private model: GatewayModel;
  private readonly marks = new Map<string, PersistedHostState>();
  private readonly wakeFailures = new Map<string, WakeFailure>();
  private generation: number;
  private readonly writer: StateWriter<PersistedState>;
  /** The write of the state last handed to the writer (rejected if it failed). */
  private saved: Promise<void> = Promise.resolve();
  /** What the filter sees (canonical JSON, generation left out) after the last change; undefined before the first. */
  private filterContent: string | undefined;
  /** The state last handed to the writer: a change that leaves it the same writes nothing. */
  private lastQueued: QueuedState | undefined;
  /** scalable()'s answer until the next change. */
  private views: BackendView[] | undefined;
  /** The held hosts' names until the next change (desired()). */
  private held: ReadonlySet<string> | undefined;

  constructor(
    config: GatewayConfig,
    persisted: PersistedState | undefined,
    private readonly options: { stateDir: string; filterWasmPath: string; wake?: WakeTarget; maxWriteHoldMs?: number },
  ) {
    this.writer = new StateWriter((state) => saveState(options.stateDir, state), options.maxWriteHoldMs);
    this.config = config;
    this.model = fileConfigToModel(config);
    // The filter ignores configs older than the one it applied, so the generation must never go back: not
    // when the state file is gone, nor when a crash lost its last bumps (a wake publishes before the
    // write lands). Starting above both the file and the clock keeps it ahead of anything Envoy has seen.
    this.generation = Math.max((persisted?.generation ?? 0) + 1, Date.now());
    const persistedHosts = persisted?.hosts ?? {};
    this.applyConfigMarks((name) => persistedHosts[name]);
  }

  desired(): DesiredState {
    // Made once per change: a publish asks several times (build, proxyless snapshot, a gateway's source), and
    // at 5,000 hosts each set was a walk with two arrays of every mark.
    if (this.held === undefined) {
      const held = new Set<string>();
      // forEach: no entry array per mark (for...of in unoptimised code made one each).
      this.marks.forEach((mark, name) => {
        if (mark.scaledToZero) held.add(name);
      });
      this.held = held;
    }
    const state: DesiredState = {
      model: this.model,
      held: this.held,
      generation: this.generation,
      filterWasmPath: this.options.filterWasmPath,
    };
    if (this.options.wake) state.wake = this.options.wake;
    if (this.wakeFailures.size > 0) state.wakeFailures = new Map(this.wakeFailures);
    return state;
  }

  hosts(): HostView[] {
    return this.config.hosts.map((h) => this.view(h));
  }

  /** The hosts' configs as they are in force (no view built per host). */
  hostConfigs(): readonly HostConfig[] {
    return this.config.hosts;
  }

  host(name: string): HostView | undefined {
    const config = this.config.hosts.find((h) => h.name === name);
    return config ? this.view(config) : undefined;
  }

  /**
   * Every file host is a scalable backend (a manual one by default). The views are made once per change and
   * handed out again until the next (callers only read them): the idle check asks every second, and at
   * 5,000 hosts new views each time were ~0.5 MiB of garbage per second.
   */
  scalable(): BackendView[] {
    return (this.views ??= this.model.backends.map((b) => this.backendView(b as ScalableBackend)));
  }

  find(name: string): BackendView | undefined {
    const backend = this.model.backends.find((b) => b.name === name);
    return backend ? this.backendView(backend as ScalableBackend) : undefined;
  }

  setHeld(name: string, held: boolean, reason?: string): Promise<boolean> {
    return this.setScaledToZero(name, held, reason);
  }

  /**
   * Marks or unmarks a host and persists it. Returns false when nothing changed. The in-memory change is
   * made before the returned promise first yields, so a caller may publish while the file is written.
   */
  async setScaledToZero(name: string, scaledToZero: boolean, reason?: string): Promise<boolean> {
    if (!this.config.hosts.some((h) => h.name === name)) throw new UnknownHostError(name);
    const current = this.marks.get(name);
    if (current?.scaledToZero === scaledToZero) return false;
    await this.change(undefined, () => {
      this.marks.set(name, { scaledToZero, changedAt: new Date().toISOString(), ...(reason ? { reason } : {}) });
    });
    return true;
  }

  async setWakeFailure(name: string, failure: WakeFailure | undefined): Promise<boolean> {
    if (!this.config.hosts.some((h) => h.name === name)) throw new UnknownHostError(name);
    const current = this.wakeFailures.get(name);
    if (current?.reason === failure?.reason && current?.retryAfterSeconds === failure?.retryAfterSeconds) return false;
    await this.change(undefined, () => {
      if (failure) this.wakeFailures.set(name, { ...failure });
      else this.wakeFailures.delete(name);
    });
    return true;
  }

  /**
   * A new config keeps the marks of hosts it still has; new hosts start in their initialState. Hosts it left
   * unchanged keep their objects (and so what was built from them); says which hosts it added, changed, removed.
   * The new config is in force before the returned promise first yields (a reload publishes while it is written).
   * `persistAfter`: the state file is not written before that promise settles (the reload's push applied), unless
   * another change or flush() needs it written first; the returned promise still waits for the write.
   */
  async replaceConfig(config: GatewayConfig, options: { persistAfter?: Promise<unknown> } = {}): Promise<Omit<ReloadDiff, 'config'>> {
    const diff = keepUnchangedHosts(this.config, config);
    await this.change(options.persistAfter, () => {
      const previous = new Map(this.marks);
      this.config = diff.config;
      this.model = fileConfigToModel(diff.config);
      this.marks.clear();
      // Looked up in the copy itself: an object of 1,000 hosts' marks built for the lookup cost more than the rest.
      this.applyConfigMarks((name) => previous.get(name));
    });
    return { added: diff.added, changed: diff.changed, removed: diff.removed };
  }

  get currentGeneration(): number {
    return this.generation;
  }

  advanceGeneration(atLeast: number): void {
    // Not persisted at once: the next change persists it, and after a restart a reconnecting Envoy raises it again.
    if (atLeast > this.generation) this.generation = atLeast;
  }

  /**
   * Every write asked for has landed (or failed), held ones included: on shutdown, so a reload's state that
   * waited for its push is not lost with the process.
   */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  private async change(persistAfter: Promise<unknown> | undefined, mutate: () => void): Promise<void> {
    // Every change goes through here, so what the filter saw after the last one is what it sees now.
    const before = this.filterContent ?? canonicalJson(filterConfigContent(this.desired()));
    mutate();
    this.views = undefined;
    this.held = undefined;
    this.filterContent = canonicalJson(filterConfigContent(this.desired()));
    if (this.filterContent !== before) this.generation += 1;
    // A change that leaves the persisted state as it is (a reload that moved an endpoint, say) costs no write
    // and no fsync: those took 20-50 ms here, and now and then far more, which a next reload would wait out.
    // Marks are replaced, never changed in place, so "as it is" is the same generation and the same mark
    // objects (serialising 5,000 hosts' marks to compare them cost ~5 ms of a cold load's first push).
    const queued = { generation: this.generation, marks: new Map(this.marks) };
    if (!sameQueued(this.lastQueued, queued)) {
      this.lastQueued = queued;
      // The file's object is made when the write starts (after the push, for a reload), not now.
      this.saved = this.writer
        .queue(() => ({ formatVersion: 1, generation: queued.generation, hosts: Object.fromEntries(queued.marks) }), persistAfter)
        .catch((err: unknown) => {
          // Not written: the next change writes its state again, even an equal one.
          if (this.lastQueued === queued) this.lastQueued = undefined;
          throw err;
        });
    } else if (persistAfter === undefined) {
      // Nothing new to write, but this change is awaited as durable: a held write of the same state goes now.
      this.writer.release();
    }
    await this.saved;
  }

  private applyConfigMarks(persisted: (name: string) => PersistedHostState | undefined): void {
    const now = new Date().toISOString();
    // Every new host of one change starts with one of two marks: shared, frozen (marks are replaced, never
    // changed in place), rather than one object per host (5,000 of them on a cold load's way to Envoy).
    const initial = (scaledToZero: boolean): PersistedHostState => Object.freeze({ scaledToZero, changedAt: now, reason: 'initialState in config' });
    const ready = initial(false);
    const scaledToZero = initial(true);
    for (const host of this.config.hosts) {
      const kept = persisted(host.name);
      this.marks.set(host.name, kept ?? (host.initialState === 'scaled_to_zero' ? scaledToZero : ready));
    }
  }

  private view(config: HostConfig): HostView {
    const mark = this.marks.get(config.name)!;
    return { config, scaledToZero: mark.scaledToZero, changedAt: mark.changedAt, ...(mark.reason ? { reason: mark.reason } : {}) };
  }

  private backendView(backend: ScalableBackend): BackendView {
    const mark = this.marks.get(backend.name)!;
    // No spread: scalable() makes one per host after every change (the idle check asks within a second).
    const view: BackendView = { backend, held: mark.scaledToZero, changedAt: mark.changedAt };
    if (mark.reason) view.reason = mark.reason;
    return view;
  }
}

interface QueuedState {
  generation: number;
  marks: ReadonlyMap<string, PersistedHostState>;
}

function sameQueued(a: QueuedState | undefined, b: QueuedState): boolean {
  if (a === undefined || a.generation !== b.generation || a.marks.size !== b.marks.size) return false;
  let same = true;
  b.marks.forEach((mark, name) => {
    if (same && a.marks.get(name) !== mark) same = false;
  });
  return same;
}
