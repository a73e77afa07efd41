// Two control-plane replicas as real processes (the CLI in Kubernetes mode, leader election on), one real
// Envoy whose bootstrap names both, a real API server with kwok pods. A leader killed with SIGKILL while 100
// requests wait for a cold backend costs none of them and writes no second scale-up; a rolling restart of
// both replicas under steady traffic fails no request and answers none from the wrong backend.
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { REPO_ROOT, startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { DEFAULT_LEASE_NAME } from '../../xds-server/kubernetes/control-plane.ts';
import { RestKubeClient, type KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request, type Reply } from '../support/http-client.ts';
import type { KubeCluster } from '../support/kube/cluster.ts';
import { applyObjects, CONTROLLER_NAME, startClusterWithPods, waitForGatewayPort } from '../support/kube/gateway-stack.ts';
import { LISTEN_DELAY_ANNOTATION, type PodServers } from '../support/kube/pod-servers.ts';
import { appObjects, gatewayObjects, scaleToZeroPolicy } from '../support/kube/objects.ts';
import { freePort } from '../support/ports.ts';
import { FILTER_WASM } from '../support/stack.ts';

const NS = 'shop';
const LEASE_NS = 'default';

interface Replica {
  name: string;
  xdsPort: number;
  adminPort: number;
  child?: ChildProcess;
  exited?: Promise<void>;
  output: string;
}

describe('control-plane replicas as processes: SIGKILL of the leader, rolling restart', function () {
  this.timeout(400_000);
  let cluster: KubeCluster;
  let client: RestKubeClient;
  let pods: PodServers;
  let envoy: EnvoyProcess;
  let port: number;
  const replicas: Replica[] = [];

  const apply = (...objects: KubeObject[]): Promise<void> => applyObjects(client, ...objects);
  const holder = async (): Promise<string> =>
    ((await client.get(`/apis/coordination.k8s.io/v1/namespaces/${LEASE_NS}/leases/${DEFAULT_LEASE_NAME}`)).spec as { holderIdentity?: string }).holderIdentity ?? '';
  const deployment = async (name: string): Promise<{ replicas: number; generation: number }> => {
    const d = await client.get(`/apis/apps/v1/namespaces/${NS}/deployments/${name}`);
    return { replicas: (d.spec as { replicas?: number }).replicas ?? 0, generation: d.metadata.generation ?? 0 };
  };
  const get = (host: string, path: string): Promise<Reply> => http1Request({ port, host, path, timeoutMs: 60_000 });

  async function start(r: Replica): Promise<void> {
    const args = ['--import', 'tsx', 'xds-server/main.ts', '--kubernetes', '--kubeconfig', cluster.kubeconfigPath];
    args.push('--leader-election-namespace', LEASE_NS, '--leader-election-id', r.name, '--xds-port', String(r.xdsPort), '--admin-port', String(r.adminPort));
    // Its Envoy is plaintext: mTLS in Kubernetes mode is tested in xds-certificates.kube.ts.
    args.push('--gateway-address', '127.0.0.1', '--filter', FILTER_WASM, '--log-level', 'warn', '--insecure-xds-plaintext');
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    r.child = child;
    r.output = '';
    child.stderr!.on('data', (d: Buffer) => (r.output += d.toString('utf8')));
    r.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`replica ${r.name} exited (${child.exitCode}):\n${r.output}`);
      expect((await fetch(`http://127.0.0.1:${r.adminPort}/healthz`)).status).to.equal(200);
    }, { timeoutMs: 60_000, what: `replica ${r.name} up` });
  }
  const streamsFrom = async (r: Replica): Promise<boolean> => {
    // The CLI checks admin callers with the cluster's RBAC: the cluster admin's token may read.
    const body = (await (await fetch(`http://127.0.0.1:${r.adminPort}/v1/nodes`, { headers: { authorization: `Bearer ${cluster.token}` } })).json()) as { nodes: { nodeId: string; types: { listener?: { ackedVersion?: string } } }[] };
    return body.nodes.some((n) => n.nodeId === 'replicas-envoy' && n.types.listener?.ackedVersion !== undefined);
  };

  before(async () => {
    ({ cluster, client, pods } = await startClusterWithPods());
    port = await freePort();
    await apply(
      ...gatewayObjects(NS, port),
      // Its app takes 3 s to listen once its pod is Ready: long enough to kill the leader while requests wait.
      ...appObjects(NS, 'cold', 0, { [LISTEN_DELAY_ANNOTATION]: '3000' }),
      scaleToZeroPolicy(NS, 'cold', { holdTimeoutMs: 60_000, wakeTimeoutMs: 50_000 }),
      ...appObjects(NS, 'sleepy', 0),
      scaleToZeroPolicy(NS, 'sleepy', { holdTimeoutMs: 60_000, wakeTimeoutMs: 50_000 }),
      ...appObjects(NS, 'warm', 1),
      ...appObjects(NS, 'frozen', 0),
      scaleToZeroPolicy(NS, 'frozen', { holdTimeoutMs: 5_000, wakeTimeoutMs: 4_000 }),
    );
    for (const name of ['r1', 'r2']) replicas.push({ name, xdsPort: await freePort(), adminPort: await freePort(), output: '' });
    const [r1, r2] = replicas as [Replica, Replica];
    await start(r1);
    await eventually(async () => expect(await holder()).to.equal('r1'), { timeoutMs: 30_000, what: 'r1 holding the Lease' });
    // r2 is not up yet, so the Envoy streams from r1, the leader.
    envoy = await startEnvoy({
      bootstrap: renderBootstrap({ nodeId: 'replicas-envoy', xdsAddress: '127.0.0.1', xdsPort: r1.xdsPort, moreXdsEndpoints: [{ address: '127.0.0.1', port: r2.xdsPort }] }),
    });
    await waitForGatewayPort(envoy, port);
    await start(r2);
    expect(await streamsFrom(r1)).to.equal(true);
  });
  after(async () => {
    await envoy?.stop();
    for (const r of replicas) {
      if (r.child && r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
      await r.exited;
    }
    await pods?.stop();
    await cluster?.stop();
  });

  it('SIGKILL of the leader while 100 requests wait for a cold backend: all 100 answered by its pod, one scale-up', async () => {
    const [r1, r2] = replicas as [Replica, Replica];
    const before = await deployment('cold');
    const replies = Array.from({ length: 100 }, (_, i) => get('cold.example', `/held-${i}`));
    await eventually(async () => expect((await envoy.stats('wasmcustom.scale_to_zero.held')).get('wasmcustom.scale_to_zero.held')).to.equal(100), {
      what: '100 requests held',
    });
    r1.child!.kill('SIGKILL');
    await r1.exited;
    const answers = await Promise.all(replies);
    expect(answers.map((a) => a.status)).to.deep.equal(Array(100).fill(200));
    expect(new Set(answers.map((a) => (JSON.parse(a.body) as { pod: string }).pod.replace(/-[^-]+-[^-]+$/, '')))).to.deep.equal(new Set(['cold']));
    // One spec change: 0 -> 1, written once (a second scale-up would be a second generation).
    expect(await deployment('cold')).to.deep.equal({ replicas: 1, generation: before.generation + 1 });
    expect(await streamsFrom(r2)).to.equal(true);
    await eventually(async () => expect(await holder()).to.equal('r2'), { timeoutMs: 30_000, what: 'r2 taking the Lease' });
    await start(r1);
  });

  it('a rolling restart of both replicas under steady traffic fails no request and answers none from the wrong backend', async () => {
    const results: { host: string; status: number; pod?: string; error?: string }[] = [];
    let stop = false;
    const loop = async (host: string): Promise<void> => {
      while (!stop) {
        try {
          const r = await get(host, '/steady');
          results.push({ host, status: r.status, pod: (JSON.parse(r.body) as { pod?: string }).pod });
        } catch (err) {
          results.push({ host, status: 0, error: (err as Error).message });
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const loops = [loop('warm.example'), loop('cold.example')];
    let sleepy: Promise<Reply> | undefined;
    for (const r of replicas) {
      // Graceful, as a rollout does it: SIGTERM, then the replacement.
      r.child!.kill('SIGTERM');
      await r.exited;
      // A cold backend woken while one replica is gone.
      sleepy ??= get('sleepy.example', '/woken-during-the-restart');
      await start(r);
      await eventually(async () => expect((await streamsFrom(replicas[0]!)) || (await streamsFrom(replicas[1]!))).to.equal(true), {
        what: 'the Envoy streaming from a replica',
      });
    }
    await new Promise((r) => setTimeout(r, 1_000));
    stop = true;
    await Promise.all(loops);
    const failed = results.filter((r) => r.status !== 200);
    expect(failed, JSON.stringify(failed.slice(0, 5))).to.deep.equal([]);
    const wrong = results.filter((r) => !r.pod?.startsWith(`${r.host.split('.')[0]}-`));
    expect(wrong, JSON.stringify(wrong.slice(0, 5))).to.deep.equal([]);
    expect(results.length).to.be.greaterThan(20);
    const woken = await sleepy!;
    expect(woken.status).to.equal(200);
    expect((JSON.parse(woken.body) as { pod: string }).pod).to.match(/^sleepy-/);
  });
  it('API server stopped for 30 s: warm traffic unaffected, a cold request answered within its hold timeout, and all converges after', async () => {
    const warm: number[] = [];
    let frozen: { status: number; ms: number } | undefined;
    await cluster.restartApiServer(async () => {
      const t0 = Date.now();
      const cold = (async () => {
        const start = Date.now();
        const r = await get('frozen.example', '/while-the-api-server-is-away');
        frozen = { status: r.status, ms: Date.now() - start };
      })();
      while (Date.now() - t0 < 30_000) {
        warm.push((await get('warm.example', '/while-the-api-server-is-away')).status);
        await new Promise((r) => setTimeout(r, 1_000));
      }
      await cold;
    });
    expect(warm.length).to.be.greaterThan(20);
    expect(warm.filter((s) => s !== 200), 'warm requests that failed').to.deep.equal([]);
    // No scale-up can be written: held, then answered 503 (wake failed, or the 5 s hold timeout), never left hanging.
    expect(frozen!.status).to.equal(503);
    expect(frozen!.ms).to.be.below(5_000 + 2_000);
    // Back: a change made now reaches the Envoy, and one replica leads again and writes statuses.
    await apply(...appObjects(NS, 'late', 1));
    // Every client of the API server comes back on its own backoff (ours is capped at 30 s; the
    // controller-manager, kwok and the test's pod servers have theirs), so this may take a while.
    await eventually(async () => {
      const r = await get('late.example', '/after');
      expect(r.status, r.body).to.equal(200);
      expect((JSON.parse(r.body) as { pod: string }).pod).to.match(/^late-/);
    }, { timeoutMs: 120_000, intervalMs: 500, what: 'a route created after the outage served' });
    await eventually(async () => {
      expect(['r1', 'r2']).to.include(await holder());
      const route = await client.get(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes/late`);
      const parent = (route.status as { parents?: { controllerName: string; conditions: { type: string; status: string }[] }[] } | undefined)?.parents?.find((x) => x.controllerName === CONTROLLER_NAME);
      expect(parent?.conditions.find((c) => c.type === 'Accepted')?.status).to.equal('True');
    }, { timeoutMs: 120_000, intervalMs: 500, what: 'a leader writing the new route\'s status' });
  });
});
