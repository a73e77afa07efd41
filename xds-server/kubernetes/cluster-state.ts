// Kubernetes mode's BackendState: everything comes from the cluster. Informers keep the Gateway API objects,
// Services, EndpointSlices, Namespaces, Secrets (HTTPS certificates) and our policies; each change re-runs the pure translation
// (sources/kubernetes) into the model. Which backends are held is derived, never stored: a backend with a
// scale-to-zero policy is held while none of its endpoints has answered our readiness check (or while this
// replica is draining it for a scale-down). So any replica of the control plane, and this one after a
// restart, sees the same truth, and nothing is lost in a local file.
import { EventEmitter } from 'node:events';
import type { Endpoint, GatewayModel } from '../../model/gateway-model.ts';
import { internModel } from '../../model/intern.ts';
import type { DesiredState, WakeFailure, WakeTarget } from '../../snapshots/desired-state.ts';
import { filterConfigContent } from '../../snapshots/filter-config.ts';
import { canonicalJson } from '../../snapshots/version.ts';
import type { DesiredCondition } from '../../sources/kubernetes/conditions.ts';
import { translate, type StatusUpdate, type TranslateInput } from '../../sources/kubernetes/translate.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { ScalableBackend } from '../scaling/provider.ts';
import type { GatewayRef } from './address-pool.ts';
import { workloadKey } from './scale.ts';
import type { BackendState, BackendView } from '../state/backend-state.ts';
import { EndpointVerifier } from './endpoint-verifier.ts';
import { DEFAULT_INFORMER_OPTIONS, Informer, type InformerOptions } from './informer.ts';
import type { KubeClient } from './rest.ts';

/** Collection paths of everything the translation reads (the RBAC in deploy/ grants list + watch on exactly these). */
export const WATCHED = {
  gatewayClasses: '/apis/gateway.networking.k8s.io/v1/gatewayclasses',
  gateways: '/apis/gateway.networking.k8s.io/v1/gateways',
  httpRoutes: '/apis/gateway.networking.k8s.io/v1/httproutes',
  grpcRoutes: '/apis/gateway.networking.k8s.io/v1/grpcroutes',
  referenceGrants: '/apis/gateway.networking.k8s.io/v1beta1/referencegrants',
  /** HTTPS Listeners' certificateRefs (sources/kubernetes/certificates.ts). */
  secrets: '/api/v1/secrets',
  services: '/api/v1/services',
  endpointSlices: '/apis/discovery.k8s.io/v1/endpointslices',
  namespaces: '/api/v1/namespaces',
  policies: '/apis/scaletozero.dev/v1alpha1/scaletozeropolicies',
} as const;

export type WatchedKind = keyof typeof WATCHED;

export const DEFAULT_CONTROLLER_NAME = 'scaletozero.dev/gateway-controller';

export interface KubernetesStateOptions {
  controllerName: string;
  filterWasmPath: string;
  wake?: WakeTarget;
  /** The listener address of a Gateway whose spec names none, given every Gateway there is. */
  gatewayAddress: (gateway: GatewayRef, all: readonly GatewayRef[]) => string | undefined;
  informer?: Partial<InformerOptions>;
  verifier?: EndpointVerifier;
  clock?: Clock;
  /** Quiet period that batches a burst of watch events into one translation. */
  batchMs?: number;
}

export type StateEvents = {
  /** The desired state changed; `urgent` when a backend was just released (a cold start is waiting). */
  changed: [urgent: boolean];
  /** A backend's held state flipped by itself: endpoints answered, or all went away. */
  observed: [backend: string, event: 'observed_ready' | 'observed_zero', why: string];
  /** Statuses the objects should have (written by the StatusWriter). */
  statuses: [updates: StatusUpdate[]];
};

export class KubernetesState extends EventEmitter<StateEvents> implements BackendState {
  readonly informers: Record<WatchedKind, Informer>;
  readonly verifier: EndpointVerifier;
  private model: GatewayModel = { listeners: [], backends: [] };
  private scalableViews = new Map<string, BackendView>();
  private held = new Set<string>();
  private readonly wakeFailures = new Map<string, WakeFailure>();
  private readonly draining = new Set<string>();
  private readonly changedAt = new Map<string, string>();
  private generation: number;
  private readonly clock: Clock;
  private timer: NodeJS.Timeout | undefined;
  private timerDelay = 0;
  private started = false;
  private lastFingerprint = '';
  /** Counts model changes: internModel hands back the model in force when a translation changed nothing. */
  private modelRevision = 0;
  private readonly readyWaiters = new Map<string, Set<() => void>>();
  /** Called after every translation (afterStop waits on it). */
  private readonly afterRecompute = new Set<() => void>();
  /** setHeld's own change: not something observed. */
  private selfChange: string | undefined;
  /** Conditions only the runtime can see, by policy "namespace/name" then type. */
  private readonly runtimeConditions = new Map<string, Map<string, DesiredCondition>>();

