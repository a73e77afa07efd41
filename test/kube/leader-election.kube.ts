// Leader election against the real API server: the Lease object as the API server stores it (MicroTime,
// resourceVersion preconditions, 409 on a lost race), a graceful hand-over, and a leader that loses the API
// server stepping down. Short timings, so the test takes seconds; the algorithm's timing bounds are proven
// on a fake clock in test/unit/kubernetes-runtime/leader-election.test.ts.
import { expect } from 'chai';
import { systemClock } from '../../xds-server/clock.ts';
import { KubernetesLeaseStore, LeaderElector, LeaseConflictError } from '../../xds-server/kubernetes/leader-election.ts';
import { RestKubeClient } from '../../xds-server/kubernetes/rest.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { eventually } from '../support/eventually.ts';
import { startKubeCluster, type KubeCluster } from '../support/kube/cluster.ts';

const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 };
const LEASE_PATH = '/apis/coordination.k8s.io/v1/namespaces/default/leases/stz-test-leader';

describe('leader election on a real API server', function () {
  this.timeout(180_000);
  let cluster: KubeCluster;
  let client: RestKubeClient;
  const running: { stop: AbortController; done: Promise<void> }[] = [];

  before(async () => {
    cluster = await startKubeCluster();
    client = new RestKubeClient(cluster.kubeConfig(), 'stz-test');
  });
  afterEach(async () => {
    for (const r of running.splice(0)) {
      r.stop.abort();
      await r.done;
    }
    await client.request('DELETE', LEASE_PATH, undefined).catch(() => undefined);
  });
  after(async () => {
    await cluster?.stop();
  });

  function start(identity: string, leaders: Set<string>): LeaderElector {
    const elector = new LeaderElector({
      identity,
      store: new KubernetesLeaseStore(client, 'default', 'stz-test-leader'),
      clock: systemClock,
      log: silentLogger,
      timing: TIMING,
      onChange: (leading) => {
        if (leading) leaders.add(identity);
        else leaders.delete(identity);
        expect(leaders.size, `leaders: ${[...leaders].join(', ')}`).to.be.at.most(1);
      },
    });
    const stop = new AbortController();
    running.push({ stop, done: elector.run(stop.signal) });
    return elector;
  }

  it('one of two replicas leads; the Lease says who; a graceful stop hands over to the other', async () => {
    const leaders = new Set<string>();
    const a = start('replica-a', leaders);
    await eventually(async () => expect(a.isLeader()).to.equal(true), { what: 'replica-a leading' });
    const b = start('replica-b', leaders);
    const lease = (await client.get(LEASE_PATH)) as unknown as { spec: { holderIdentity: string; leaseDurationSeconds: number; renewTime: string; leaseTransitions?: number } };
    expect(lease.spec).to.include({ holderIdentity: 'replica-a', leaseDurationSeconds: 3 });
    expect(lease.spec.renewTime).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(b.isLeader()).to.equal(false);

    const first = running[0]!;
    first.stop.abort();
    await first.done;
    await eventually(async () => expect(b.isLeader()).to.equal(true), { what: 'replica-b taking over after the release' });
    const after = (await client.get(LEASE_PATH)) as unknown as { spec: { holderIdentity: string; leaseTransitions: number } };
    expect(after.spec).to.include({ holderIdentity: 'replica-b', leaseTransitions: 1 });
  });

  it('answers a write with a stale resourceVersion with a conflict, not a second holder', async () => {
    const store = new KubernetesLeaseStore(client, 'default', 'stz-test-leader');
    const created = await store.create({ holderIdentity: 'x', leaseDurationSeconds: 3, leaseTransitions: 0 }, 5_000);
    await store.update({ holderIdentity: 'y', leaseDurationSeconds: 3, leaseTransitions: 1 }, created.resourceVersion, 5_000);
    let error: unknown;
    await store.update({ holderIdentity: 'z', leaseDurationSeconds: 3, leaseTransitions: 1 }, created.resourceVersion, 5_000).catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(LeaseConflictError);
    error = undefined;
    await store.create({ holderIdentity: 'z', leaseDurationSeconds: 3, leaseTransitions: 0 }, 5_000).catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(LeaseConflictError);
    expect((await store.get(5_000))!.record.holderIdentity).to.equal('y');
  });

  it('a leader that loses the API server stops leading while it is away, and one replica leads after it returns', async () => {
    const leaders = new Set<string>();
    const a = start('replica-a', leaders);
    await eventually(async () => expect(a.isLeader()).to.equal(true), { what: 'replica-a leading' });
    const b = start('replica-b', leaders);
    await cluster.restartApiServer(async () => {
      await eventually(async () => expect(a.isLeader()).to.equal(false), { timeoutMs: 10_000, what: 'the leader stepping down without the API server' });
      expect(b.isLeader()).to.equal(false);
    });
    await eventually(async () => expect(leaders.size).to.equal(1), { timeoutMs: 20_000, what: 'one leader again' });
  });
});
