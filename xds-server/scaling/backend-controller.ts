// The one place that changes a backend's scaling phase. The admin API, the filter's wake calls, the idle
// detector and what the provider observes all come here. Operations on one workload (all the backends it
// serves: one Kubernetes workload may sit behind several Service ports) run one at a time, in order, so a
// wake that races a scale-down simply runs after it (the racing request is held meanwhile, and served
// after). Every phase change goes through the transition table in phases.ts.
import { MAX_RETRY_AFTER_SECONDS, toFailureReason } from '../../filter/assembly/config/rules.ts';
import type { Snapshot } from '../../snapshots/build.ts';
import { DEFAULT_WAKE_FAILURE_BACKOFF_MS } from '../../snapshots/defaults.ts';
import type { SnapshotCache } from '../cache/snapshot-cache.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Published, Publisher } from '../publisher.ts';
import { UnknownHostError, type BackendState, type BackendView } from '../state/backend-state.ts';
import { transition, type ScalingEvent, type ScalingPhase } from './phases.ts';
import { StopRefusedError, type BackendProvider, type ReadyEvidence, type ScalableBackend } from './provider.ts';
import { OncePerCause, type RoutingClient, type TrafficMonitor } from './traffic.ts';
import type { NotApplied } from '../cache/snapshot-cache.ts';
import type { ScaleDownCause, ScalingObserver, WakeFailureReason } from './observer.ts';

export type { ScalingPhase } from './phases.ts';
export type WakeSource = 'admin' | 'filter';

export interface ScalingStatus {
  phase: ScalingPhase;
  since: string;
  lastError?: string;
  lastErrorAt?: string;
  wakeCount: number;
}

export interface HostChange {
  changed: boolean;
  snapshot?: Snapshot;
  /** Why a wake failed (the backend stays scaled to zero; the next request tries again). */
  error?: string;
  /** Clients that rejected the change or had not applied it when the wait ended (empty: all applied). */
  notApplied?: NotApplied[];
}

export interface HostController {
  /** Idempotent "at least one replica": resolves once a snapshot releasing the backend is applied, or with the error. */
  wake(name: string, reason: string, source?: WakeSource): Promise<HostChange>;
  /** Holds the backend first (new requests are held), waits for Envoy to apply that, drains, then stops it. */
  scaleToZero(name: string, reason: string, cause?: ScaleDownCause): Promise<HostChange>;
  /** What a provider or source saw happen without us: endpoints appeared or all went away. */
  observe(name: string, event: 'observed_ready' | 'observed_zero', why: string): void;
  status(name: string): ScalingStatus | undefined;
  /** One pass of the idle detector (also run on a timer). */
  scaleDownIdle(): void;
  close(): Promise<void>;
}

export interface ScalingOptions {
  /** How long a scale-down waits for requests in progress to finish before stopping anyway. */
  drainTimeoutMs: number;
  /** How long a change waits for every Envoy to ACK it before going on regardless. */
  applyTimeoutMs: number;
  /** How often idle backends are looked for (0 = never). */
  idleCheckIntervalMs: number;
  /** LRS report period; reports older than 3 periods mean "no data", and then nothing is scaled down. */
  loadReportIntervalMs: number;
}

export const DEFAULT_SCALING_OPTIONS: ScalingOptions = { drainTimeoutMs: 10_000, applyTimeoutMs: 10_000, idleCheckIntervalMs: 1_000, loadReportIntervalMs: 1_000 };

export interface BackendControllerDeps {
  state: BackendState;
  publisher: Pick<Publisher, 'schedule'>;
  cache: Pick<SnapshotCache, 'waitUntilSettled'>;
  traffic: Pick<TrafficMonitor, 'touch' | 'lastActiveAt' | 'requestsInProgress' | 'idleEvidence'>;
  providers: Partial<Record<ScalableBackend['scaleToZero']['workload']['kind'], BackendProvider>>;
  metrics: Pick<Metrics, 'inc'>;
  log: Logger;
  /** The connected ADS clients that route a cluster (subscribe to it): only they can see its traffic. */
  routingClients: (cluster: string) => RoutingClient[];
  /** Other replicas of this control plane; absent: this process is the only one. */
  peers?: PeerReplicas;
  clock?: Clock;
  /** Told of wakes, releases, failures, scale-downs and phase changes (metrics, the status page). */
  observer?: ScalingObserver;
}

