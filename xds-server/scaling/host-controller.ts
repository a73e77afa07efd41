// The one place that changes whether a host is scaled to zero. The admin API, the filter's wake calls and
// the idle detector all come here. Operations on one host run one at a time, in order, so a wake that
// races a scale-down simply runs after it (the racing request is held meanwhile, and served after).
import type { Snapshot } from '../../snapshots/build.ts';
import type { HostConfig } from '../../sources/file/config.ts';
import { hostClusterName } from '../../sources/file/to-model.ts';
import { DEFAULT_GROUP, type SnapshotCache } from '../cache/snapshot-cache.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Publisher } from '../publisher.ts';
import { UnknownHostError, type GatewayStore } from '../state/store.ts';
import { probe } from './health.ts';
import type { Scaler } from './scaler.ts';
import type { TrafficMonitor } from './traffic.ts';

export type ScalingPhase = 'scaled_to_zero' | 'waking' | 'ready' | 'draining';
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
  /** Why a wake failed (the host stays scaled to zero; the next request tries again). */
  error?: string;
}

export interface HostController {
  /** Idempotent "at least one replica": resolves once a snapshot releasing the host is in the cache, or with the error. */
  wake(name: string, reason: string, source?: WakeSource): Promise<HostChange>;
  /** Marks the host first (new requests are held), waits for Envoy to apply that, drains, then stops it. */
  scaleToZero(name: string, reason: string): Promise<HostChange>;
  status(name: string): ScalingStatus | undefined;
  close(): Promise<void>;
}

export interface ScalingOptions {
  /** How often a waking host is probed. Small: it bounds the cold-start delay after the backend is ready. */
  probeIntervalMs: number;
  /** How long a scale-down waits for requests in progress to finish before stopping anyway. */
  drainTimeoutMs: number;
  /** How often idle hosts are looked for (0 = never). */
  idleCheckIntervalMs: number;
  /** LRS report period; reports older than 3 periods mean "no data", and then nothing is scaled down. */
  loadReportIntervalMs: number;
}

export const DEFAULT_SCALING_OPTIONS: ScalingOptions = { probeIntervalMs: 2, drainTimeoutMs: 10_000, idleCheckIntervalMs: 1_000, loadReportIntervalMs: 1_000 };

interface Deps {
  store: GatewayStore;
  publisher: Publisher;
  cache: SnapshotCache;
  traffic: TrafficMonitor;
  scalers: Record<HostConfig['scaler']['kind'], Scaler>;
  metrics: Metrics;
  log: Logger;
  /** Node ids of the connected Envoys (ADS). */
  connectedNodes: () => string[];
}