  constructor(
    client: KubeClient,
    private readonly log: Logger,
    private readonly options: KubernetesStateOptions,
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    // No file to carry it across restarts: start above the clock, as file mode does, so Envoy's filter
    // (which ignores older generations) never sees it go back.
    this.generation = this.clock.now();
    const informerOptions = { ...DEFAULT_INFORMER_OPTIONS, ...options.informer };
    this.informers = Object.fromEntries(
      (Object.entries(WATCHED) as [WatchedKind, string][]).map(([kind, path]) => {
        const informer = new Informer(client, path, log.child(`informer.${kind}`), informerOptions);
        // EndpointSlice changes are what a cold start waits on: translated at the next turn of the event
        // loop rather than after the 5 ms batch (measured: 14.6 -> 12.3 ms p50 slice-ready -> request at the pod).
        informer.on('change', () => this.scheduleRecompute(false, kind === 'endpointSlices' ? 0 : undefined));
        informer.on('retry', (reason, delayMs) => log.warn('list/watch failed; retrying', { resource: path, reason, delayMs }));
        return [kind, informer];
      }),
    ) as Record<WatchedKind, Informer>;
    this.verifier = options.verifier ?? new EndpointVerifier(log.child('verifier'));
    this.verifier.on('verified', () => this.scheduleRecompute(true));
  }

