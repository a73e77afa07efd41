// One replica at a time takes the decisions that must be taken once (idle scale-down, status writes): the
// one holding a coordination.k8s.io/v1 Lease. The algorithm is client-go's leader election, in our words:
//  - A candidate takes the Lease when nobody holds it, or when its holder has not renewed it for the lease's
//    duration as *we* observed it: the clock starts when we see the record change (its resourceVersion),
//    never at the record's own timestamps, so clock skew between replicas cannot hand out the Lease early.
//  - Every write carries the resourceVersion we read (optimistic concurrency): of two candidates writing
//    the same version, the API server accepts one and answers the other 409.
//  - The leader renews every retry period and steps down when it has not renewed for the renew deadline,
//    which is shorter than the lease duration: a leader cut off from the API server stops acting before
//    anyone else may take the Lease. Each call is bounded by what is left of that deadline.
//  - On shutdown the leader first stops acting, then releases the Lease (no holder, 1 s duration), so a
//    successor does not wait out the duration.
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { KubeApiError, type KubeClient, type KubeObject } from './rest.ts';

export interface LeaseRecord {
  /** '' when nobody holds the Lease (released). */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions: number;
}

export interface StoredLease {
  record: LeaseRecord;
  resourceVersion: string;
}

/** Where the Lease lives; `create` and `update` throw LeaseConflictError when someone else wrote first. */
export interface LeaseStore {
  get(timeoutMs: number): Promise<StoredLease | undefined>;
  create(record: LeaseRecord, timeoutMs: number): Promise<StoredLease>;
  update(record: LeaseRecord, resourceVersion: string, timeoutMs: number): Promise<StoredLease>;
}

export class LeaseConflictError extends Error {}

export interface LeaderElectionTiming {
  /** How long a non-holder waits after the last observed change before it may take the Lease. */
  leaseDurationMs: number;
  /** How long the leader keeps acting without a successful renewal. Must be < leaseDurationMs. */
  renewDeadlineMs: number;
  /** Time between attempts (candidates wait up to 2.2x this, jittered, so they do not move in step). */
  retryPeriodMs: number;
}

/**
 * A dead leader is replaced between ~9 and ~12.2 s after its last renewal (the duration as the others saw it,
 * plus one jittered retry period); client-go's defaults (15 / 10 / 2 s) took 14.5-18.9 s in
 * bench/results/failover.md. The leader renews once a second; a renewal is one small write.
 */
export const DEFAULT_LEADER_ELECTION: LeaderElectionTiming = { leaseDurationMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 1_000 };

export interface LeaderElectorOptions {
  identity: string;
  store: LeaseStore;
  clock: Clock;
  log: Logger;
  timing?: Partial<LeaderElectionTiming>;
  /** Called with true when this replica starts leading, false when it stops (before a release is written). */
  onChange?: (leading: boolean) => void;
  /** [0, 1); injectable so tests are deterministic. */
  random?: () => number;
}

/** A problem in the timing that would let two replicas lead at once, or undefined. */
export function leaderElectionTimingProblem(t: LeaderElectionTiming): string | undefined {
  if (!(t.retryPeriodMs > 0)) return 'the retry period must be > 0';
  if (!(t.renewDeadlineMs > t.retryPeriodMs)) return 'the renew deadline must be longer than the retry period';
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) return 'the lease duration must be longer than the renew deadline';
  if (t.leaseDurationMs % 1000 !== 0) return 'the lease duration must be whole seconds (the Lease stores seconds)';
  return undefined;
}

export class LeaderElector {
  private readonly timing: LeaderElectionTiming;
  private readonly random: () => number;
  private leading = false;
  private lastRenewAt = 0;
  private failing = false;
  /** The last record we saw, and when we saw it change. */
  private observed: (StoredLease & { observedAt: number }) | undefined;

  constructor(private readonly options: LeaderElectorOptions) {
    this.timing = { ...DEFAULT_LEADER_ELECTION, ...options.timing };
    const problem = leaderElectionTimingProblem(this.timing);
    if (problem) throw new Error(`leader election: ${problem}`);
    this.random = options.random ?? Math.random;
  }

  get identity(): string {
    return this.options.identity;
  }

  /** True while this replica may take once-only decisions. */
  isLeader(): boolean {
    return this.leading;
  }

  /** Who holds the Lease as last observed ('' = nobody, undefined = not read yet). */
  observedHolder(): string | undefined {
    return this.observed?.record.holderIdentity;
  }

  /** Campaigns and renews until `signal` aborts; then stops leading and releases the Lease if it held it. */
  async run(signal: AbortSignal): Promise<void> {
    const { clock } = this.options;
    while (!signal.aborted) {
      const budget = this.leading ? this.lastRenewAt + this.timing.renewDeadlineMs - clock.now() : this.timing.renewDeadlineMs;
      const won = budget > 0 && (await this.bounded(this.tryAcquireOrRenew(budget), budget).catch((err: Error) => this.failed(err)));
      if (signal.aborted) break;
      const now = clock.now();
      if (won) {
        this.lastRenewAt = now;
        if (!this.leading) this.setLeading(true, `acquired the Lease (transitions: ${this.observed?.record.leaseTransitions ?? 0})`);
      } else if (this.leading) {
        const holder = this.observed?.record.holderIdentity;
        if (holder !== undefined && holder !== this.identity && holder !== '') this.setLeading(false, `the Lease is now held by ${holder}`);
        else if (now - this.lastRenewAt >= this.timing.renewDeadlineMs) this.setLeading(false, `could not renew the Lease for ${now - this.lastRenewAt} ms`);
      }
      const wait = this.leading
        ? Math.min(this.timing.retryPeriodMs, Math.max(0, this.lastRenewAt + this.timing.renewDeadlineMs - clock.now()))
        : this.timing.retryPeriodMs * (1 + 1.2 * this.random());
      await clock.sleep(wait, signal);
    }
    if (this.leading) {
      this.setLeading(false, 'shutting down');
      await this.release();
    }
  }

