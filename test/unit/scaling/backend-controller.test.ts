// The backend controller driven by a fake provider, a fake state, a fake publisher and a fake clock: every
// path through the state machine without a process, a network or a real second passing.
import type { ScalingObserver } from '../../../xds-server/scaling/observer.ts';
import { expect } from 'chai';
import type { Snapshot } from '../../../snapshots/build.ts';
import type { DesiredState, WakeFailure } from '../../../snapshots/desired-state.ts';
import { createLogger } from '../../../xds-server/log.ts';
import type { Published } from '../../../xds-server/publisher.ts';
import { BackendController, type BackendControllerDeps, type PeerReplicas } from '../../../xds-server/scaling/backend-controller.ts';
import { ManualProvider, StopRefusedError, type BackendProvider, type ScalableBackend } from '../../../xds-server/scaling/provider.ts';
import { UnknownHostError, type BackendState, type BackendView } from '../../../xds-server/state/backend-state.ts';
import { TrafficMonitor } from '../../../xds-server/scaling/traffic.ts';
import { FakeClock, settle } from '../../support/fake-clock.ts';

function backend(name: string, kind: 'process' | 'manual' = 'process', idleAfterMs = 60_000, workload = name): ScalableBackend {
  return {
    name,
    clusterName: `c_${name}`,
    protocol: 'http1',
    endpoints: [{ address: '127.0.0.1', port: 1 }],
    scaleToZero: {
      buffer: { holdTimeoutMs: 30_000, maxHeld: 10, retryAfterSeconds: 1 },
      exclusiveDomains: [`${name}.test`],
      workload: kind === 'process' ? { kind: 'process', command: ['true'], env: { WORKLOAD: workload } } : { kind: 'manual' },
      health: { kind: 'tcp', timeoutMs: 100 },
      wakeTimeoutMs: 5_000,
      idleAfterMs,
    },
  };
}

class FakeState implements BackendState {
  readonly held = new Map<string, boolean>();
  readonly log: string[] = [];
  constructor(readonly backends: ScalableBackend[]) {
    for (const b of backends) this.held.set(b.name, true);
  }
  /** How many times a backend was looked up by name (a scan of every backend in a real store). */
  lookups = 0;
  scalable(): BackendView[] {
    return this.backends.map((b) => this.view(b));
  }
  find(name: string): BackendView | undefined {
    this.lookups += 1;
    const backend = this.backends.find((b) => b.name === name);
    return backend ? this.view(backend) : undefined;
  }
  private view(backend: ScalableBackend): BackendView {
    return { backend, held: this.held.get(backend.name)!, changedAt: '2026-11-30T11:00:00.000Z' };
  }
  async setHeld(name: string, held: boolean): Promise<boolean> {
    if (!this.find(name)) throw new UnknownHostError(name);
    if (this.held.get(name) === held) return false;
    this.held.set(name, held);
    this.log.push(`${held ? 'hold' : 'release'} ${name}`);
    return true;
  }
  readonly failures = new Map<string, WakeFailure>();
  async setWakeFailure(name: string, failure: WakeFailure | undefined): Promise<boolean> {
    if (!this.find(name)) throw new UnknownHostError(name);
    if (JSON.stringify(this.failures.get(name)) === JSON.stringify(failure)) return false;
    if (failure) this.failures.set(name, failure);
    else this.failures.delete(name);
    this.log.push(failure ? `fail ${name}: ${failure.reason} (${failure.retryAfterSeconds} s)` : `lift ${name}`);
    return true;
  }
  desired(): DesiredState {
    throw new Error('not used');
  }
  currentGeneration = 1;
  advanceGeneration(atLeast: number): void {
    this.currentGeneration = Math.max(this.currentGeneration, atLeast);
  }
}

/** A provider whose readiness the test decides: ready() resolves the pending waitReady, fail() rejects it. */
class FakeProvider implements BackendProvider {
  readonly kind = 'process';
  readonly managesReplicas = true;
  stopsFailedWakes = true;
  refusal: string | undefined;
  keyCalls = 0;
  workloadKey(b: ScalableBackend): string {
    this.keyCalls += 1;
    const w = b.scaleToZero.workload;
    return w.kind === 'process' ? `w/${w.env?.WORKLOAD}` : `m/${b.name}`;
  }
  async stopRefusal(): Promise<string | undefined> {
    return this.refusal;
  }
  readonly calls: string[] = [];
  private pending = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private deaths = new Map<string, (reason: string) => void>();
  private failures = new Map<string, Promise<string>>();
  constructor(private readonly log: string[]) {}
  async wake(b: ScalableBackend): Promise<void> {
    this.calls.push(`wake ${b.name}`);
    this.log.push(`wake ${b.name}`);
    this.failures.set(b.name, new Promise((resolve) => this.deaths.set(b.name, resolve)));
  }
  waitReady(b: ScalableBackend, _deadline: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.set(b.name, { resolve, reject });
      signal.addEventListener('abort', () => reject(new Error('aborted')));
    });
  }
  async stop(b: ScalableBackend): Promise<void> {
    this.calls.push(`stop ${b.name}`);
    this.log.push(`stop ${b.name}`);
  }
  failure(b: ScalableBackend): Promise<string> | undefined {
    return this.failures.get(b.name);
  }
  async close(): Promise<void> {}
  ready(name: string): void {
    this.pending.get(name)!.resolve();
  }
  fail(name: string, why: string): void {
    this.pending.get(name)!.reject(new Error(why));
  }
  die(name: string, why: string): void {
    this.deaths.get(name)!(why);
  }
}