/**
 * The other replicas, as the idle detector needs them (Kubernetes mode with leader election). Only the leader
 * decides idle scale-downs, from its own load reports plus what the other replicas' Envoys reported.
 */
export interface PeerReplicas {
  /** True while this replica takes the once-only decisions. */
  isLeader(): boolean;
  /** Latest traffic of a cluster seen through another replica's Envoys, on this replica's clock. */
  lastTrafficAt(cluster: string): number | undefined;
  /** Whether the other replicas allow taking silence since `since` for idleness; `reporters`: their open load-report streams. */
  evidence(since: number, now: number): ({ ok: true } | { ok: false; cause: string }) & { reporters: number };
  /** The other replicas whose clients have not all applied the hold of these backends yet (empty: all have). */
  notHolding(backends: readonly string[], now: number): string[];
}

/** A failed wake's backoff: the filter answers the backend's requests at once until `until`. */
interface Backoff {
  until: number;
  reason: string;
  /** Aborts the timer that ends it. */
  stop: AbortController;
}

export class BackendController implements HostController {
  private readonly statuses = new Map<string, ScalingStatus>();
  private readonly backoffs = new Map<string, Backoff>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly wakes = new Map<string, Promise<HostChange>>();
  private readonly clock: Clock;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Why an idle backend is not scaled down yet, and clients that cannot report: each logged once per cause. */
  private readonly postponed = new OncePerCause();

  constructor(
    private readonly deps: BackendControllerDeps,
    private readonly options: ScalingOptions = DEFAULT_SCALING_OPTIONS,
  ) {
    this.clock = deps.clock ?? systemClock;
    if (options.idleCheckIntervalMs > 0) {
      this.idleTimer = setInterval(() => this.scaleDownIdle(), options.idleCheckIntervalMs);
      this.idleTimer.unref();
    }
  }

  /** A backend nobody has acted on yet is in the phase its held state implies. Reading never writes. */
  status(name: string): ScalingStatus | undefined {
    const view = this.deps.state.find(name);
    if (!view) return undefined;
    return this.statuses.get(name) ?? this.derivedStatus(view);
  }

  /** The status of a backend no transition has touched yet: what the state says. */
  private derivedStatus(view: BackendView): ScalingStatus {
    return { phase: view.held ? 'scaled_to_zero' : 'ready', since: view.changedAt, wakeCount: 0 };
  }

  wake(name: string, reason: string, source: WakeSource = 'admin'): Promise<HostChange> {
    const view = this.view(name);
    if (source === 'filter' && !this.provider(view.backend).managesReplicas) {
      // Manual backends change only through the admin API; the filter's call is noted, not acted on.
      return Promise.resolve({ changed: false });
    }
    const inFlight = this.wakes.get(name);
    if (inFlight) return inFlight;
    const run = this.enqueue(this.queueKey(view), () => this.doWake(name, reason, source)).finally(() => this.wakes.delete(name));
    this.wakes.set(name, run);
    return run;
  }

  scaleToZero(name: string, reason: string, cause: ScaleDownCause = 'admin'): Promise<HostChange> {
    return this.enqueue(this.queueKey(this.view(name)), () => this.doScaleToZero(name, reason, cause));
  }

