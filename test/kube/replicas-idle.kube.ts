// Two control-plane replicas, each with an Envoy of its own, on a real API server with kwok pods: idleness is
// judged from both Envoys' load reports, whichever replica each reports to; the leader alone scales down,
// once; then both Envoys hold the next request and a single scale-up answers both.
import { expect } from 'chai';
import { startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { startKubernetesControlPlane, type KubernetesControlPlane } from '../../xds-server/kubernetes/control-plane.ts';
import { RestKubeClient, type KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import type { KubeCluster } from '../support/kube/cluster.ts';
import { applyObjects, startClusterWithPods, waitForGatewayPort } from '../support/kube/gateway-stack.ts';
import type { PodServers } from '../support/kube/pod-servers.ts';
import { appObjects, gatewayObjects, scaleToZeroPolicy } from '../support/kube/objects.ts';
import { freePort } from '../support/ports.ts';
import { FILTER_WASM } from '../support/stack.ts';

const NS = 'shop';
const CP_NS = 'default';

interface Replica {
  cp: KubernetesControlPlane;
  envoy: EnvoyProcess;
  /** Where this replica's Envoy binds the Gateway (each replica gives its own Envoys its own address here). */
  address: string;
}

describe('two control-plane replicas, an Envoy on each: idleness from both, one scale-down, one wake', function () {
  this.timeout(240_000);
  let cluster: KubeCluster;
  let client: RestKubeClient;
  let pods: PodServers;
  let port: number;
  const replicas = new Map<string, Replica>();

  const apply = (...objects: KubeObject[]): Promise<void> => applyObjects(client, ...objects);
  const deploymentReplicas = async (): Promise<number> => ((await client.get(`/apis/apps/v1/namespaces/${NS}/deployments/nap`)).spec as { replicas?: number }).replicas ?? 0;
  const eventCount = async (reason: string): Promise<number> =>
    ((await client.list(`/api/v1/namespaces/${NS}/events`)).items as unknown as { reason: string; involvedObject: { name: string }; count?: number }[])
      .filter((e) => e.reason === reason && e.involvedObject.name === 'nap')
      .reduce((n, e) => n + (e.count ?? 1), 0);
  const get = (r: Replica, path: string) => http1Request({ host: 'nap.example', port, path, address: r.address, timeoutMs: 30_000 });

  async function startReplica(identity: string, address: string): Promise<Replica> {
    const cp = await startKubernetesControlPlane({
      client: new RestKubeClient(cluster.kubeConfig(), `stz-test-${identity}`),
      filterWasmPath: FILTER_WASM,
      log: silentLogger,
      defaultGatewayAddress: address,
      scaling: { idleCheckIntervalMs: 200, loadReportIntervalMs: 200 },
      leaderElection: {
        namespace: CP_NS,
        identity,
        timing: { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 },
        trafficShare: { heartbeatMs: 500, minIntervalMs: 200, granularityMs: 500, staleAfterMs: 5_000 },
      },
    });
    const envoy = await startEnvoy({ bootstrap: renderBootstrap({ nodeId: `envoy-of-${identity}`, xdsAddress: '127.0.0.1', xdsPort: cp.xdsPort }) });
    const replica = { cp, envoy, address };
    replicas.set(identity, replica);
    return replica;
  }

  before(async () => {
    ({ cluster, client, pods } = await startClusterWithPods());
    port = await freePort();
    await apply(...gatewayObjects(NS, port), ...appObjects(NS, 'nap', 0), scaleToZeroPolicy(NS, 'nap', { idleAfterMs: 2_000 }));
    const a = await startReplica('replica-a', '127.0.0.1');
    await eventually(async () => expect(a.cp.isLeader()).to.equal(true), { what: 'replica-a leading' });
    await startReplica('replica-b', '127.0.0.2');
    for (const r of replicas.values()) await waitForGatewayPort(r.envoy, port);
  });
  after(async () => {
    for (const r of replicas.values()) {
      await r.envoy.stop().catch(() => {});
      await r.cp.close().catch(() => {});
    }
    await pods?.stop();
    await cluster?.stop();
  });

  it("keeps a backend awake while only the follower's Envoy carries its traffic, then scales it down once", async () => {
    const a = replicas.get('replica-a')!;
    const b = replicas.get('replica-b')!;
    expect(b.cp.isLeader()).to.equal(false);
    // Woken through the follower's Envoy (its wake call goes to replica-b, a guarded write like any).
    const first = await get(b, '/first');
    expect(first.status).to.equal(200);
    expect(await deploymentReplicas()).to.equal(1);
    // 6 s of traffic through Envoy B only: three times idleAfterMs. Envoy A (the leader's) sees none.
    const until = Date.now() + 6_000;
    while (Date.now() < until) {
      expect((await get(b, '/busy')).status).to.equal(200);
      expect(await deploymentReplicas(), 'scaled down while the follower\'s Envoy carried traffic').to.equal(1);
      await new Promise((r) => setTimeout(r, 300));
    }
    // Quiet now: the leader scales it down, once, and only after the follower's Envoy holds the backend.
    // Both writes are in etcd, so their resourceVersions order them: the follower's record saying its clients
    // applied the hold must come before the write that set the Deployment's replicas to 0.
    const holdRecords: number[] = [];
    let scaledToZeroAt: number | undefined;
    const start = (await client.list(`/api/v1/namespaces/${CP_NS}/configmaps`)).resourceVersion;
    const watches = [
      await client.watch(`/api/v1/namespaces/${CP_NS}/configmaps`, start, (_type, cm) => {
        const record = (cm.data as Record<string, string> | undefined)?.['record.json'];
        if (cm.metadata.name === 'scale-to-zero-traffic-replica-b' && record && (JSON.parse(record) as { heldApplied?: string[] }).heldApplied?.includes('shop-nap-80')) {
          holdRecords.push(Number(cm.metadata.resourceVersion));
        }
      }, () => {}),
      await client.watch(`/apis/apps/v1/namespaces/${NS}/deployments`, start, (_type, d) => {
        if (d.metadata.name === 'nap' && (d.spec as { replicas?: number }).replicas === 0) scaledToZeroAt ??= Number(d.metadata.resourceVersion);
      }, () => {}),
    ];
    try {
      await eventually(async () => expect(await deploymentReplicas()).to.equal(0), { timeoutMs: 20_000, what: 'the idle scale-down' });
      await eventually(async () => expect(scaledToZeroAt).to.be.a('number'), { what: 'the scale write seen by the watch' });
    } finally {
      for (const w of watches) w.abort();
    }
    expect(holdRecords.some((rv) => rv < scaledToZeroAt!), `follower hold records ${holdRecords.join(',')} vs scale write ${scaledToZeroAt}`).to.equal(true);
    await eventually(async () => expect(await eventCount('ScaledToZero')).to.equal(1), { what: 'one ScaledToZero Event' });
    expect(a.cp.isLeader()).to.equal(true);
  });

  it('then both Envoys hold the next request, and one scale-up answers both', async () => {
    const a = replicas.get('replica-a')!;
    const b = replicas.get('replica-b')!;
    const upsBefore = await eventCount('ScaledUpFromZero');
    // Both replicas see the Deployment at 0 and hold its requests.
    await eventually(async () => {
      for (const r of [a, b]) {
        const host = (await (await fetch(`${r.cp.adminUrl}/v1/hosts/shop-nap-80`)).json()) as { state: string };
        expect(host.state).to.equal('scaled_to_zero');
      }
    }, { what: 'held on both replicas' });
    const [ra, rb] = await Promise.all([get(a, '/after-a'), get(b, '/after-b')]);
    expect([ra.status, rb.status]).to.deep.equal([200, 200]);
    expect(JSON.parse(ra.body).pod).to.equal(JSON.parse(rb.body).pod);
    expect(await deploymentReplicas()).to.equal(1);
    await eventually(async () => expect(await eventCount('ScaledUpFromZero')).to.equal(upsBefore + 1), { what: 'one more ScaledUpFromZero' });
  });
});