  /** Starts every informer and resolves once each has listed (and the first model is built). */
  async start(syncTimeoutMs = 60_000): Promise<void> {
    for (const informer of Object.values(this.informers)) informer.start();
    const deadline = this.clock.now() + syncTimeoutMs;
    for (const [kind, informer] of Object.entries(this.informers)) {
      const left = deadline - this.clock.now();
      const synced = await Promise.race([informer.waitForSync().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), Math.max(0, left)).unref())]);
      if (!synced) {
        throw new Error(`could not list ${WATCHED[kind as WatchedKind]} within ${syncTimeoutMs} ms: are the Gateway API and ScaleToZeroPolicy CRDs installed (deploy/crds) and does the control plane's RBAC allow list/watch?`);
      }
    }
    this.started = true;
    this.recompute();
  }

  stop(): void {
    this.started = false;
    clearTimeout(this.timer);
    for (const informer of Object.values(this.informers)) informer.stop();
    this.verifier.close();
  }

  // --- BackendState ---------------------------------------------------------------------------------------

  scalable(): BackendView[] {
    return [...this.scalableViews.values()];
  }

  find(name: string): BackendView | undefined {
    return this.scalableViews.get(name);
  }

  /** Held = no answering endpoint, or draining. Only the draining part is ours to set. */
  async setHeld(name: string, held: boolean, reason?: string): Promise<boolean> {
    if (held) this.draining.add(name);
    else this.draining.delete(name);
    const before = this.held.has(name);
    this.selfChange = name;
    try {
      this.recompute(reason);
    } finally {
      this.selfChange = undefined;
    }
    return this.held.has(name) !== before;
  }

  async setWakeFailure(name: string, failure: WakeFailure | undefined): Promise<boolean> {
    const current = this.wakeFailures.get(name);
    if (current?.reason === failure?.reason && current?.retryAfterSeconds === failure?.retryAfterSeconds) return false;
    if (failure) this.wakeFailures.set(name, { ...failure });
    else this.wakeFailures.delete(name);
    this.recompute();
    return true;
  }

  desired(): DesiredState {
    const state: DesiredState = { model: this.model, held: new Set(this.held), generation: this.generation, filterWasmPath: this.options.filterWasmPath };
    if (this.options.wake) state.wake = this.options.wake;
    if (this.wakeFailures.size > 0) state.wakeFailures = new Map(this.wakeFailures);
    return state;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  advanceGeneration(atLeast: number): void {
    if (atLeast > this.generation) this.generation = atLeast;
  }

  /** Resolves once the backend has an endpoint that answered, or rejects at the deadline / on abort. */
  waitForVerified(name: string, deadline: number, signal: AbortSignal): Promise<void> {
    if (this.verifier.verified(name).length > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let waiters = this.readyWaiters.get(name);
      if (!waiters) this.readyWaiters.set(name, (waiters = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        waiters!.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters!.delete(done);
        reject(new Error(`no endpoint answered within the wake timeout: ${this.verifier.describe(name)}`));
      }, Math.max(0, deadline - this.clock.now()));
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        waiters!.delete(done);
        reject(new Error('stopped waiting'));
      });
      waiters.add(done);
    });
  }

  /**
   * After a workload was scaled to 0: resolves once no backend it serves has a verified endpoint left (its
   * pods left the EndpointSlices), or after `timeoutMs`; then those backends are held because they have no
   * endpoint, no longer because they drain (so a scale-up by someone else releases them by itself).
   */
  async afterStop(workload: string, timeoutMs: number): Promise<void> {
    const mine = (): ScalableBackend[] => this.scalable().map((v) => v.backend).filter((b) => b.scaleToZero.workload.kind === 'kubernetes' && workloadKey(b.scaleToZero.workload.target) === workload);
    const gone = (): boolean => mine().every((b) => this.verifier.verified(b.name).length === 0);
    if (!gone()) {
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (!gone()) return;
          clearTimeout(timer);
          this.afterRecompute.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          this.afterRecompute.delete(check);
          this.log.warn('pods of a workload scaled to 0 still listed as ready; a wake may meet them', { workload, waitedMs: timeoutMs });
          resolve();
        }, timeoutMs);
        timer.unref();
        this.afterRecompute.add(check);
      });
    }
    for (const b of mine()) this.draining.delete(b.name);
    this.scheduleRecompute();
  }

  /** Reports on a policy what only the runtime sees (a workload that cannot be scaled, another writer). */
  setPolicyCondition(policy: { namespace: string; name: string }, condition: DesiredCondition): void {
    const key = `${policy.namespace}/${policy.name}`;
    let byType = this.runtimeConditions.get(key);
    if (!byType) this.runtimeConditions.set(key, (byType = new Map()));
    const before = byType.get(condition.type);
    if (before && before.status === condition.status && before.reason === condition.reason && before.message === condition.message) return;
    byType.set(condition.type, condition);
    this.scheduleRecompute();
  }

  /** Translates again even without a change, so a failed status write is retried. */
  resync(): void {
    this.recompute();
  }

  describeEndpoints(name: string): string {
    return this.verifier.describe(name);
  }

  // --- translation ----------------------------------------------------------------------------------------

  private scheduleRecompute(urgent = false, batchMs = this.options.batchMs ?? 5): void {
    if (!this.started) return;
    if (urgent) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.recompute();
      return;
    }
    if (this.timer && this.timerDelay <= batchMs) return;
    clearTimeout(this.timer);
    this.timerDelay = batchMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.recompute();
    }, batchMs);
  }

  private input(): TranslateInput {
    const list = <T>(kind: WatchedKind): T[] => this.informers[kind].list() as unknown as T[];
    const gateways = list<GatewayRef>('gateways');
    return {
      controllerName: this.options.controllerName,
      now: new Date(this.clock.now()).toISOString(),
      gatewayClasses: list('gatewayClasses'),
      gateways: list('gateways'),
      httpRoutes: list('httpRoutes'),
      grpcRoutes: list('grpcRoutes'),
      referenceGrants: list('referenceGrants'),
      secrets: list('secrets'),
      services: list('services'),
      endpointSlices: list('endpointSlices'),
      namespaces: list('namespaces'),
      policies: list('policies'),
      gatewayAddress: (gw) => this.options.gatewayAddress(gw, gateways),
      runtimeConditions: this.runtimeConditionsWithDraining(),
    };
  }

  /** The stored runtime conditions, plus Draining=True on the policy of every backend this replica drains. */
  private runtimeConditionsWithDraining(): Map<string, DesiredCondition[]> {
    const out = new Map([...this.runtimeConditions].map(([k, byType]) => [k, [...byType.values()]]));
    for (const name of [...this.draining].sort()) {
      const by = this.scalableViews.get(name)?.backend.scaleToZero.declaredBy;
      if (!by) continue;
      const key = `${by.namespace}/${by.name}`;
      const list = out.get(key) ?? [];
      if (!list.some((c) => c.type === 'Draining')) list.push({ type: 'Draining', status: true, reason: 'ScaleDownInProgress', message: `scaling ${name} down: new requests are held until it is done` });
      out.set(key, list);
    }
    return out;
  }

  /** Another replica (the leader) drains the backend: its policy's status says Draining=True for our controller. */
  private drainingElsewhere(backend: ScalableBackend): boolean {
    const by = backend.scaleToZero.declaredBy;
    if (!by) return false;
    const policy = this.informers.policies.get(by.namespace, by.name) as { status?: { ancestors?: { controllerName?: string; conditions?: { type: string; status: string }[] }[] } } | undefined;
    return (policy?.status?.ancestors ?? []).some((a) => a.controllerName === this.options.controllerName && (a.conditions ?? []).some((c) => c.type === 'Draining' && c.status === 'True'));
  }

  private recompute(reason?: string): void {
    if (!this.started) return;
    const { model, statuses } = translate(this.input());
    const scalable = model.backends.filter((b): b is ScalableBackend => b.scaleToZero !== undefined);
    this.verifier.retain(new Set(scalable.map((b) => b.name)));
    for (const b of scalable) this.verifier.track(b.name, b.endpoints, b.scaleToZero.health);
    // Envoy gets only the endpoints of a scale-to-zero backend that answered; others as Kubernetes says.
    const backends = model.backends.map((b) => (b.scaleToZero ? { ...b, endpoints: this.verifier.verified(b.name) } : b));
    const nextModel: GatewayModel = internModel(this.model, { listeners: model.listeners, backends });
    const nextHeld = new Set(
      nextModel.backends
        .filter((b): b is ScalableBackend => b.scaleToZero !== undefined)
        .filter((b) => b.endpoints.length === 0 || this.draining.has(b.name) || this.drainingElsewhere(b))
        .map((b) => b.name),
    );
    const before = filterConfigContent(this.desired());
    const previousHeld = this.held;
    if (nextModel !== this.model) this.modelRevision += 1;
    this.model = nextModel;
    this.held = nextHeld;
    const now = new Date(this.clock.now()).toISOString();
    const views = new Map<string, BackendView>();
    let released = false;
    for (const b of nextModel.backends as ScalableBackend[]) {
      if (!b.scaleToZero) continue;
      const isHeld = nextHeld.has(b.name);
      const wasHeld = previousHeld.has(b.name);
      if (!this.changedAt.has(b.name) || isHeld !== wasHeld) this.changedAt.set(b.name, now);
      views.set(b.name, { backend: b, held: isHeld, changedAt: this.changedAt.get(b.name)!, ...(reason ? { reason } : {}) });
      if (isHeld !== wasHeld && this.scalableViews.has(b.name) && this.selfChange !== b.name) {
        released ||= !isHeld;
        const why = isHeld
          ? this.draining.has(b.name)
            ? 'draining for a scale-down'
            : b.endpoints.length > 0
              ? 'another replica drains it for a scale-down'
              : 'no endpoint answers any more'
          : `endpoints answer: ${endpointList(b.endpoints)}`;
        this.emit('observed', b.name, isHeld ? 'observed_zero' : 'observed_ready', why);
      }
      if (b.endpoints.length > 0) this.wakeWaiters(b.name);
    }
    this.scalableViews = views;
    for (const name of this.changedAt.keys()) if (!views.has(name)) this.changedAt.delete(name);
    if (canonicalJson(filterConfigContent(this.desired())) !== canonicalJson(before)) this.generation += 1;
    this.emit('statuses', statuses);
    const fingerprint = JSON.stringify([this.modelRevision, this.generation, [...nextHeld].sort()]);
    if (fingerprint !== this.lastFingerprint) {
      this.lastFingerprint = fingerprint;
      this.emit('changed', released);
    }
    for (const check of [...this.afterRecompute]) check();
  }

  private wakeWaiters(name: string): void {
    for (const done of [...(this.readyWaiters.get(name) ?? [])]) done();
  }
}

function endpointList(endpoints: readonly Endpoint[]): string {
  return endpoints.map((e) => `${e.address}:${e.port}`).join(', ');
}