export class ScalingController implements HostController {
  private readonly statuses = new Map<string, ScalingStatus>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly wakes = new Map<string, Promise<HostChange>>();
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly deps: Deps,
    private readonly options: ScalingOptions = DEFAULT_SCALING_OPTIONS,
  ) {
    if (options.idleCheckIntervalMs > 0) {
      this.idleTimer = setInterval(() => this.scaleDownIdleHosts(), options.idleCheckIntervalMs);
      this.idleTimer.unref();
    }
  }

  status(name: string): ScalingStatus | undefined {
    if (!this.deps.store.host(name)) return undefined;
    return this.statuses.get(name) ?? this.setPhase(name, this.deps.store.host(name)!.scaledToZero ? 'scaled_to_zero' : 'ready');
  }

  wake(name: string, reason: string, source: WakeSource = 'admin'): Promise<HostChange> {
    const host = this.config(name);
    if (source === 'filter' && host.scaler.kind === 'manual') {
      // Manual hosts change only through the admin API; the filter's call is noted, not acted on.
      return Promise.resolve({ changed: false });
    }
    const inFlight = this.wakes.get(name);
    if (inFlight) return inFlight;
    const run = this.enqueue(name, () => this.doWake(name, reason)).finally(() => this.wakes.delete(name));
    this.wakes.set(name, run);
    return run;
  }

  scaleToZero(name: string, reason: string): Promise<HostChange> {
    this.config(name);
    return this.enqueue(name, () => this.doScaleToZero(name, reason));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.idleTimer);
  }

  private async doWake(name: string, reason: string): Promise<HostChange> {
    try {
      return await this.wakeSteps(name, reason);
    } catch (err) {
      this.settlePhaseFromStore(name, (err as Error).message);
      throw err;
    }
  }

  private async doScaleToZero(name: string, reason: string): Promise<HostChange> {
    try {
      return await this.scaleDownSteps(name, reason);
    } catch (err) {
      // The mark may be in the store but not yet pushed: push whatever the store holds now.
      this.settlePhaseFromStore(name, (err as Error).message);
      void this.deps.publisher.schedule().catch(() => {});
      throw err;
    }
  }

  /** After a failed operation, the phase says what the store (and so Envoy, once pushed) has. */
  private settlePhaseFromStore(name: string, error: string): void {
    this.setPhase(name, this.deps.store.host(name)?.scaledToZero ? 'scaled_to_zero' : 'ready', error);
    this.deps.log.error('scaling operation failed', { host: name, error });
  }

  private async wakeSteps(name: string, reason: string): Promise<HostChange> {
    const host = this.config(name);
    if (!this.deps.store.host(name)!.scaledToZero) {
      this.setPhase(name, 'ready');
      return { changed: false };
    }
    const scaler = this.deps.scalers[host.scaler.kind];
    this.setPhase(name, 'waking');
    this.statuses.get(name)!.wakeCount += 1;
    this.deps.metrics.inc('stz_wakes_total', { host: name });
    this.deps.log.info('waking host', { host: name, reason, scaler: scaler.kind });
    // Watch for the process dying from its start on: one that passes its health check and dies before the
    // release is ACKed must not leave the host "ready" with nothing behind it.
    let died: Promise<string> | undefined;
    if (scaler.kind !== 'manual') {
      try {
        await scaler.start(host);
        died = scaler.failure(host);
        await this.waitHealthy(host, died);
      } catch (err) {
        const message = (err as Error).message;
        await scaler.stop(host).catch(() => {});
        this.setPhase(name, 'scaled_to_zero', message);
        this.deps.metrics.inc('stz_wake_failures_total', { host: name });
        this.deps.log.error('host did not become ready; held requests get the hold-timeout answer, the next request tries again', { host: name, error: message });
        return { changed: false, error: message };
      }
    }
    // The release goes out while the state file is written (the store's in-memory change is immediate):
    // should the write be lost in a crash, the host is merely held again and the next request wakes it.
    // Endpoints and clusters go out first and are ACKed before the release (see Publisher).
    const [, snapshot] = await Promise.all([this.deps.store.setScaledToZero(name, false, reason), this.deps.publisher.schedule({ urgent: true })]);
    await this.waitApplied(snapshot);
    this.deps.traffic.touch(hostClusterName(name), Date.now());
    this.setPhase(name, 'ready');
    if (died) this.watchForCrash(host, died);
    this.deps.log.info('host ready; held requests released', { host: name });
    return { changed: true, snapshot };
  }

  private async scaleDownSteps(name: string, reason: string): Promise<HostChange> {
    const host = this.config(name);
    if (this.deps.store.host(name)!.scaledToZero && this.status(name)?.phase === 'scaled_to_zero') return { changed: false };
    const scaler = this.deps.scalers[host.scaler.kind];
    this.setPhase(name, 'draining');
    this.deps.log.info('scaling host to zero', { host: name, reason });
    // Mark first: from the moment Envoy applies this, new requests are held (and wake the host again).
    await this.deps.store.setScaledToZero(name, true, reason);
    const snapshot = await this.deps.publisher.schedule();
    // Once every Envoy has applied the mark, new requests are held: only then may the replicas go.
    await this.waitApplied(snapshot);
    if (scaler.kind !== 'manual') {
      await this.waitDrained(name, Date.now());
      await scaler.stop(host);
      this.deps.metrics.inc('stz_scale_downs_total', { host: name });
    }
    this.setPhase(name, 'scaled_to_zero');
    return { changed: true, snapshot };
  }

  /**
   * Callers (the admin API, tests, scripts) learn of a change only once every connected Envoy has ACKed or
   * NACKed what the filter and routes see, so "marked" means "Envoy holds from now on".
   */
  private async waitApplied(snapshot: Snapshot): Promise<void> {
    const settled = await this.deps.cache.waitUntilSettled(
      DEFAULT_GROUP,
      { extensionConfig: snapshot.versions.extensionConfig, route: snapshot.versions.route },
      this.options.drainTimeoutMs,
    );
    if (!settled) this.deps.log.warn('not every Envoy applied the change in time', { timeoutMs: this.options.drainTimeoutMs });
  }

  /** Requests that passed the filter before the mark finish before the process stops. */
  private async waitDrained(name: string, since: number): Promise<void> {
    const deadline = Date.now() + this.options.drainTimeoutMs;
    while (Date.now() < deadline && !this.closed) {
      const nodes = this.deps.connectedNodes();
      if (nodes.length === 0) return;
      if (this.deps.traffic.allReportedSince(nodes, since) && this.deps.traffic.requestsInProgress(hostClusterName(name)) === 0) return;
      await sleep(Math.min(100, this.options.loadReportIntervalMs));
    }
  }

  private async waitHealthy(host: HostConfig, died: Promise<string> | undefined): Promise<void> {
    const deadline = Date.now() + host.wakeTimeoutMs;
    let diedReason: string | undefined;
    void died?.then((r) => (diedReason = r));
    let last = 'no health check answered yet';
    while (!this.closed) {
      if (diedReason) throw new Error(`${diedReason} before becoming healthy (last check: ${last})`);
      for (const endpoint of host.endpoints) {
        const result = await probe(endpoint, host.health);
        if (result.healthy) return;
        last = result.reason;
      }
      if (Date.now() >= deadline) throw new Error(`not healthy within wakeTimeoutMs ${host.wakeTimeoutMs} ms: ${last}`);
      await sleep(this.options.probeIntervalMs);
    }
    throw new Error('the control plane is shutting down');
  }

  /** A process that dies while ready: hold new requests again, so the next one wakes it. */
  private watchForCrash(host: HostConfig, died: Promise<string>): void {
    void died.then((reason) => {
      // A planned stop (scale-down) has moved the phase on already.
      if (this.closed || this.statuses.get(host.name)?.phase !== 'ready') return;
      this.deps.log.error('host process died while ready; holding its requests until it is woken again', { host: host.name, reason });
      void this.enqueue(host.name, async () => {
        await this.deps.store.setScaledToZero(host.name, true, `crashed: ${reason}`);
        await this.deps.publisher.schedule();
        this.setPhase(host.name, 'scaled_to_zero', reason);
      });
    });
  }

  private scaleDownIdleHosts(): void {
    if (this.closed) return;
    const now = Date.now();
    const nodes = this.deps.connectedNodes();
    // Without fresh reports from every connected Envoy, silence is not evidence of idleness.
    if (!this.deps.traffic.allReportedSince(nodes, now - 3 * this.options.loadReportIntervalMs)) return;
    for (const view of this.deps.store.hosts()) {
      const host = view.config;
      if (host.scaler.kind === 'manual' || host.idleAfterMs === 0) continue;
      const status = this.status(host.name);
      if (status?.phase !== 'ready' || this.queues.has(host.name)) continue;
      const lastActive = Math.max(this.deps.traffic.lastActiveAt(hostClusterName(host.name)) ?? 0, Date.parse(status.since));
      if (now - lastActive >= host.idleAfterMs) {
        void this.scaleToZero(host.name, `no traffic for ${host.idleAfterMs} ms`).catch((err: Error) =>
          this.deps.log.error('idle scale-down failed', { host: host.name, error: err.message }),
        );
      }
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

  private config(name: string): HostConfig {
    const view = this.deps.store.host(name);
    if (!view) throw new UnknownHostError(name);
    return view.config;
  }

  private setPhase(name: string, phase: ScalingPhase, error?: string): ScalingStatus {
    const now = new Date().toISOString();
    const previous = this.statuses.get(name);
    const status: ScalingStatus = {
      phase,
      since: previous?.phase === phase ? previous.since : now,
      wakeCount: previous?.wakeCount ?? 0,
      ...(error ? { lastError: error, lastErrorAt: now } : previous?.lastError ? { lastError: previous.lastError, lastErrorAt: previous.lastErrorAt! } : {}),
    };
    this.statuses.set(name, status);
    return status;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
