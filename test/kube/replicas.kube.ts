// Two control-plane replicas on one real API server: both watch and translate, only the holder of the Lease
// writes statuses; when it stops, the other takes the Lease and writes what changed since.
import { expect } from 'chai';
import { DEFAULT_GROUP } from '../../xds-server/cache/snapshot-cache.ts';
import { startKubernetesControlPlane, type KubernetesControlPlane } from '../../xds-server/kubernetes/control-plane.ts';
import { RestKubeClient, type KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { systemClock } from '../../xds-server/clock.ts';
import { TRAFFIC_RECORD_LABEL, TrafficShare } from '../../xds-server/kubernetes/traffic-share-sync.ts';
import type { LocalTraffic } from '../../xds-server/kubernetes/traffic-share.ts';
import { eventually } from '../support/eventually.ts';
import { startKubeCluster, type KubeCluster } from '../support/kube/cluster.ts';
import { applyObjects, CONTROLLER_NAME, OUR_CRD_DIR } from '../support/kube/gateway-stack.ts';
import { FILTER_WASM } from '../support/stack.ts';

const NS = 'default';
const LEASE = 'scale-to-zero-control-plane';
const LEASE_PATH = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LEASE}`;
const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 };

interface Condition {
  type: string;
  status: string;
}

describe('two control-plane replicas (leader election on a real API server)', function () {
  this.timeout(180_000);
  let cluster: KubeCluster;
  let client: RestKubeClient;
  const replicas = new Map<string, KubernetesControlPlane>();

  const apply = (...objects: KubeObject[]): Promise<void> => applyObjects(client, ...objects);
  const gateway = (name: string): KubeObject => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: NS },
    spec: { gatewayClassName: 'stz', listeners: [{ name: 'http', protocol: 'HTTP', port: 8080 }] },
  });
  const accepted = async (path: string): Promise<string | undefined> =>
    ((await client.get(path)).status as { conditions?: Condition[] } | undefined)?.conditions?.find((c) => c.type === 'Accepted')?.status;

  async function startReplica(identity: string): Promise<KubernetesControlPlane> {
    const cp = await startKubernetesControlPlane({
      client: new RestKubeClient(cluster.kubeConfig(), `stz-test-${identity}`),
      filterWasmPath: FILTER_WASM,
      log: silentLogger,
      leaderElection: { namespace: NS, identity, timing: TIMING },
    });
    replicas.set(identity, cp);
    return cp;
  }

  before(async () => {
    cluster = await startKubeCluster();
    await cluster.applyCrds();
    await cluster.applyCrds(OUR_CRD_DIR);
    client = new RestKubeClient(cluster.kubeConfig(), 'stz-test');
  });
  after(async () => {
    for (const cp of replicas.values()) await cp.close().catch(() => {});
    await cluster?.stop();
  });

  it('writes no status while another holder has the Lease; then only the new holder writes, the follower translates the same config', async () => {
    // A holder that is not us (a replica of another version, say) with an hour to go.
    await client.request('POST', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: LEASE, namespace: NS },
      spec: { holderIdentity: 'ghost', leaseDurationSeconds: 3600, leaseTransitions: 0 },
    });
    await apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'stz' }, spec: { controllerName: CONTROLLER_NAME } }, gateway('first'));
    const a = await startReplica('replica-a');
    const b = await startReplica('replica-b');
    // Several retry periods: both translate, neither may write.
    await new Promise((r) => setTimeout(r, 2_000));
    expect([a.isLeader(), b.isLeader()]).to.deep.equal([false, false]);
    // Still the API server's default ("Unknown", waiting for a controller).
    expect(await accepted('/apis/gateway.networking.k8s.io/v1/gatewayclasses/stz')).to.equal('Unknown');
    expect(a.statusWriter.stats.writes + b.statusWriter.stats.writes).to.equal(0);

    // The ghost lets go (as a released Lease looks): one of ours takes it and writes.
    const held = await client.get(`${LEASE_PATH}`);
    await client.request('PUT', LEASE_PATH, { ...held, spec: { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 } });
    await eventually(async () => {
      expect(await accepted('/apis/gateway.networking.k8s.io/v1/gatewayclasses/stz')).to.equal('True');
      expect(await accepted(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways/first`)).to.equal('True');
    }, { what: 'statuses written' });
    const [leader, follower] = a.isLeader() ? [a, b] : [b, a];
    expect(follower.isLeader()).to.equal(false);
    await apply(gateway('second'));
    await eventually(async () => expect(await accepted(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways/second`)).to.equal('True'), { what: 'the second Gateway accepted' });
    // The API server has a write before the writer has its answer back (and counts it): wait for the count.
    await eventually(async () => expect(leader.statusWriter.stats.writes).to.be.at.least(3), { what: 'the leader counting its writes' });
    expect(follower.statusWriter.stats.writes).to.equal(0);
    // Both translate the same objects into the same config (either can serve the Envoys): equal listener versions.
    await eventually(async () => {
      const version = (cp: KubernetesControlPlane): string | undefined => cp.cache.getSnapshot(DEFAULT_GROUP)?.versions.listener;
      expect(version(follower)).to.be.a('string');
      expect(version(follower)).to.equal(version(leader));
    }, { what: 'the same listener version on both replicas' });
  });

  it('when the leader stops, the other replica takes the Lease and writes what changed meanwhile', async () => {
    const [aId, bId] = replicas.get('replica-a')!.isLeader() ? ['replica-a', 'replica-b'] : ['replica-b', 'replica-a'];
    const a = replicas.get(aId)!;
    const b = replicas.get(bId)!;
    const writesByA = a.statusWriter.stats.writes;
    await a.close();
    replicas.delete(aId);
    // Changed while nobody leads (or right after): only the new leader can write it.
    await apply(gateway('third'));
    await eventually(async () => expect(b.isLeader()).to.equal(true), { what: 'replica-b leading' });
    await eventually(async () => expect(await accepted(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways/third`)).to.equal('True'), { what: 'the third Gateway accepted by replica-b' });
    await eventually(async () => expect(b.statusWriter.stats.writes).to.be.at.least(1), { what: 'replica-b counting its write' });
    expect(a.statusWriter.stats.writes).to.equal(writesByA);
    const lease = await client.get(LEASE_PATH);
    // ghost -> the first leader -> the second.
    expect(lease.spec).to.include({ holderIdentity: bId, leaseTransitions: 2 });
  });
  it('replicas publish their load-report view as ConfigMaps and read each other\'s, with a bounded number of writes', async () => {
    const views: Record<string, LocalTraffic> = {
      'replica-x': { reporters: 1, stalestReportAt: Date.now(), lastTraffic: new Map([['kube_shop_cart_80', Date.now() - 2_000]]) },
      'replica-y': { reporters: 0, stalestReportAt: undefined, lastTraffic: new Map() },
    };
    const timing = { heartbeatMs: 500, minIntervalMs: 200, granularityMs: 500, staleAfterMs: 3_000 };
    // A namespace of their own: the replicas of the tests above write their records in NS.
    const TNS = 'traffic-records';
    await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: TNS } });
    const shares = Object.keys(views).map((identity) => {
      const share = new TrafficShare({ client, namespace: TNS, identity, clock: systemClock, log: silentLogger, timing, local: () => views[identity]!, tickMs: 50 });
      share.start();
      return share;
    });
    try {
      const [x, y] = shares as [TrafficShare, TrafficShare];
      await eventually(async () => {
        const seen = y.others();
        expect(seen.map((o) => o.record.replica)).to.deep.equal(['replica-x']);
        expect(seen[0]!.record.reporters).to.equal(1);
        // Two seconds old when written; placed on y's clock from when y saw it.
        const age = seen[0]!.observedAt - seen[0]!.record.lastTrafficAgeMs['kube_shop_cart_80']!;
        expect(Date.now() - age).to.be.within(1_900, 4_000);
        expect(x.others().map((o) => o.record.replica)).to.deep.equal(['replica-y']);
      }, { what: 'each replica seeing the other\'s record' });
      const list = await client.list(`/api/v1/namespaces/${TNS}/configmaps?labelSelector=${encodeURIComponent(`${TRAFFIC_RECORD_LABEL}=true`)}`);
      expect(list.items.map((c) => c.metadata.name).sort()).to.deep.equal(['scale-to-zero-traffic-replica-x', 'scale-to-zero-traffic-replica-y']);
      // Over 3 s of steady traffic (x sees a request every 100 ms), x writes about once per heartbeat.
      const before = x.stats.writes;
      const busy = setInterval(() => {
        views['replica-x'] = { reporters: 1, stalestReportAt: Date.now(), lastTraffic: new Map([['kube_shop_cart_80', Date.now()]]) };
      }, 100);
      await new Promise((r) => setTimeout(r, 3_000));
      clearInterval(busy);
      const writes = x.stats.writes - before;
      expect(writes).to.be.within(3, 8);
      expect(x.stats.failures + y.stats.failures).to.equal(0);
    } finally {
      for (const s of shares) await s.close();
    }
  });
});