  observe(name: string, _event: 'observed_ready' | 'observed_zero', why: string): void {
    const view = this.deps.state.find(name);
    if (this.closed || !view) return;
    // Behind any operation in flight: a wake that is about to report ready must not be overtaken. What is
    // applied is what the state says when it runs, not what it said when this was queued.
    void this.enqueue(this.queueKey(view), async () => {
      const now = this.deps.state.find(name);
      if (!now) return;
      const event = now.held ? 'observed_zero' : 'observed_ready';
      const phase = this.status(name)!.phase;
      if (transition(phase, event).ok) {
        this.apply(name, event);
        this.deps.log.info(event === 'observed_ready' ? 'backend became ready without a wake from us' : 'backend lost every endpoint', { host: name, why });
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.idleTimer);
    for (const b of this.backoffs.values()) b.stop.abort();
  }

  private async doWake(name: string, reason: string, source: WakeSource): Promise<HostChange> {
    if (!this.view(name).held) {
      const phase = this.status(name)!.phase;
      if (phase === 'scaled_to_zero' || phase === 'failed') this.apply(name, 'observed_ready');
      return { changed: false };
    }
    const backend = this.view(name).backend;
    const provider = this.provider(backend);
    const backoff = this.backoffs.get(name);
    if (backoff && source === 'filter' && this.clock.now() < backoff.until) {
      // A worker that has not applied the failure yet: the backoff holds for it too. An admin wake goes on.
      return { changed: false, error: `the last wake failed (${backoff.reason}); the next one is tried after ${new Date(backoff.until).toISOString()}` };
    }
    // Held while "ready": its endpoints went away and the observation is still queued behind us.
    if (this.status(name)!.phase === 'ready') this.apply(name, 'observed_zero');
    this.apply(name, 'wake');
    const status = this.statuses.get(name);
    if (status) status.wakeCount += 1;
    this.deps.metrics.inc('stz_wakes_total', { host: name, source });
    this.deps.observer?.wakeStarted?.(name, source, reason);
    this.deps.log.info('waking backend', { host: name, reason, provider: provider.kind });
    // Watch for the replicas dying from the start on: one that passes its readiness check and dies before
    // the release is ACKed must not leave the backend "ready" with nothing behind it.
    let died: Promise<string> | undefined;
    let failure: WakeFailureReason = 'refused';
    let readyBy: ReadyEvidence | undefined;
    try {
      await provider.wake(backend);
      this.deps.observer?.wakeSpawned?.(name);
      failure = 'not_ready';
      died = provider.failure(backend);
      void died?.then(
        () => {
          if (failure === 'not_ready') failure = 'exited';
        },
        () => {},
      );
      readyBy = (await this.untilReady(provider, backend, died)) ?? undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (provider.managesReplicas && provider.stopsFailedWakes) await provider.stop(backend).catch(() => {});
      await this.failWake(backend, message, failure);
      return { changed: false, error: message };
    }
    this.deps.observer?.wakeReady?.(name, readyBy);
    try {
      // The release goes out while the state is persisted (the in-memory change is immediate): should the
      // write be lost in a crash, the backend is merely held again and the next request wakes it. Endpoints
      // and clusters go out first and are ACKed before the release (see Publisher).
      const persisted = this.deps.state.setHeld(name, false, reason);
      const pushed = this.deps.publisher.schedule({ urgent: true }).then((p) => {
        this.deps.observer?.releasePushed?.(name);
        return p;
      });
      const [, published] = await Promise.all([persisted, pushed]);
      const notApplied = await this.waitApplied(published, backend.clusterName);
      this.deps.traffic.touch(backend.clusterName, this.clock.now());
      this.deps.observer?.released?.(name, notApplied.length);
      this.apply(name, 'became_ready');
      if (died) this.watchForCrash(name, died);
      this.deps.log.info('backend ready; held requests released', { host: name });
      return { changed: true, snapshot: published.snapshot, notApplied };
    } catch (err) {
      const message = (err as Error).message;
      // Whatever the state holds now is what Envoy gets.
      if (this.deps.state.find(name)?.held === false) this.apply(name, 'became_ready', message);
      else await this.failWake(backend, message, 'release_failed');
      void this.deps.publisher.schedule().catch(() => {});
      this.deps.log.error('wake failed after the backend was ready', { host: name, error: message });
      throw err;
    }
  }

  /**
   * The wake failed: tell the filter, so what it holds is answered now with the reason (not at holdTimeoutMs)
   * and what arrives is answered at once, until the backoff ends and the next request wakes the backend again.
   */
  private async failWake(backend: ScalableBackend, message: string, reason: WakeFailureReason): Promise<void> {
    const name = backend.name;
    const backoffMs = backend.scaleToZero.wakeFailureBackoffMs ?? DEFAULT_WAKE_FAILURE_BACKOFF_MS;
    this.apply(name, 'wake_failed', message);
    this.deps.metrics.inc('stz_wake_failures_total', { host: name, reason });
    this.deps.observer?.wakeFailed?.(name, reason, message);
    this.backoffs.get(name)?.stop.abort();
    const backoff: Backoff = { until: this.clock.now() + backoffMs, reason: message, stop: new AbortController() };
    this.backoffs.set(name, backoff);
    this.deps.log.error('backend did not become ready; held requests are answered now with the reason, the next request tries again after the backoff', {
      host: name,
      error: message,
      backoffMs,
    });
    void this.clock.sleep(backoffMs, backoff.stop.signal).then(() => {
      if (backoff.stop.signal.aborted || this.closed) return;
      const view = this.deps.state.find(name);
      if (!view) {
        // The backend is gone from the config: nothing to lift.
        if (this.backoffs.get(name) === backoff) this.backoffs.delete(name);
        return;
      }
      void this.enqueue(this.queueKey(view), () => this.endBackoff(name, backoff));
    });
    try {
      const retryAfterSeconds = Math.min(MAX_RETRY_AFTER_SECONDS, Math.ceil(backoffMs / 1000));
      await this.deps.state.setWakeFailure(name, { reason: toFailureReason(message), retryAfterSeconds });
      await this.deps.publisher.schedule({ urgent: true });
    } catch (err) {
      // The held requests then get the hold-timeout answer, as they would have anyway.
      this.deps.log.error('could not push the failed wake to Envoy', { host: name, error: (err as Error).message });
    }
  }

  /** Lifts the failure and waits until Envoy applied that, so `scaled_to_zero` means "requests are held again". */
  private async endBackoff(name: string, backoff: Backoff): Promise<void> {
    if (this.backoffs.get(name) !== backoff || this.status(name)?.phase !== 'failed') return;
    this.backoffs.delete(name);
    try {
      await this.deps.state.setWakeFailure(name, undefined);
      await this.waitApplied(await this.deps.publisher.schedule({ urgent: true }), this.deps.state.find(name)?.backend.clusterName);
    } catch (err) {
      this.deps.log.error('could not lift a failed wake', { host: name, error: (err as Error).message });
    } finally {
      this.apply(name, 'backoff_over');
    }
    this.deps.log.info('backoff after a failed wake is over; the next request wakes the backend again', { host: name });
  }

  /** Leaving `failed` (any way) lifts the failure the filter sees. */
  private liftFailure(name: string): void {
    const backoff = this.backoffs.get(name);
    if (!backoff) return;
    backoff.stop.abort();
    this.backoffs.delete(name);
    void this.deps.state
      .setWakeFailure(name, undefined)
      .then((changed) => (changed ? this.deps.publisher.schedule({ urgent: true }) : undefined))
      .catch((err: Error) => this.deps.log.error('could not lift a failed wake', { host: name, error: err.message }));
  }

  private async doScaleToZero(name: string, reason: string, cause: ScaleDownCause): Promise<HostChange> {
    const view = this.view(name);
    const phase = this.status(name)!.phase;
    if (phase === 'scaled_to_zero' || phase === 'failed') {
      // Nothing runs (or nothing we know of): only make sure it is held.
      if (!(await this.deps.state.setHeld(name, true, reason))) return { changed: false };
      const published = await this.deps.publisher.schedule();
      return { changed: true, snapshot: published.snapshot, notApplied: await this.waitApplied(published, view.backend.clusterName) };
    }
    const provider = this.provider(view.backend);
    // Asked before anything is held: a refusal must not cost a hold and a drain every idle period.
    const refusal = provider.managesReplicas ? await provider.stopRefusal?.(view.backend) : undefined;
    if (refusal !== undefined) {
      this.refused(view, refusal);
      return { changed: false, error: refusal };
    }
    // Every backend of the same workload loses its replicas too: hold and drain them all.
    const group = [view, ...this.siblings(view)];
    this.apply(name, 'scale_down');
    this.deps.log.info('scaling backend to zero', { host: name, reason, ...(group.length > 1 ? { alsoHeld: group.slice(1).map((v) => v.backend.name) } : {}) });
    let marked = false;
    try {
      // Hold first: from the moment Envoy applies this, new requests are held (and wake the backend again).
      for (const v of group) await this.deps.state.setHeld(v.backend.name, true, v === view ? reason : `shares its workload with "${name}": ${reason}`);
      marked = true;
      const published = await this.deps.publisher.schedule();
      // Once every Envoy has applied the hold, new requests are held: only then may the replicas go.
      const notApplied = await this.waitApplied(published, ...group.map((v) => v.backend.clusterName));
      if (provider.managesReplicas) {
        await this.waitHeldEverywhere(group.map((v) => v.backend.name));
        await this.waitDrained(group.map((v) => v.backend.clusterName), this.clock.now());
        await provider.stop(view.backend);
        this.deps.metrics.inc('stz_scale_downs_total', { host: name, cause });
        this.deps.observer?.scaledDown?.(name, cause);
      }
      this.apply(name, 'stopped');
      for (const v of group.slice(1)) if (this.status(v.backend.name)!.phase === 'ready') this.apply(v.backend.name, 'observed_zero');
      return { changed: true, snapshot: published.snapshot, notApplied };
    } catch (err) {
      const message = (err as Error).message;
      if (err instanceof StopRefusedError) {
        this.apply(name, 'stop_refused', message);
        for (const v of group) await this.deps.state.setHeld(v.backend.name, false, `scale-down refused: ${message}`).catch(() => {});
        this.refused(view, message);
        const published = await this.deps.publisher.schedule({ urgent: true });
        return { changed: false, snapshot: published.snapshot, error: message };
      }
      this.apply(name, marked || this.deps.state.find(name)?.held ? 'stop_failed' : 'drain_aborted', message);
      // The hold may be in the state but not yet pushed: push whatever the state holds now.
      void this.deps.publisher.schedule().catch(() => {});
      this.deps.log.error('scale-down failed', { host: name, error: message });
      throw err;
    }
  }

  /** Someone else owns the replicas: keep serving, and count it as activity so idle does not retry every check. */
  private refused(view: BackendView, why: string): void {
    for (const v of [view, ...this.siblings(view)]) this.deps.traffic.touch(v.backend.clusterName, this.clock.now());
    const status = this.statuses.get(view.backend.name);
    if (status) Object.assign(status, { lastError: why, lastErrorAt: new Date(this.clock.now()).toISOString() });
    else this.statuses.set(view.backend.name, { ...this.status(view.backend.name)!, lastError: why, lastErrorAt: new Date(this.clock.now()).toISOString() });
    this.deps.log.warn('scale-down refused; the backend keeps serving', { host: view.backend.name, reason: why });
  }

  /** The other scalable backends served by the same workload. */
  private siblings(view: BackendView): BackendView[] {
    const key = this.queueKey(view);
    return this.deps.state.scalable().filter((v) => v.backend.name !== view.backend.name && this.queueKey(v) === key);
  }

  private queueKey(view: BackendView): string {
    const provider = this.deps.providers[view.backend.scaleToZero.workload.kind];
    return provider ? provider.workloadKey(view.backend) : `backend/${view.backend.name}`;
  }

  private async untilReady(provider: BackendProvider, backend: ScalableBackend, died: Promise<string> | undefined): Promise<ReadyEvidence | void> {
    const stop = new AbortController();
    const ready = provider.waitReady(backend, this.clock.now() + backend.scaleToZero.wakeTimeoutMs, stop.signal);
    if (!died) return ready;
    ready.catch(() => {});
    try {
      return await Promise.race([ready, died.then((reason) => Promise.reject(new Error(`${reason} before becoming healthy`)))]);
    } finally {
      stop.abort();
    }
  }

  /**
   * Callers (the admin API, tests, scripts) learn of a change only once every connected Envoy that routes the
   * backend has ACKed or NACKed what the filter and routes see, so "held" means "Envoy holds from now on".
   * That is every group whose snapshot has one of the backend's clusters (its gateways' Envoys and those that
   * take every gateway); Envoys of other gateways are not waited for.
   */
  private async waitApplied(published: Published, ...clusters: (string | undefined)[]): Promise<NotApplied[]> {
    const targets = new Map<string, Partial<Record<'extensionConfig' | 'route', string>>>();
    for (const [group, snapshot] of published.groups) {
      if (!clusters.some((c) => c !== undefined && snapshot.resources.cluster.has(c))) continue;
      targets.set(group, { extensionConfig: snapshot.versions.extensionConfig, route: snapshot.versions.route });
    }
    const result = await this.deps.cache.waitUntilSettled(targets, this.options.applyTimeoutMs);
    if (result.notApplied.length > 0) {
      this.deps.log.warn(result.settled ? 'some Envoys rejected the change' : 'not every Envoy applied the change in time', {
        timeoutMs: this.options.applyTimeoutMs,
        notApplied: result.notApplied.map((n) => ({ node: n.nodeId, stream: n.streamId, type: n.type, reason: n.reason, ...(n.message ? { message: n.message } : {}) })),
      });
    }
    return result.notApplied;
  }

  /** The clients that route any of these clusters, once each (by stream). */
  private routingClients(clusters: readonly string[]): RoutingClient[] {
    const seen = new Map<string, RoutingClient>();
    for (const c of clusters) for (const r of this.deps.routingClients(c)) seen.set(`${r.nodeId}@${r.connectedAt}`, r);
    return [...seen.values()];
  }

  /**
   * With other replicas, their Envoys must hold the backend too before its replicas go (they learn it from the
   * policy's Draining condition and report it applied in their traffic records). Bounded by the drain timeout.
   */
  private async waitHeldEverywhere(backends: readonly string[]): Promise<void> {
    const peers = this.deps.peers;
    if (!peers) return;
    const deadline = this.clock.now() + this.options.drainTimeoutMs;
    let waiting = peers.notHolding(backends, this.clock.now());
    while (waiting.length > 0 && this.clock.now() < deadline && !this.closed) {
      await this.clock.sleep(100);
      waiting = peers.notHolding(backends, this.clock.now());
    }
    if (waiting.length > 0) this.deps.log.warn('scaling down before every replica reported the hold applied', { backends, replicas: waiting });
  }

  /** Requests that passed the filter before the hold finish before the replicas stop. */
  private async waitDrained(clusters: readonly string[], since: number): Promise<void> {
    const deadline = this.clock.now() + this.options.drainTimeoutMs;
    while (this.clock.now() < deadline && !this.closed) {
      const routing = this.routingClients(clusters);
      if (routing.length === 0) return;
      // A client that cannot report load (no LRS stream) cannot tell us about requests in progress either:
      // waiting for it would only ever end at the drain timeout.
      const evidence = this.deps.traffic.idleEvidence(routing, since, this.clock.now(), 3 * this.options.loadReportIntervalMs);
      if (evidence.ok && clusters.every((c) => this.deps.traffic.requestsInProgress(c) === 0)) return;
      await this.clock.sleep(Math.min(100, this.options.loadReportIntervalMs));
    }
  }

  /** Replicas that die while ready: hold new requests again, so the next one wakes the backend. */
  private watchForCrash(name: string, died: Promise<string>): void {
    void died.then((reason) => {
      // A planned stop (scale-down) has moved the phase on already.
      if (this.closed || this.statuses.get(name)?.phase !== 'ready') return;
      this.deps.log.error('backend replicas died while ready; holding its requests until it is woken again', { host: name, reason });
      const view = this.deps.state.find(name);
      if (!view) return;
      void this.enqueue(this.queueKey(view), async () => {
        if (this.statuses.get(name)?.phase !== 'ready') return;
        await this.deps.state.setHeld(name, true, `crashed: ${reason}`);
        await this.deps.publisher.schedule();
        this.apply(name, 'crashed', reason);
      });
    });
  }

  scaleDownIdle(): void {
    if (this.closed) return;
    const peers = this.deps.peers;
    // Once-only: with several replicas, the leader alone decides (every replica may still be asked to scale down).
    if (peers && !peers.isLeader()) return;
    const now = this.clock.now();
    const views = this.deps.state.scalable();
    // Workloads and statuses are looked up from this one list: asking siblings() and status() per backend
    // scanned every backend for each, and a pass over 5,000 ready backends cost tens of millions of steps.
    let byWorkload: Map<string, BackendView[]> | undefined;
    const workloadOf = (key: string): BackendView[] => {
      if (byWorkload === undefined) {
        byWorkload = new Map();
        for (const v of views) {
          const k = this.queueKey(v);
          const members = byWorkload.get(k);
          if (members) members.push(v);
          else byWorkload.set(k, [v]);
        }
      }
      return byWorkload.get(key) ?? [];
    };
    const statusOf = (v: BackendView): ScalingStatus => this.statuses.get(v.backend.name) ?? this.derivedStatus(v);
    for (const view of views) {
      const backend = view.backend;
      if (!this.provider(backend).managesReplicas || backend.scaleToZero.idleAfterMs === 0) continue;
      const status = statusOf(view);
      const key = this.queueKey(view);
      if (status.phase !== 'ready' || this.queues.has(key)) continue;
      const idle = (v: BackendView): boolean => {
        const since = Date.parse(statusOf(v).since);
        const lastActive = Math.max(this.deps.traffic.lastActiveAt(v.backend.clusterName) ?? 0, peers?.lastTrafficAt(v.backend.clusterName) ?? 0, since);
        return v.backend.scaleToZero.idleAfterMs > 0 && now - lastActive >= v.backend.scaleToZero.idleAfterMs;
      };
      // A workload behind several backends goes only when every one of them is idle.
      const group = [view, ...workloadOf(key).filter((v) => v.backend.name !== backend.name)];
      if (!group.every(idle)) {
        this.postponed.clear(backend.name);
        continue;
      }
      // Silence is evidence of idleness only from the clients that route the host and report load.
      const since = now - 3 * this.options.loadReportIntervalMs;
      const local = this.deps.traffic.idleEvidence(this.routingClients(group.map((v) => v.backend.clusterName)), since, now, 3 * this.options.loadReportIntervalMs);
      const shared = peers?.evidence(since, now);
      // No client here could see the host's traffic, but other replicas' Envoys report: theirs decides.
      const evidence = !local.ok && local.noLocalEvidence && shared?.ok && shared.reporters > 0 ? { ok: true as const, cannotReport: [] } : local;
      if (!evidence.ok || (shared && !shared.ok)) {
        const cause = !evidence.ok ? evidence.cause : (shared as { cause: string }).cause;
        if (this.postponed.note(backend.name, cause)) this.deps.log.info('idle scale-down postponed', { host: backend.name, cause });
        continue;
      }
      if (evidence.cannotReport.length > 0 && this.postponed.note(`${backend.name}/cannot-report`, evidence.cannotReport.join(','))) {
        this.deps.log.info('clients that route the host send no load reports; idleness is judged from the others', { host: backend.name, nodes: evidence.cannotReport });
      }
      this.postponed.clear(backend.name);
      void this.scaleToZero(backend.name, `no traffic for ${backend.scaleToZero.idleAfterMs} ms`, 'idle').catch((err: Error) =>
        this.deps.log.error('idle scale-down failed', { host: backend.name, error: err.message }),
      );
    }
  }

  private enqueue<T>(name: string, op: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(name) ?? Promise.resolve();
    const run = previous.catch(() => {}).then(op);
    const settled = run.catch(() => {});
    this.queues.set(name, settled);
    void settled.then(() => {
      if (this.queues.get(name) === settled) this.queues.delete(name);
    });
    return run;
  }

  private view(name: string): BackendView {
    const view = this.deps.state.find(name);
    if (!view) throw new UnknownHostError(name);
    return view;
  }

  private provider(backend: ScalableBackend): BackendProvider {
    const provider = this.deps.providers[backend.scaleToZero.workload.kind];
    if (!provider) throw new Error(`no provider for "${backend.scaleToZero.workload.kind}" backends is running (backend "${backend.name}")`);
    return provider;
  }

  /** The only writer of phases: an event the table does not allow is a bug, logged and ignored. */
  private apply(name: string, event: ScalingEvent, error?: string): void {
    const current = this.status(name)!;
    const t = transition(current.phase, event);
    if (!t.ok) {
      this.deps.log.error('illegal scaling transition ignored', { host: name, reason: t.reason });
      return;
    }
    const now = new Date(this.clock.now()).toISOString();
    if (current.phase === 'failed' && t.next !== 'failed') this.liftFailure(name);
    const next: ScalingStatus = {
      phase: t.next,
      since: t.next === current.phase ? current.since : now,
      wakeCount: current.wakeCount,
      ...(error ? { lastError: error, lastErrorAt: now } : current.lastError ? { lastError: current.lastError, lastErrorAt: current.lastErrorAt! } : {}),
    };
    this.statuses.set(name, next);
    this.deps.observer?.phaseChanged?.(name, next);
  }
}