const groupSnapshot = (n: number | string, clusters: string[]): Snapshot => ({
  resources: { cluster: new Map(clusters.map((c) => [c, { name: c }])), endpoint: new Map(), listener: new Map(), route: new Map(), extensionConfig: new Map() },
  versions: { cluster: `${n}`, endpoint: `${n}`, listener: `${n}`, route: `${n}`, extensionConfig: `${n}` },
});
/** A publish whose only group (Envoys naming no gateway) routes every test backend. */
const snapshot = (n: number): Published => {
  const s = groupSnapshot(n, ['c_web', 'c_api', 'c_a', 'c_b', 'c_other']);
  return { snapshot: s, groups: new Map([['default', s]]) };
};

function setup(backends: ScalableBackend[], overrides: Partial<BackendControllerDeps> = {}) {
  const clock = new FakeClock();
  const state = new FakeState(backends);
  const provider = new FakeProvider(state.log);
  const published: { urgent: boolean }[] = [];
  const traffic = { inProgress: 0, activeAt: new Map<string, number>(), reportedSince: true };
  const metrics: string[] = [];
  const errors: string[] = [];
  const deps: BackendControllerDeps = {
    state,
    publisher: {
      schedule: async (o: { urgent?: boolean } = {}) => {
        published.push({ urgent: o.urgent === true });
        state.log.push('publish');
        return snapshot(published.length);
      },
    },
    cache: { waitUntilSettled: async () => ({ settled: true, notApplied: [] }) },
    traffic: {
      touch: (cluster: string, now: number) => void traffic.activeAt.set(cluster, now),
      lastActiveAt: (cluster: string) => traffic.activeAt.get(cluster),
      requestsInProgress: () => traffic.inProgress,
      idleEvidence: () => (traffic.reportedSince ? { ok: true, cannotReport: [] } : { ok: false, cause: 'no recent load report' }),
    },
    providers: { process: provider, manual: new ManualProvider() },
    metrics: { inc: (name: string) => void metrics.push(name) },
    log: createLogger({ write: (line) => (line.includes('"level":"error"') ? errors.push(line) : undefined) }),
    routingClients: () => [{ nodeId: 'envoy-1', connectedAt: 0 }],
    clock,
    ...overrides,
  };
  const controller = new BackendController(deps, { drainTimeoutMs: 1_000, applyTimeoutMs: 1_000, idleCheckIntervalMs: 0, loadReportIntervalMs: 100 });
  return { controller, clock, state, provider, published, traffic, metrics, errors };
}