  /** One attempt: true when we hold the Lease after it (taken or renewed). Never throws. */
  private async tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const { store, clock, log, identity } = this.options;
    const now = clock.now();
    try {
      const current = await store.get(timeoutMs);
      const fresh: LeaseRecord = {
        holderIdentity: identity,
        leaseDurationSeconds: this.timing.leaseDurationMs / 1000,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: 0,
      };
      if (!current) {
        this.observe(await store.create(fresh, timeoutMs), clock.now());
        return true;
      }
      if (this.observed?.resourceVersion !== current.resourceVersion) this.observe(current, now);
      const record = current.record;
      const mine = record.holderIdentity === identity;
      if (!mine && record.holderIdentity !== '' && this.observed!.observedAt + record.leaseDurationSeconds * 1000 > now) return false;
      const next: LeaseRecord = mine
        ? { ...fresh, acquireTime: record.acquireTime ?? fresh.acquireTime, leaseTransitions: record.leaseTransitions }
        : { ...fresh, leaseTransitions: record.leaseTransitions + 1 };
      this.observe(await store.update(next, current.resourceVersion, timeoutMs), clock.now());
      this.failing = false;
      return true;
    } catch (err) {
      if (err instanceof LeaseConflictError) {
        log.debug('another replica wrote the Lease first', { identity });
        return false;
      }
      return this.failed(err as Error);
    }
  }

  /** Logs the first failure of a streak as a warning (the API server may be away for a while), the rest as debug. */
  private failed(err: Error): false {
    const fields = { identity: this.identity, error: err.message };
    if (this.failing) this.options.log.debug('still cannot reach the leader Lease', fields);
    else this.options.log.warn('cannot read or write the leader Lease; retrying', fields);
    this.failing = true;
    return false;
  }

  private async release(): Promise<void> {
    const { store, clock, log, identity } = this.options;
    const held = this.observed;
    if (!held || held.record.holderIdentity !== identity) return;
    const now = clock.now();
    const released: LeaseRecord = { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: held.record.leaseTransitions };
    try {
      this.observe(await this.bounded(store.update(released, held.resourceVersion, this.timing.retryPeriodMs), this.timing.retryPeriodMs), clock.now());
      log.info('released the leader Lease', { identity });
    } catch (err) {
      // Not fatal: the next leader waits out the lease duration instead.
      log.warn('could not release the leader Lease', { identity, error: (err as Error).message });
    }
  }

  private observe(stored: StoredLease, at: number): void {
    this.observed = { ...stored, observedAt: at };
  }

  private setLeading(leading: boolean, why: string): void {
    this.leading = leading;
    this.options.log.info(leading ? 'leading: this replica takes the once-only decisions' : 'stopped leading', { identity: this.identity, why });
    this.options.onChange?.(leading);
  }

  /** The promise, or a rejection once `ms` have passed on our clock (a hung call must not outlive the deadline). */
  private async bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
    const stop = new AbortController();
    const timeout = this.options.clock.sleep(ms, stop.signal).then(() => {
      if (!stop.signal.aborted) throw new Error(`no answer within ${ms} ms`);
      return undefined as never;
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      stop.abort();
    }
  }
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** What KubernetesLeaseStore does with Leases (deploy/rbac.yaml grants exactly this, in one namespace). */
export const LEASE_VERBS = ['get', 'create', 'update'] as const;

/** The Lease as a coordination.k8s.io/v1 object in one namespace. */
export class KubernetesLeaseStore implements LeaseStore {
  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly name: string,
  ) {}

  private get collection(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`;
  }

  async get(timeoutMs: number): Promise<StoredLease | undefined> {
    try {
      return toStored(await this.client.get(`${this.collection}/${encodeURIComponent(this.name)}`, { timeoutMs }));
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord, timeoutMs: number): Promise<StoredLease> {
    const body = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace }, spec: record };
    return toStored(await conflictAware(this.client.request('POST', this.collection, body, undefined, { timeoutMs })));
  }

  async update(record: LeaseRecord, resourceVersion: string, timeoutMs: number): Promise<StoredLease> {
    const body = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace, resourceVersion }, spec: record };
    return toStored(await conflictAware(this.client.request('PUT', `${this.collection}/${encodeURIComponent(this.name)}`, body, undefined, { timeoutMs })));
  }
}

async function conflictAware(call: Promise<KubeObject>): Promise<KubeObject> {
  try {
    return await call;
  } catch (err) {
    // 409: someone wrote since our read (update) or created it first (create).
    if (err instanceof KubeApiError && err.status === 409) throw new LeaseConflictError(err.message);
    throw err;
  }
}

function toStored(object: KubeObject): StoredLease {
  const spec = (object.spec ?? {}) as Partial<LeaseRecord>;
  return {
    resourceVersion: object.metadata.resourceVersion ?? '',
    record: {
      holderIdentity: spec.holderIdentity ?? '',
      leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
      ...(spec.acquireTime ? { acquireTime: spec.acquireTime } : {}),
      ...(spec.renewTime ? { renewTime: spec.renewTime } : {}),
      leaseTransitions: spec.leaseTransitions ?? 0,
    },
  };
}
