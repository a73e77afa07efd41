// The Kubernetes test harness itself: a real control plane on loopback (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok) and in-process "pods" on their 127.x pod IPs.
// Run with `npm run test:kube` (needs `bash scripts/k8s-tools.sh` once).
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { eventually } from '../support/eventually.ts';
import { ipInCidr, startKubeCluster, type KubeCluster } from '../support/kube/cluster.ts';
import { isLoopbackIPv4, startPodServers, type PodReply, type PodServers } from '../support/kube/pod-servers.ts';

const NS = 'harness';
const APP = 'echo';
const PORT = 8080;

function getJson(ip: string, port: number, path: string, host = 'echo.test'): Promise<{ status: number; body: PodReply }> {
  if (!isLoopbackIPv4(ip)) throw new Error(`refusing to dial non-loopback ${ip}`);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: ip, port, path, headers: { host }, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as PodReply });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function h2cGet(ip: string, port: number, path: string): Promise<PodReply> {
  if (!isLoopbackIPv4(ip)) throw new Error(`refusing to dial non-loopback ${ip}`);
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${ip}:${port}`);
    session.on('error', reject);
    const req = session.request({ ':path': path, ':authority': 'echo.test' });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      session.close();
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as PodReply);
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
    req.end();
  });
}

function connectRefused(ip: string, port: number): Promise<boolean> {
  if (!isLoopbackIPv4(ip)) throw new Error(`refusing to dial non-loopback ${ip}`);
  return new Promise((resolve) => {
    const s = net.connect({ host: ip, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

const isReady = (p: k8s.V1Pod): boolean =>
  p.status?.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

describe('Kubernetes harness (real API server + kwok + loopback pods)', function () {
  this.timeout(180_000);
  let cluster: KubeCluster;
  let pods: PodServers;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;

  before(async function () {
    this.timeout(240_000);
    const t0 = Date.now();
    // No podCidr: the cluster claims a free 127.X.0.1/16, so concurrent runs on this machine do not collide.
    cluster = await startKubeCluster({ nodes: 2, ...(process.env.KUBE_TEST_POD_CIDR ? { podCidr: process.env.KUBE_TEST_POD_CIDR } : {}) });
    const tUp = Date.now();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    pods = startPodServers({ kubeConfig: kc, namespaces: [NS] });
    await pods.synced;
    console.log(`      cluster up in ${tUp - t0} ms (${cluster.server}, pods from ${cluster.podCidr})`);
  });

  after(async function () {
    this.timeout(60_000);
    await pods?.stop();
    await cluster?.stop();
  });

  it('serves the API on loopback with RBAC on: a token without bindings gets 403', async () => {
    expect(cluster.server).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    const version = await cluster.kubeConfig().makeApiClient(k8s.VersionApi).getCode();
    expect(version.major).to.equal('1');
    expect((await core.listNamespace()).items.map((n) => n.metadata?.name)).to.include('default');

    const nobody = cluster.kubeConfig(cluster.restrictedToken);
    const review = await nobody.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
    expect(review.status?.userInfo?.username).to.equal('nobody');
    let code: number | undefined;
    try {
      await nobody.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'default' });
    } catch (err) {
      code = (err as k8s.ApiException<unknown>).code;
    }
    expect(code).to.equal(403);

    const nodes = await core.listNode();
    expect(nodes.items.map((n) => n.metadata?.name).sort()).to.deep.equal([...cluster.nodeNames].sort());
  });

  it('installs the Gateway API CRDs and they become Established', async () => {
    const names = await cluster.applyCrds();
    for (const want of ['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants']) {
      expect(names).to.include(`${want}.gateway.networking.k8s.io`);
    }
    const ext = cluster.kubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
    for (const name of names) {
      const crd = await ext.readCustomResourceDefinition({ name });
      expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status, name).to.equal('True');
    }
    // And they serve: an HTTPRoute can be created and read back.
    const custom = cluster.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    await custom.createNamespacedCustomObject({
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      namespace: 'default',
      plural: 'httproutes',
      body: {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'probe' },
        spec: { hostnames: ['probe.test'], rules: [{ backendRefs: [{ name: 'probe', port: 80 }] }] },
      },
    });
    const route = (await custom.getNamespacedCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', namespace: 'default', plural: 'httproutes', name: 'probe' })) as { spec: { hostnames: string[] } };
    expect(route.spec.hostnames).to.deep.equal(['probe.test']);
  });

  describe('a Deployment', () => {
    let podIPs: string[] = [];
    let podNames: string[] = [];

    before(async () => {
      await core.createNamespace({ body: { metadata: { name: NS } } });
      // The namespace's default ServiceAccount must exist before the ReplicaSet can create pods.
      await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }), { timeoutMs: 30_000, intervalMs: 100, what: 'default ServiceAccount' });
    });

    it('gets 2 Running+Ready pods with loopback IPs and an EndpointSlice listing both', async () => {
      await core.createNamespacedService({
        namespace: NS,
        body: { metadata: { name: APP }, spec: { selector: { app: APP }, ports: [{ name: 'http', port: 80, targetPort: PORT, protocol: 'TCP' }] } },
      });
      await apps.createNamespacedDeployment({
        namespace: NS,
        body: {
          metadata: { name: APP },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: APP } },
            template: {
              metadata: { labels: { app: APP } },
              spec: { containers: [{ name: APP, image: 'fake.invalid/echo:1', ports: [{ name: 'http', containerPort: PORT }] }] },
            },
          },
        },
      });
      const ready = await eventually(
        async () => {
          const list = await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${APP}` });
          const r = list.items.filter(isReady);
          if (r.length !== 2) throw new Error(`${r.length}/2 ready of ${list.items.length}`);
          return r;
        },
        { timeoutMs: 60_000, intervalMs: 200, what: '2 ready pods' },
      );
      podIPs = ready.map((p) => p.status!.podIP!);
      podNames = ready.map((p) => p.metadata!.name!);
      for (const ip of podIPs) {
        expect(isLoopbackIPv4(ip), ip).to.equal(true);
        expect(ipInCidr(ip, cluster.podCidr), `${ip} in ${cluster.podCidr}`).to.equal(true);
      }
      expect(new Set(podIPs).size).to.equal(2);
      expect(ready.every((p) => cluster.nodeNames.includes(p.spec!.nodeName!))).to.equal(true);

      const discovery = cluster.kubeConfig().makeApiClient(k8s.DiscoveryV1Api);
      await eventually(
        async () => {
          const slices = await discovery.listNamespacedEndpointSlice({ namespace: NS, labelSelector: `kubernetes.io/service-name=${APP}` });
          const endpoints = slices.items.flatMap((s) => s.endpoints ?? []);
          const readyAddrs = endpoints.filter((e) => e.conditions?.ready === true).flatMap((e) => e.addresses);
          expect(readyAddrs.sort()).to.deep.equal([...podIPs].sort());
          expect(slices.items.flatMap((s) => s.ports ?? []).map((p) => p.port)).to.include(PORT);
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'EndpointSlice with both ready endpoints' },
      );
    });

    it('has each pod answered by its own server on podIP:containerPort (HTTP/1.1 and h2c)', async () => {
      for (const name of podNames) {
        const info = await pods.waitForListening(NS, name, 15_000);
        expect(podIPs).to.include(info.ip);
        expect(info.port).to.equal(PORT);
        const reply = await getJson(info.ip, info.port, '/hello?x=1');
        expect(reply.status).to.equal(200);
        expect(reply.body).to.include({ pod: name, namespace: NS, path: '/hello?x=1', method: 'GET', host: 'echo.test', protocol: 'HTTP/1.1' });
        const h2 = await h2cGet(info.ip, info.port, '/two');
        expect(h2).to.include({ pod: name, protocol: 'HTTP/2', path: '/two', host: 'echo.test' });
      }
    });

    it('scaled to 0 through the /scale subresource, loses its pods and their servers', async () => {
      const scale = await apps.readNamespacedDeploymentScale({ name: APP, namespace: NS });
      expect(scale.spec?.replicas).to.equal(2);
      // A JSON Patch with a `test` op: the write only happens if replicas is still 2.
      await apps.patchNamespacedDeploymentScale(
        {
          name: APP,
          namespace: NS,
          body: [
            { op: 'test', path: '/spec/replicas', value: 2 },
            { op: 'replace', path: '/spec/replicas', value: 0 },
          ],
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      );
      await eventually(
        async () => {
          const list = await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${APP}` });
          if (list.items.length !== 0) throw new Error(`${list.items.length} pods left`);
        },
        { timeoutMs: 60_000, intervalMs: 200, what: 'no pods' },
      );
      await pods.waitFor((all) => all.filter((s) => s.namespace === NS).length === 0, 15_000, 'no pod servers');
      for (const ip of podIPs) expect(await connectRefused(ip, PORT), `${ip}:${PORT} refused`).to.equal(true);
      const after = await apps.readNamespacedDeploymentScale({ name: APP, namespace: NS });
      expect(after.spec?.replicas ?? 0).to.equal(0);
    });
  });

  it('kept every control-plane process running throughout', () => {
    expect(cluster.exited()).to.deep.equal([]);
  });
});