describe('BackendController (fake provider, fake clock)', () => {
  it('wakes a held backend: provider wake, ready, release published urgently, phase ready', async () => {
    const t = setup([backend('web')]);
    expect(t.controller.status('web')!.phase).to.equal('scaled_to_zero');
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    expect(t.controller.status('web')!.phase).to.equal('waking');
    expect(t.state.held.get('web')).to.equal(true);
    t.provider.ready('web');
    const change = await wake;
    expect(change.changed).to.equal(true);
    expect(t.state.log).to.deep.equal(['wake web', 'release web', 'publish']);
    expect(t.published).to.deep.equal([{ urgent: true }]);
    expect(t.controller.status('web')).to.include({ phase: 'ready', wakeCount: 1 });
    expect(t.metrics).to.deep.equal(['stz_wakes_total']);
  });

  it('waits for the release in every group that routes the backend, and in no other', async () => {
    const waited: string[][] = [];
    const t = setup([backend('web')], {
      publisher: {
        schedule: async () => {
          const all = groupSnapshot('all', ['c_web', 'c_api']);
          return { snapshot: all, groups: new Map([['default', all], ['gateway/ns/a', groupSnapshot('a', ['c_web'])], ['gateway/ns/b', groupSnapshot('b', ['c_api'])]]) };
        },
      },
      cache: {
        waitUntilSettled: (async (targets: ReadonlyMap<string, Record<string, string>>) => {
          waited.push([...targets].map(([g, v]) => `${g}:${v.route}/${v.extensionConfig}`));
          return { settled: true, notApplied: [] };
        }) as unknown as BackendControllerDeps['cache']['waitUntilSettled'],
      },
    });
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.ready('web');
    await wake;
    expect(waited).to.deep.equal([['default:all/all', 'gateway/ns/a:a/a']]);
  });

  it('runs one wake for many concurrent callers', async () => {
    const t = setup([backend('web')]);
    const wakes = Array.from({ length: 20 }, () => t.controller.wake('web', 'test', 'filter'));
    await settle();
    t.provider.ready('web');
    const results = await Promise.all(wakes);
    expect(new Set(results).size).to.equal(1);
    expect(t.provider.calls).to.deep.equal(['wake web']);
  });

  it('records a failed wake, stops what it started, leaves the backend held and pushes the failure to the filter', async () => {
    const t = setup([backend('web')]);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.fail('web', 'not healthy within wakeTimeoutMs 5000 ms: refused');
    const change = await wake;
    expect(change).to.deep.equal({ changed: false, error: 'not healthy within wakeTimeoutMs 5000 ms: refused' });
    expect(t.provider.calls).to.deep.equal(['wake web', 'stop web']);
    expect(t.state.held.get('web')).to.equal(true);
    // The failure goes out urgently (held requests wait on it), with the backoff (default 10 s) as retry-after.
    expect(t.state.log).to.deep.equal(['wake web', 'stop web', 'fail web: not healthy within wakeTimeoutMs 5000 ms: refused (10 s)', 'publish']);
    expect(t.published).to.deep.equal([{ urgent: true }]);
    expect(t.controller.status('web')).to.include({ phase: 'failed', lastError: 'not healthy within wakeTimeoutMs 5000 ms: refused' });
    expect(t.metrics).to.include('stz_wake_failures_total');
  });

  it('refuses the filter\'s wake calls during the backoff, then lifts the failure and wakes on the next request', async () => {
    const b = backend('web');
    b.scaleToZero.wakeFailureBackoffMs = 2_000;
    const t = setup([b]);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.fail('web', 'boom');
    await wake;
    expect(t.state.failures.get('web')).to.deep.equal({ reason: 'boom', retryAfterSeconds: 2 });
    await t.clock.advance(1_000);
    const early = await t.controller.wake('web', 'stale worker', 'filter');
    expect(early.changed).to.equal(false);
    expect(early.error).to.match(/^the last wake failed \(boom\); the next one is tried after /);
    expect(t.provider.calls).to.deep.equal(['wake web', 'stop web']);
    await t.clock.advance(1_100);
    expect(t.controller.status('web')!.phase).to.equal('scaled_to_zero');
    expect(t.state.failures.has('web')).to.equal(false);
    expect(t.state.log.slice(-2)).to.deep.equal(['lift web', 'publish']);
    // The next request tries again.
    const again = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.ready('web');
    expect((await again).changed).to.equal(true);
    expect(t.controller.status('web')).to.include({ phase: 'ready', wakeCount: 2 });
  });

  it('lets an admin wake retry at once during the backoff, lifting the failure first so new requests are held', async () => {
    const t = setup([backend('web')]);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.fail('web', 'boom');
    await wake;
    const again = t.controller.wake('web', 'operator', 'admin');
    await settle();
    expect(t.controller.status('web')!.phase).to.equal('waking');
    expect(t.state.failures.has('web')).to.equal(false);
    t.provider.ready('web');
    expect((await again).changed).to.equal(true);
    // The old backoff's timer must not touch the ready backend.
    await t.clock.advance(11_000, 1_000);
    expect(t.controller.status('web')!.phase).to.equal('ready');
  });

  it('a failed backend that gets endpoints from elsewhere is ready, and its failure is lifted', async () => {
    const t = setup([backend('web')]);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.fail('web', 'boom');
    await wake;
    t.state.held.set('web', false);
    t.controller.observe('web', 'observed_ready', 'a user scaled it up');
    await settle();
    expect(t.controller.status('web')!.phase).to.equal('ready');
    expect(t.state.failures.has('web')).to.equal(false);
  });

  it('keeps a failed backend failed (and held) when asked to scale it to zero', async () => {
    const t = setup([backend('web')]);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.fail('web', 'boom');
    await wake;
    expect((await t.controller.scaleToZero('web', 'admin')).changed).to.equal(false);
    expect(t.controller.status('web')!.phase).to.equal('failed');
    expect(t.state.failures.has('web')).to.equal(true);
  });

  it('ends the backoff only once Envoy applied the lifted failure, so "scaled_to_zero" means held again', async () => {
    let settle_: (r: { settled: boolean; notApplied: [] }) => void = () => {};
    const b = backend('web');
    b.scaleToZero.wakeFailureBackoffMs = 1_000;
    const t = setup([b], { cache: { waitUntilSettled: () => new Promise((r) => (settle_ = r)) } });
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.fail('web', 'boom');
    await wake;
    await t.clock.advance(1_100);
    expect(t.state.failures.has('web')).to.equal(false);
    expect(t.published.at(-1)).to.deep.equal({ urgent: true });
    expect(t.controller.status('web')!.phase).to.equal('failed');
    settle_({ settled: true, notApplied: [] });
    await settle();
    expect(t.controller.status('web')!.phase).to.equal('scaled_to_zero');
  });

  it('ends the backoff quietly when the backend was removed from the config meanwhile', async () => {
    const t = setup([backend('web')]);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.fail('web', 'boom');
    await wake;
    t.state.backends.splice(0, 1);
    await t.clock.advance(11_000, 1_000);
    expect(t.errors.filter((e) => !e.includes('did not become ready'))).to.deep.equal([]);
    expect(t.clock.pendingSleepers).to.equal(0);
  });

  it('makes a long or multi-line reason a short one-line one for the filter, keeping the full one in the status', async () => {
    const t = setup([backend('web')]);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    const long = `line one\nline two ${'x'.repeat(300)}`;
    t.provider.fail('web', long);
    await wake;
    const reason = t.state.failures.get('web')!.reason;
    expect(reason).to.have.length(200);
    expect(reason).to.match(/^line one line two x+\.\.\.$/);
    expect(t.controller.status('web')!.lastError).to.equal(long);
  });

  it('gives up at once when the replicas die before they are ready, and pushes that reason', async () => {
    const t = setup([backend('web')]);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.die('web', 'the process exited (code 3)');
    const change = await wake;
    expect(change.error).to.equal('the process exited (code 3) before becoming healthy');
    expect(t.controller.status('web')!.phase).to.equal('failed');
    expect(t.state.failures.get('web')!.reason).to.equal('the process exited (code 3) before becoming healthy');
  });

  it('holds the backend again when its replicas die while ready', async () => {
    const t = setup([backend('web')]);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.ready('web');
    await wake;
    t.provider.die('web', 'the process exited (signal SIGKILL)');
    await settle();
    expect(t.state.held.get('web')).to.equal(true);
    expect(t.controller.status('web')).to.include({ phase: 'scaled_to_zero', lastError: 'the process exited (signal SIGKILL)' });
  });

  it('scales down in order: hold, publish, drain until nothing is in progress, then stop', async () => {
    const t = setup([backend('web')]);
    t.state.held.set('web', false);
    t.traffic.inProgress = 2;
    const down = t.controller.scaleToZero('web', 'admin');
    await settle();
    expect(t.controller.status('web')!.phase).to.equal('draining');
    expect(t.state.log).to.deep.equal(['hold web', 'publish']);
    await t.clock.advance(300);
    expect(t.provider.calls, 'not stopped while requests are in progress').to.deep.equal([]);
    t.traffic.inProgress = 0;
    await t.clock.advance(200);
    await down;
    expect(t.state.log).to.deep.equal(['hold web', 'publish', 'stop web']);
    expect(t.controller.status('web')!.phase).to.equal('scaled_to_zero');
  });

  it('stops anyway once the drain timeout passes', async () => {
    const t = setup([backend('web')]);
    t.state.held.set('web', false);
    t.traffic.inProgress = 1;
    const down = t.controller.scaleToZero('web', 'admin');
    await t.clock.advance(900);
    expect(t.provider.calls).to.deep.equal([]);
    await t.clock.advance(200);
    await down;
    expect(t.provider.calls).to.deep.equal(['stop web']);
  });

  it('runs a wake that races a scale-down after it, never during it', async () => {
    const t = setup([backend('web')]);
    t.state.held.set('web', false);
    t.traffic.inProgress = 1;
    const down = t.controller.scaleToZero('web', 'idle');
    await settle();
    const wake = t.controller.wake('web', 'a request raced the scale-down', 'filter');
    await t.clock.advance(100);
    t.traffic.inProgress = 0;
    await t.clock.advance(200);
    await down;
    await settle();
    t.provider.ready('web');
    await wake;
    expect(t.state.log).to.deep.equal(['hold web', 'publish', 'stop web', 'wake web', 'release web', 'publish']);
    expect(t.controller.status('web')!.phase).to.equal('ready');
  });

  it('scales down a backend idle for idleAfterMs, and not one with recent traffic', async () => {
    const t = setup([backend('idle', 'process', 1_000), backend('busy', 'process', 1_000)]);
    t.state.held.set('idle', false);
    t.state.held.set('busy', false);
    t.controller.observe('idle', 'observed_ready', 'test');
    t.controller.observe('busy', 'observed_ready', 'test');
    await settle();
    await t.clock.advance(2_000, 500);
    t.traffic.activeAt.set('c_busy', t.clock.now() - 10);
    t.controller.scaleDownIdle();
    await t.clock.advance(300);
    expect(t.provider.calls).to.deep.equal(['stop idle']);
    expect(t.controller.status('busy')!.phase).to.equal('ready');
  });

  it('looks at each backend a bounded number of times per idle pass, however many there are', async () => {
    // A pass once asked for every backend's siblings and status by scanning all backends: quadratic, and at
    // 5,000 ready backends tens of millions of steps every idle check.
    const n = 400;
    const t = setup(Array.from({ length: n }, (_, i) => backend(`b${i}`, 'process', 1_000, i % 2 === 0 ? `w${i}` : `w${i - 1}`)));
    for (let i = 0; i < n; i++) {
      t.state.held.set(`b${i}`, false);
      t.controller.observe(`b${i}`, 'observed_ready', 'test');
    }
    await settle();
    await t.clock.advance(2_000, 500);
    // One backend of each pair is busy, so no workload is idle as a whole.
    for (let i = 1; i < n; i += 2) t.traffic.activeAt.set(`c_b${i}`, t.clock.now() - 10);
    t.provider.keyCalls = 0;
    t.state.lookups = 0;
    t.controller.scaleDownIdle();
    await t.clock.advance(300);
    expect(t.provider.calls, 'every workload has a busy backend').to.deep.equal([]);
    expect(t.provider.keyCalls).to.be.at.most(3 * n);
    expect(t.state.lookups).to.be.at.most(n);
    // The pairing still decides: with the busy half quiet too, every workload goes, once each.
    for (let i = 1; i < n; i += 2) t.traffic.activeAt.delete(`c_b${i}`);
    t.controller.scaleDownIdle();
    await t.clock.advance(2_000, 500);
    expect(t.provider.calls.filter((c) => c.startsWith('stop ')).length).to.equal(n / 2);
  });

  it('takes no silence for idleness while an Envoy has not reported', async () => {
    const t = setup([backend('idle', 'process', 1_000)]);
    t.state.held.set('idle', false);
    t.controller.observe('idle', 'observed_ready', 'test');
    await t.clock.advance(5_000, 1_000);
    t.traffic.reportedSince = false;
    t.controller.scaleDownIdle();
    await t.clock.advance(500);
    expect(t.provider.calls).to.deep.equal([]);
  });

  // A connected ADS client that sends no load reports (a proxyless gRPC client, a second tool) used to switch
  // off idle scale-down for every host; now it does not veto, and why a scale-down waits is logged once.
  it('scales an idle backend down though a routing client sends no load reports, logging the wait once', async () => {
    const lines: string[] = [];
    const monitor = new TrafficMonitor();
    const clock = new FakeClock();
    // The tool connects 900 ms in; it may still open an LRS stream within 3 report intervals (300 ms).
    const toolConnectedAt = clock.now() + 900;
    const t = setup([backend('idle', 'process', 1_000)], {
      clock,
      traffic: monitor,
      routingClients: () => [{ nodeId: 'envoy', connectedAt: clock.now() - 60_000 }, ...(clock.now() >= toolConnectedAt ? [{ nodeId: 'tool', connectedAt: toolConnectedAt }] : [])],
      log: createLogger({ write: (line) => void lines.push(line) }),
    });
    t.state.held.set('idle', false);
    monitor.touch('c_idle', clock.now());
    // The Envoy reports every 100 ms and the idle check runs as often; the tool never reports.
    const tick = async (): Promise<void> => {
      await clock.advance(100, 100);
      monitor.record({ nodeId: 'envoy', reporter: 'envoy#1', at: clock.now(), clusters: [] });
      t.controller.scaleDownIdle();
    };
    for (let i = 0; i < 11; i++) await tick();
    // 1.1 s: idle for 1 s, but the tool connected 200 ms ago: wait for it, and say why, once.
    expect(t.provider.calls).to.deep.equal([]);
    for (let i = 0; i < 6; i++) await tick();
    expect(t.provider.calls).to.deep.equal(['stop idle']);
    const postponed = lines.filter((l) => l.includes('idle scale-down postponed'));
    expect(postponed).to.have.length(1);
    expect(postponed[0]).to.include('waiting for the first load report of node');
    expect(lines.filter((l) => l.includes('send no load reports'))).to.have.length(1);
  });

  it('logs a postponed idle scale-down once per cause', async () => {
    const lines: string[] = [];
    const monitor = new TrafficMonitor();
    const clock = new FakeClock();
    const t = setup([backend('idle', 'process', 1_000)], {
      clock,
      traffic: monitor,
      routingClients: () => [{ nodeId: 'envoy', connectedAt: clock.now() - 60_000 }],
      log: createLogger({ write: (line) => void lines.push(line) }),
    });
    t.state.held.set('idle', false);
    monitor.openReporter('envoy#1', 'envoy');
    await clock.advance(2_000, 500);
    for (let i = 0; i < 5; i++) t.controller.scaleDownIdle();
    expect(t.provider.calls).to.deep.equal([]);
    const postponed = lines.filter((l) => l.includes('idle scale-down postponed'));
    expect(postponed).to.have.length(1);
    expect(postponed[0]).to.include('no recent load report from node \\"envoy\\"');
  });

  describe('with other replicas (Kubernetes mode, leader election)', () => {
    /** A leader-or-not replica whose peers' Envoys report through `peer`. */
    function replicated(leader: boolean, overrides: Partial<BackendControllerDeps> = {}) {
      const peer = { leader, lastTraffic: new Map<string, number>(), evidence: { ok: true, reporters: 1 } as ReturnType<PeerReplicas['evidence']>, notHolding: [] as string[] };
      const lines: string[] = [];
      const t = setup([backend('idle', 'process', 1_000)], {
        peers: { isLeader: () => peer.leader, lastTrafficAt: (c) => peer.lastTraffic.get(c), evidence: () => peer.evidence, notHolding: () => peer.notHolding },
        log: createLogger({ write: (line) => void lines.push(line) }),
        ...overrides,
      });
      t.state.held.set('idle', false);
      t.controller.observe('idle', 'observed_ready', 'test');
      return { t, peer, lines };
    }

    it('leaves idle scale-downs to the leader', async () => {
      const { t, peer } = replicated(false);
      await t.clock.advance(2_000, 500);
      t.controller.scaleDownIdle();
      await t.clock.advance(300);
      expect(t.provider.calls).to.deep.equal([]);
      peer.leader = true;
      t.controller.scaleDownIdle();
      await t.clock.advance(300);
      expect(t.provider.calls).to.deep.equal(['stop idle']);
    });

    it('counts traffic that reached another replica\'s Envoys', async () => {
      const { t, peer } = replicated(true);
      await t.clock.advance(2_000, 500);
      peer.lastTraffic.set('c_idle', t.clock.now() - 200);
      t.controller.scaleDownIdle();
      await t.clock.advance(300);
      expect(t.provider.calls).to.deep.equal([]);
      await t.clock.advance(1_000, 500);
      t.controller.scaleDownIdle();
      await t.clock.advance(300);
      expect(t.provider.calls).to.deep.equal(['stop idle']);
    });

    it('waits while another replica cannot vouch for its Envoys, and says why once', async () => {
      const { t, peer, lines } = replicated(true);
      await t.clock.advance(2_000, 500);
      peer.evidence = { ok: false, cause: 'replica "cp-1" has not refreshed its traffic record for 25 s', reporters: 1 };
      for (let i = 0; i < 3; i++) t.controller.scaleDownIdle();
      await t.clock.advance(300);
      expect(t.provider.calls).to.deep.equal([]);
      expect(lines.filter((l) => l.includes('idle scale-down postponed') && l.includes('cp-1'))).to.have.length(1);
    });

    it('stops the workload only once the other replicas report the hold applied (bounded by the drain timeout)', async () => {
      const { t, peer, lines } = replicated(true);
      peer.notHolding = ['cp-1'];
      const down = t.controller.scaleToZero('idle', 'admin');
      await t.clock.advance(500, 100);
      expect(t.provider.calls, 'stopped while cp-1 still forwards').to.deep.equal([]);
      peer.notHolding = [];
      await t.clock.advance(300, 100);
      await down;
      expect(t.provider.calls).to.deep.equal(['stop idle']);
      // A replica that never confirms delays the stop by the drain timeout, not forever, and is named.
      t.state.held.set('idle', false);
      t.controller.observe('idle', 'observed_ready', 'test');
      await settle();
      peer.notHolding = ['cp-2'];
      const again = t.controller.scaleToZero('idle', 'admin');
      await t.clock.advance(1_500, 100);
      await again;
      expect(t.provider.calls).to.deep.equal(['stop idle', 'stop idle']);
      expect(lines.some((l) => l.includes('scaling down before every replica reported the hold applied') && l.includes('cp-2'))).to.equal(true);
    });

    it('decides from other replicas\' Envoys when none routes the host here, but not when none reports anywhere', async () => {
      // No Envoy is connected to this replica at all.
      const { t, peer } = replicated(true, { routingClients: () => [], traffic: new TrafficMonitor() });
      await t.clock.advance(2_000, 500);
      peer.evidence = { ok: true, reporters: 0 };
      t.controller.scaleDownIdle();
      await t.clock.advance(300);
      expect(t.provider.calls).to.deep.equal([]);
      peer.evidence = { ok: true, reporters: 2 };
      t.controller.scaleDownIdle();
      await t.clock.advance(300);
      expect(t.provider.calls).to.deep.equal(['stop idle']);
    });
  });

  it('ignores the filter\'s wake call for a manual backend but acts on the admin API', async () => {
    const t = setup([backend('man', 'manual')]);
    expect(await t.controller.wake('man', 'filter', 'filter')).to.deep.equal({ changed: false });
    expect(t.state.held.get('man')).to.equal(true);
    expect((await t.controller.wake('man', 'admin', 'admin')).changed).to.equal(true);
    expect(t.state.held.get('man')).to.equal(false);
    expect(t.provider.calls).to.deep.equal([]);
  });

  it('follows what it observes: endpoints appearing and going away', async () => {
    const t = setup([backend('web')]);
    t.state.held.set('web', false);
    t.controller.observe('web', 'observed_ready', 'an HPA scaled it up');
    await settle();
    expect(t.controller.status('web')!.phase).to.equal('ready');
    t.state.held.set('web', true);
    t.controller.observe('web', 'observed_zero', 'scaled to 0 by hand');
    await settle();
    expect(t.controller.status('web')!.phase).to.equal('scaled_to_zero');
    // Observing what is already so changes nothing and logs no error.
    t.controller.observe('web', 'observed_zero', 'again');
    await settle();
    expect(t.errors).to.deep.equal([]);
  });

  it('answers an unknown backend with UnknownHostError', () => {
    const t = setup([backend('web')]);
    expect(() => t.controller.wake('nope', 'x')).to.throw(UnknownHostError, 'no host named "nope" is configured');
  });
});

