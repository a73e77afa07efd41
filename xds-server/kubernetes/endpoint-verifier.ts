// Kubernetes marks a pod Ready by its own probe, on its own schedule; a process that is Ready but not yet
// listening would make released requests fail. So an endpoint of a scale-to-zero backend reaches Envoy only
// once it has answered our own readiness check (TCP connect by default, or the policy's HTTP / gRPC check),
// as Knative's activator does. Checks start fast (a cold start waits on them) and back off for an endpoint
// that keeps refusing; an endpoint that leaves its EndpointSlice is forgotten.
import { EventEmitter } from 'node:events';
import type { Endpoint, HealthCheck } from '../../model/gateway-model.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { probe, type ProbeResult } from '../scaling/health.ts';

export interface VerifierOptions {
  firstIntervalMs: number;
  maxIntervalMs: number;
  clock?: Clock;
  probe?: (endpoint: Endpoint, check: HealthCheck) => Promise<ProbeResult>;
}

export const DEFAULT_VERIFIER_OPTIONS: VerifierOptions = { firstIntervalMs: 2, maxIntervalMs: 1_000 };

const keyOf = (e: Endpoint): string => `${e.address}:${e.port}`;

interface Tracked {
  endpoint: Endpoint;
  check: HealthCheck;
  verified: boolean;
  lastError?: string;
  /** Set false to end its probe loop. */
  active: boolean;
}

export class EndpointVerifier extends EventEmitter<{ verified: [backend: string, endpoint: Endpoint] }> {
  private readonly byBackend = new Map<string, Map<string, Tracked>>();
  private readonly clock: Clock;
  private readonly check: (endpoint: Endpoint, check: HealthCheck) => Promise<ProbeResult>;
  private closed = false;

  constructor(
    private readonly log: Logger,
    private readonly options: VerifierOptions = DEFAULT_VERIFIER_OPTIONS,
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    this.check = options.probe ?? probe;
  }

  /** The endpoints Kubernetes calls ready for a backend now; starts checking new ones, forgets gone ones. */
  track(backend: string, endpoints: readonly Endpoint[], check: HealthCheck): void {
    let tracked = this.byBackend.get(backend);
    if (!tracked) this.byBackend.set(backend, (tracked = new Map()));
    const wanted = new Set(endpoints.map(keyOf));
    for (const [key, t] of tracked) {
      if (!wanted.has(key)) {
        t.active = false;
        tracked.delete(key);
      }
    }
    for (const endpoint of endpoints) {
      const key = keyOf(endpoint);
      if (tracked.has(key)) continue;
      const t: Tracked = { endpoint, check, verified: false, active: true };
      tracked.set(key, t);
      void this.verify(backend, t);
    }
  }

  /** Stops tracking backends that no longer exist (or lost their policy). */
  retain(backends: ReadonlySet<string>): void {
    for (const [name, tracked] of this.byBackend) {
      if (backends.has(name)) continue;
      for (const t of tracked.values()) t.active = false;
      this.byBackend.delete(name);
    }
  }

  verified(backend: string): Endpoint[] {
    return [...(this.byBackend.get(backend)?.values() ?? [])].filter((t) => t.verified).map((t) => t.endpoint);
  }

  /** For error messages: what the checks of a backend's endpoints last said. */
  describe(backend: string): string {
    const tracked = [...(this.byBackend.get(backend)?.values() ?? [])];
    if (tracked.length === 0) return 'no EndpointSlice lists a ready endpoint';
    return tracked.map((t) => `${keyOf(t.endpoint)} ${t.verified ? 'answers' : `not answering (${t.lastError ?? 'not checked yet'})`}`).join('; ');
  }

  close(): void {
    this.closed = true;
    for (const tracked of this.byBackend.values()) for (const t of tracked.values()) t.active = false;
    this.byBackend.clear();
  }

  private async verify(backend: string, t: Tracked): Promise<void> {
    let interval = this.options.firstIntervalMs;
    let attempts = 0;
    while (t.active && !this.closed) {
      const result = await this.check(t.endpoint, t.check);
      attempts += 1;
      if (!t.active || this.closed) return;
      if (result.healthy) {
        t.verified = true;
        t.lastError = undefined;
        this.log.debug('endpoint answers', { backend, endpoint: keyOf(t.endpoint), attempts });
        this.emit('verified', backend, t.endpoint);
        return;
      }
      t.lastError = result.reason;
      await this.clock.sleep(interval);
      // Fast for the first ~50 ms of a cold start, then slower for an endpoint that keeps refusing.
      if (attempts > 25) interval = Math.min(this.options.maxIntervalMs, interval * 2);
    }
  }
}
