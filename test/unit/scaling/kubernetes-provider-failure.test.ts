// A Kubernetes wake that fails (the /scale write refused, the workload missing) fails at once, with a reason
// that names the workload, and the controller pushes that reason to the filter.
import { expect } from 'chai';
import type { DesiredState, WakeFailure } from '../../../snapshots/desired-state.ts';
import type { Snapshot } from '../../../snapshots/build.ts';
import { KubernetesProvider } from '../../../xds-server/kubernetes/kubernetes-provider.ts';
import { KubeApiError } from '../../../xds-server/kubernetes/rest.ts';
import { ScaleTargetError, type ScaleClient } from '../../../xds-server/kubernetes/scale.ts';
import { silentLogger } from '../../../xds-server/log.ts';
import { BackendController } from '../../../xds-server/scaling/backend-controller.ts';
import type { ScalableBackend } from '../../../xds-server/scaling/provider.ts';
import type { BackendState, BackendView } from '../../../xds-server/state/backend-state.ts';
import { FakeClock, settle } from '../../support/fake-clock.ts';

const backend: ScalableBackend = {
  name: 'shop-web-80',
  clusterName: 'k8s_shop_web_80',
  protocol: 'http1',
  endpoints: [],
  scaleToZero: {
    buffer: { holdTimeoutMs: 30_000, maxHeld: 10, retryAfterSeconds: 1 },
    exclusiveDomains: [],
    workload: { kind: 'kubernetes', target: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web' }, wakeReplicas: 1 },
    health: { kind: 'tcp', timeoutMs: 100 },
    wakeTimeoutMs: 60_000,
    idleAfterMs: 0,
    declaredBy: { kind: 'ScaleToZeroPolicy', namespace: 'shop', name: 'web' },
  },
};

function provider(setIf: () => Promise<never>) {
  const conditions: { type: string; status: boolean; reason: string }[] = [];
  const scale = { setIf, read: setIf } as unknown as ScaleClient;
  const state = {
    waitForVerified: () => new Promise<void>(() => {}),
    setPolicyCondition: (_by: unknown, c: { type: string; status: boolean; reason: string }) => void conditions.push(c),
    afterStop: async () => {},
  };
  const p = new KubernetesProvider(scale, state as never, { record: async () => {} }, silentLogger);
  return { p, conditions };
}

describe('KubernetesProvider: failed wakes', () => {
  it('a workload that does not exist fails the wake at once, and says so on the policy', async () => {
    const { p, conditions } = provider(async () => {
      throw new ScaleTargetError('Deployment shop/web does not exist');
    });
    let error: Error | undefined;
    await p.wake(backend).catch((e: Error) => (error = e));
    expect(error?.message).to.equal('Deployment shop/web does not exist');
    expect(conditions).to.deep.include({ type: 'WorkloadScalable', status: false, reason: 'ScaleTargetUnusable', message: 'Deployment shop/web does not exist' });
  });

  it('any other refused write names the workload', async () => {
    const { p } = provider(async () => {
      throw new KubeApiError(422, 'Invalid', 'spec.replicas: Invalid value', 'PATCH /apis/apps/v1/namespaces/shop/deployments/web/scale');
    });
    let error: Error | undefined;
    await p.wake(backend).catch((e: Error) => (error = e));
    expect(error?.message).to.equal('could not scale Deployment shop/web up from 0: PATCH /apis/apps/v1/namespaces/shop/deployments/web/scale: 422 Invalid: spec.replicas: Invalid value');
  });

  it('the controller pushes that reason to the filter at once, without stopping anything', async () => {
    const { p } = provider(async () => {
      throw new ScaleTargetError('the control plane may not scale Deployment shop/web: forbidden');
    });
    const failures = new Map<string, WakeFailure>();
    const state: BackendState = {
      scalable: (): BackendView[] => [{ backend, held: true, changedAt: '2026-11-30T11:00:00.000Z' }],
      find: (name) => (name === backend.name ? { backend, held: true, changedAt: '2026-11-30T11:00:00.000Z' } : undefined),
      setHeld: async () => false,
      setWakeFailure: async (name, f) => {
        if (f) failures.set(name, f);
        else failures.delete(name);
        return true;
      },
      desired: (): DesiredState => {
        throw new Error('not used');
      },
      currentGeneration: 1,
      advanceGeneration: () => {},
    };
    const pushes: boolean[] = [];
    const clock = new FakeClock();
    const controller = new BackendController(
      {
        state,
        publisher: { schedule: async (o: { urgent?: boolean } = {}) => (pushes.push(o.urgent === true), { snapshot: {} as Snapshot, groups: new Map() }) },
        cache: { waitUntilSettled: async () => ({ settled: true, notApplied: [] }) },
        traffic: { touch: () => {}, lastActiveAt: () => undefined, requestsInProgress: () => 0, idleEvidence: () => ({ ok: true, cannotReport: [] }) },
        providers: { kubernetes: p },
        metrics: { inc: () => {} },
        log: silentLogger,
        routingClients: () => [],
        clock,
      },
      { drainTimeoutMs: 1_000, applyTimeoutMs: 1_000, idleCheckIntervalMs: 0, loadReportIntervalMs: 100 },
    );
    const change = await controller.wake(backend.name, 'held request', 'filter');
    expect(change.error).to.equal('the control plane may not scale Deployment shop/web: forbidden');
    expect(failures.get(backend.name)).to.deep.equal({ reason: 'the control plane may not scale Deployment shop/web: forbidden', retryAfterSeconds: 10 });
    expect(pushes).to.deep.equal([true]);
    expect(controller.status(backend.name)!.phase).to.equal('failed');
    await clock.advance(10_000, 1_000);
    await settle();
    expect(failures.has(backend.name)).to.equal(false);
    expect(controller.status(backend.name)!.phase).to.equal('scaled_to_zero');
  });
});