describe('BackendController: a provider that refuses to stop', () => {
  it('lifts the hold when stop() refuses, keeps serving, reports why, and does not try again until idle again', async () => {
    const t = setup([backend('web', 'process', 1_000)]);
    t.state.held.set('web', false);
    t.controller.observe('web', 'observed_ready', 'test');
    await settle();
    t.provider.stop = async () => {
      throw new StopRefusedError('replicas are 3, not the 1 we set');
    };
    await t.clock.advance(1_500, 500);
    t.controller.scaleDownIdle();
    await t.clock.advance(200);
    expect(t.controller.status('web')!.lastError).to.equal('replicas are 3, not the 1 we set');
    expect(t.state.log).to.deep.equal(['hold web', 'publish', 'release web', 'publish']);
    expect(t.controller.status('web')).to.include({ phase: 'ready', lastError: 'replicas are 3, not the 1 we set' });
    expect(t.errors, 'no illegal transition on the way').to.deep.equal([]);
    // Refusal counts as activity: the next check within idleAfterMs does nothing.
    t.controller.scaleDownIdle();
    await t.clock.advance(200);
    expect(t.state.log).to.have.length(4);
  });
});

describe('BackendController: Kubernetes-like providers', () => {
  it('does not stop anything after a failed wake when the provider says so (the replicas may not be ours)', async () => {
    const t = setup([backend('web')]);
    t.provider.stopsFailedWakes = false;
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.fail('web', 'no endpoint answered within the wake timeout');
    expect((await wake).error).to.equal('no endpoint answered within the wake timeout');
    expect(t.provider.calls).to.deep.equal(['wake web']);
    expect(t.controller.status('web')!.phase).to.equal('failed');
  });

  it('asks the provider before holding: a refusal costs no hold, no drain, no stop', async () => {
    const t = setup([backend('web', 'process', 1_000)]);
    t.state.held.set('web', false);
    t.controller.observe('web', 'observed_ready', 'test');
    await settle();
    t.provider.refusal = 'Deployment shop/web has 3 replicas, not the 1 a wake sets';
    const change = await t.controller.scaleToZero('web', 'idle');
    expect(change).to.deep.equal({ changed: false, error: 'Deployment shop/web has 3 replicas, not the 1 a wake sets' });
    expect(t.state.log).to.deep.equal([]);
    expect(t.provider.calls).to.deep.equal([]);
    expect(t.controller.status('web')).to.include({ phase: 'ready', lastError: 'Deployment shop/web has 3 replicas, not the 1 a wake sets' });
  });

  it('holds and drains every backend of a shared workload before stopping it once; idle only when all are idle', async () => {
    const t = setup([backend('web-80', 'process', 1_000, 'web'), backend('web-9090', 'process', 1_000, 'web'), backend('other', 'process', 1_000)]);
    for (const n of ['web-80', 'web-9090', 'other']) {
      t.state.held.set(n, false);
      t.controller.observe(n, 'observed_ready', 'test');
    }
    await settle();
    await t.clock.advance(2_000, 500);
    t.traffic.activeAt.set('c_web-9090', t.clock.now() - 10);
    t.controller.scaleDownIdle();
    await t.clock.advance(300);
    expect(t.provider.calls, 'web-9090 is busy, so its workload stays; "other" is idle').to.deep.equal(['stop other']);
    t.traffic.inProgress = 1;
    const down = t.controller.scaleToZero('web-80', 'admin');
    await settle();
    expect(t.state.log.slice(-3)).to.deep.equal(['hold web-80', 'hold web-9090', 'publish']);
    await t.clock.advance(300);
    expect(t.provider.calls, 'not while a shared backend still has requests in progress').to.deep.equal(['stop other']);
    t.traffic.inProgress = 0;
    await t.clock.advance(200);
    await down;
    expect(t.provider.calls).to.deep.equal(['stop other', 'stop web-80']);
    expect(t.controller.status('web-80')!.phase).to.equal('scaled_to_zero');
    expect(t.controller.status('web-9090')!.phase).to.equal('scaled_to_zero');
    expect(t.errors).to.deep.equal([]);
  });

  it('applies what the state says when a queued observation runs, not what it said when queued', async () => {
    const t = setup([backend('web')]);
    t.controller.observe('web', 'observed_ready', 'endpoints answered');
    // Before the queued observation runs, the endpoints went away again.
    await settle();
    expect(t.controller.status('web')!.phase).to.equal('scaled_to_zero');
    t.state.held.set('web', false);
    t.controller.observe('web', 'observed_zero', 'stale');
    await settle();
    expect(t.controller.status('web')!.phase).to.equal('ready');
  });

  it('leaves draining even when the publish after a refused stop fails', async () => {
    const t = setup([backend('web')]);
    t.state.held.set('web', false);
    t.controller.observe('web', 'observed_ready', 'test');
    await settle();
    let publishes = 0;
    (t.controller as unknown as { deps: BackendControllerDeps }).deps.publisher.schedule = async () => {
      publishes += 1;
      if (publishes > 1) throw new Error('snapshot refused');
      return snapshot(publishes);
    };
    t.provider.stop = async () => {
      throw new StopRefusedError('replicas are 2, not 1');
    };
    await t.controller.scaleToZero('web', 'admin').catch(() => {});
    expect(t.controller.status('web')!.phase).to.equal('ready');
  });
});

describe('BackendController observer and metric labels (issue 11)', () => {
  const observed = () => {
    const calls: string[] = [];
    const labels: string[] = [];
    const observer: ScalingObserver = {
      wakeStarted: (h, source) => void calls.push(`start ${h} ${source}`),
      wakeReady: (h) => void calls.push(`ready ${h}`),
      released: (h, n) => void calls.push(`released ${h} ${n}`),
      wakeFailed: (h, reason) => void calls.push(`failed ${h} ${reason}`),
      scaledDown: (h, cause) => void calls.push(`down ${h} ${cause}`),
      phaseChanged: (h, s) => void calls.push(`phase ${h} ${s.phase}`),
    };
    const metrics = { inc: (name: string, l: Record<string, string> = {}) => void labels.push(`${name}${JSON.stringify(l)}`) };
    return { calls, labels, overrides: { observer, metrics } };
  };

  it('reports a wake as started, ready, released and its phases, with the source as a label', async () => {
    const o = observed();
    const t = setup([backend('web')], o.overrides);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.ready('web');
    await wake;
    expect(o.calls).to.deep.equal(['phase web waking', 'start web filter', 'ready web', 'released web 0', 'phase web ready']);
    expect(o.labels).to.deep.equal(['stz_wakes_total{"host":"web","source":"filter"}']);
  });

  it('classifies wake failures: not ready in time, exited before ready, refused by the provider', async () => {
    const o = observed();
    const t = setup([backend('a'), backend('b'), backend('c')], o.overrides);
    const a = t.controller.wake('a', 'test', 'admin');
    const b = t.controller.wake('b', 'test', 'admin');
    await settle();
    t.provider.fail('a', 'not healthy within wakeTimeoutMs 5000 ms');
    t.provider.die('b', 'the process exited (code 3)');
    await Promise.all([a, b]);
    t.provider.wake = async () => {
      throw new Error('command not found');
    };
    await t.controller.wake('c', 'test', 'admin');
    expect(o.calls.filter((c) => c.startsWith('failed'))).to.deep.equal(['failed a not_ready', 'failed b exited', 'failed c refused']);
    expect(o.labels.filter((l) => l.startsWith('stz_wake_failures_total')).sort()).to.deep.equal([
      'stz_wake_failures_total{"host":"a","reason":"not_ready"}',
      'stz_wake_failures_total{"host":"b","reason":"exited"}',
      'stz_wake_failures_total{"host":"c","reason":"refused"}',
    ]);
  });

  it('labels a scale-down with its cause (admin by default, idle from the idle detector)', async () => {
    const o = observed();
    const t = setup([backend('web', 'process', 1_000)], o.overrides);
    const wake = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.ready('web');
    await wake;
    await t.controller.scaleToZero('web', 'operator');
    expect(o.calls).to.include('down web admin');
    const again = t.controller.wake('web', 'test', 'filter');
    await settle();
    t.provider.ready('web');
    await again;
    await t.clock.advance(2_000, 500);
    t.controller.scaleDownIdle();
    await t.clock.advance(300);
    expect(o.calls).to.include('down web idle');
    expect(o.labels).to.include('stz_scale_downs_total{"host":"web","cause":"idle"}');
  });
});
