// The xDS certificates in Kubernetes mode on a real API server: two replicas starting at once create one CA
// Secret between them; the leader (only) writes a client certificate Secret per Gateway of our class and
// writes a new one before the old expires (short validity here, so renewals happen within the test). Then
// real Envoys, one per Gateway, read their Gateway's Secret as the kubelet mounts it (files swapped
// atomically as the Secret changes) and get their config over mutual TLS: each only its own Gateway's, and
// certificate rotation under traffic fails no request.
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { secretVolumeSds } from '../../envoy-bootstrap/secret-volume-sds.ts';
import { gatewayGroup } from '../../xds-server/cache/snapshot-cache.ts';
import { startKubernetesControlPlane, type KubernetesControlPlane } from '../../xds-server/kubernetes/control-plane.ts';
import { RestKubeClient, type KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { CA_SECRET_NAME, gatewaySecretName } from '../../xds-server/kubernetes/xds-certificates.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { gatewayIdentity, identityUris } from '../../xds-server/security/pki.ts';
import { eventually } from '../support/eventually.ts';
import type { KubeCluster } from '../support/kube/cluster.ts';
import { applyObjects, startClusterWithPods, waitForGatewayPort } from '../support/kube/gateway-stack.ts';
import { appObjects, gatewayObjects, scaleToZeroPolicy } from '../support/kube/objects.ts';
import type { PodServers } from '../support/kube/pod-servers.ts';
import { syncSecretVolume, type SecretSync } from '../support/kube/secret-sync.ts';
import { secretFiles } from '../support/kube/secret-volume.ts';
import { http1Request } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { FILTER_WASM } from '../support/stack.ts';

const CP_NS = 'scale-to-zero-system';
/** gatewayObjects() names its Gateway "gw" (class "stz"); one app per Gateway, warm. */
const GW_A = { namespace: 'team-a', name: 'gw' };
const GW_B = { namespace: 'team-b', name: 'gw' };
/** Renewed when less than 30 s of 45 s are left: a new certificate about every 15 s. */
const TIMING = { certValidForMs: 45_000, renewBeforeMs: 30_000, checkIntervalMs: 1_000 };

function gateway(gw: { namespace: string; name: string }, port: number): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: gw.namespace } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: gw.name, namespace: gw.namespace },
      spec: { gatewayClassName: 'stz', listeners: [{ name: 'http', protocol: 'HTTP', port }] },
    },
  ];
}

/** Envoy's loaded client certificates' serial numbers (GET /certs), normalised like node's. */
async function envoyCertSerials(envoy: EnvoyProcess): Promise<string[]> {
  const body = (await (await envoy.admin('/certs')).json()) as { certificates?: { cert_chain?: { serial_number?: string }[] }[] };
  return (body.certificates ?? []).flatMap((c) => (c.cert_chain ?? []).map((x) => (x.serial_number ?? '').toUpperCase().replace(/^0+/, '')));
}

/** A wake call as the filter makes it, on the mTLS wake port, with the given client certificate (or none). */
function wakeCall(port: number, host: string, cert: { cert: string; key: string } | undefined, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method: 'POST', path: `/v1/wake/${host}`, ca, ...(cert ?? {}), checkServerIdentity: () => undefined, agent: false, timeout: 10_000 },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end();
  });
}

const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber.toUpperCase().replace(/^0+/, '');

describe('xDS certificates in Kubernetes mode on a real API server', function () {
  this.timeout(180_000);
  let cluster: KubeCluster;
  let admin: RestKubeClient;
  let pods: PodServers;
  let tmp: string;
  const ports: Record<string, number> = {};
  const replicas: KubernetesControlPlane[] = [];
  const closed = new Set<KubernetesControlPlane>();
  const envoys: Record<string, EnvoyProcess> = {};
  const syncs: Record<string, SecretSync> = {};
  const secretPath = (name: string): string => `/api/v1/namespaces/${CP_NS}/secrets/${name}`;

  before(async function () {
    this.timeout(240_000);
    ({ cluster, client: admin, pods } = await startClusterWithPods());
    tmp = await mkdtemp(path.join(os.tmpdir(), 'stz-xds-certs-'));
    ports.a = await freePort();
    ports.b = await freePort();
    await applyObjects(
      admin,
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: CP_NS } },
      ...gatewayObjects(GW_A.namespace, ports.a),
      ...gatewayObjects(GW_B.namespace, ports.b),
      ...appObjects(GW_A.namespace, 'a', 1),
      ...appObjects(GW_B.namespace, 'b', 1),
      scaleToZeroPolicy(GW_A.namespace, 'a'),
      scaleToZeroPolicy(GW_B.namespace, 'b'),
    );
  });

  after(async function () {
    this.timeout(60_000);
    for (const s of Object.values(syncs)) await s.stop();
    for (const e of Object.values(envoys)) await e.stop().catch(() => {});
    for (const r of replicas) if (!closed.has(r)) await r.close().catch(() => {});
    await pods?.stop().catch(() => {});
    await cluster?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** An Envoy for a Gateway: its certificate from the Gateway's Secret, mounted as the kubelet would. */
  async function startGatewayEnvoy(key: string, gw: { namespace: string; name: string }, servers: KubernetesControlPlane[]): Promise<EnvoyProcess> {
    const dir = path.join(tmp, key);
    const secretDir = path.join(dir, 'secret');
    await mkdir(dir, { recursive: true });
    syncs[key] = syncSecretVolume(admin, CP_NS, gatewaySecretName(gw), secretDir);
    await syncs[key].ready;
    const sds = secretVolumeSds(secretDir);
    const files = { certificateSds: path.join(dir, 'sds-certificate.json'), caSds: path.join(dir, 'sds-ca.json') };
    await writeFile(files.certificateSds, JSON.stringify(sds.certificate));
    await writeFile(files.caSds, JSON.stringify(sds.ca));
    const [first, ...more] = servers.map((r) => ({ address: '127.0.0.1', port: r.xdsPort }));
    envoys[key] = await startEnvoy({
      bootstrap: renderBootstrap({ nodeId: `xds-certs-${key}-${process.pid}`, xdsAddress: first!.address, xdsPort: first!.port, moreXdsEndpoints: more, xdsTls: files }),
      concurrency: 1,
      logLevel: 'warning',
    });
    return envoys[key];
  }

  const listenerPorts = async (envoy: EnvoyProcess): Promise<number[]> => {
    const body = (await (await envoy.admin('/listeners?format=json')).json()) as { listener_statuses?: { local_address?: { socket_address?: { port_value?: number } } }[] };
    return (body.listener_statuses ?? []).map((l) => l.local_address?.socket_address?.port_value ?? 0).sort();
  };

  // The snapshot's wake cluster names one pair of SDS files for every Envoy (in a pod they are always at the
  // same path); here both Envoys run on one machine, so it names A's (no wake call goes through Envoy here:
  // the wake port is called directly below, with each Gateway's certificate).
  const start = (identity: string, xdsPort?: number): Promise<KubernetesControlPlane> =>
    startKubernetesControlPlane({
      ...(xdsPort !== undefined ? { xdsPort } : {}),
        client: new RestKubeClient(cluster.kubeConfig(), identity),
        filterWasmPath: FILTER_WASM,
        log: silentLogger,
        leaderElection: { namespace: CP_NS, identity, timing: { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 } },
      xdsCertificates: { namespace: CP_NS, serverNames: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }, timing: TIMING, wakePort: 0, envoySdsFiles: { certificateSds: path.join(tmp, 'a', 'sds-certificate.json'), caSds: path.join(tmp, 'a', 'sds-ca.json') } },
    });

  it('two replicas starting at once create one CA Secret and both use it', async () => {
    replicas.push(...(await Promise.all([start('replica-a'), start('replica-b')])));
    const secret = await admin.get(secretPath(CA_SECRET_NAME));
    const caPem = secretFiles(secret)['tls.crt']!;
    expect(new X509Certificate(caPem).ca).to.equal(true);
    for (const r of replicas) {
      expect(r.certificates!.caCertPem).to.equal(caPem);
      const server = new X509Certificate(r.certificates!.server.current().certPem);
      expect(server.verify(new X509Certificate(caPem).publicKey)).to.equal(true);
      expect(server.subjectAltName).to.include('IP Address:127.0.0.1');
    }
    // One create won; the Secret was never replaced.
    expect(secret.metadata.resourceVersion).to.equal((await admin.get(secretPath(CA_SECRET_NAME))).metadata.resourceVersion);
  });

  it('the leader writes one client certificate Secret per Gateway, naming that Gateway and issued by the CA', async () => {
    const caPem = replicas[0]!.certificates!.caCertPem;
    for (const gw of [GW_A, GW_B]) {
      await eventually(
        async () => {
          const files = secretFiles(await admin.get(secretPath(gatewaySecretName(gw))));
          expect(identityUris(files['tls.crt']!)).to.deep.equal([gatewayIdentity(gw.namespace, gw.name)]);
          expect(files['ca.crt']).to.equal(caPem);
          expect(new X509Certificate(files['tls.crt']!).verify(new X509Certificate(caPem).publicKey)).to.equal(true);
        },
        { timeoutMs: 30_000, what: `the certificate Secret of ${gw.namespace}/${gw.name}` },
      );
    }
    // Written by whoever led at the time (a loaded machine can move the 3 s Lease between the two; that a
    // follower writes nothing is proven on a fake clock in test/unit/kubernetes-runtime/xds-certificates.test.ts).
    // A writer counts its Secret once the API server's answer has reached it, which can be just after this
    // test read the Secret back.
    await eventually(
      async () => {
        expect(replicas.reduce((n, r) => n + r.certificates!.gateways.stats.issued, 0)).to.be.at.least(2);
      },
      { timeoutMs: 10_000, what: 'both Secrets counted as issued' },
    );
    expect(replicas.reduce((n, r) => n + r.certificates!.gateways.stats.failures, 0)).to.equal(0);
  });

  it('before a certificate expires, its Secret gets a new one (an update of the same Secret)', async () => {
    const name = gatewaySecretName(GW_A);
    const before = await admin.get(secretPath(name));
    const oldCert = new X509Certificate(secretFiles(before)['tls.crt']!);
    await eventually(
      async () => {
        const now = await admin.get(secretPath(name));
        expect(now.metadata.uid).to.equal(before.metadata.uid);
        const cert = new X509Certificate(secretFiles(now)['tls.crt']!);
        expect(cert.serialNumber).to.not.equal(oldCert.serialNumber);
        expect(Date.parse(cert.validTo)).to.be.greaterThan(Date.parse(oldCert.validTo));
      },
      { timeoutMs: 40_000, what: 'a renewed certificate in the Secret' },
    );
  });

  it('a new Gateway gets its Secret without waiting for a restart', async () => {
    const gwC = { namespace: 'team-c', name: 'edge' };
    await applyObjects(admin, ...gateway(gwC, await freePort()));
    await eventually(async () => expect(identityUris(secretFiles(await admin.get(secretPath(gatewaySecretName(gwC))))['tls.crt']!)).to.deep.equal([gatewayIdentity(gwC.namespace, gwC.name)]), {
      timeoutMs: 30_000,
      what: 'the new Gateway\'s Secret',
    });
  });

  it('each Gateway\'s Envoy, with the certificate from its Gateway\'s Secret, gets config over mutual TLS: only its own Gateway\'s listeners', async () => {
    // A knows one replica (the rotation test replaces it, so A must open a new connection); B knows both.
    const a = await startGatewayEnvoy('a', GW_A, [replicas[0]!]);
    const b = await startGatewayEnvoy('b', GW_B, replicas);
    await waitForGatewayPort(a, ports.a!);
    await waitForGatewayPort(b, ports.b!);
    expect(await listenerPorts(a)).to.deep.equal([ports.a]);
    expect(await listenerPorts(b)).to.deep.equal([ports.b]);
    // Each presents its own Gateway's certificate, the one in the Secret. Polled: a certificate is renewed about
    // every 15 s here, and one renewed just before the check takes the volume sync and Envoy's file watch to load.
    for (const [envoy, gw] of [[a, GW_A], [b, GW_B]] as const) {
      await eventually(
        async () => {
          const secretCert = secretFiles(await admin.get(secretPath(gatewaySecretName(gw))))['tls.crt']!;
          expect(await envoyCertSerials(envoy)).to.include(serialOf(secretCert));
        },
        { timeoutMs: 10_000, intervalMs: 200, what: `Envoy for ${gw.namespace}/${gw.name} presenting its Secret's certificate` },
      );
    }
    // Each control plane sees the Envoy that connected to it pinned to that Gateway.
    const nodes = replicas.flatMap((r) => r.ads.connected.map((s) => s.status()));
    expect(nodes.find((n) => n.nodeId.startsWith('xds-certs-a-'))?.group).to.equal(gatewayGroup(`${GW_A.namespace}/${GW_A.name}`));
    expect(nodes.find((n) => n.nodeId.startsWith('xds-certs-b-'))?.group).to.equal(gatewayGroup(`${GW_B.namespace}/${GW_B.name}`));
    // Traffic flows: Envoy A routes a.example to the pod of app a; B's host is not on A's listener.
    const r = await http1Request({ port: ports.a!, host: 'a.example', path: '/x' });
    expect(r.status, r.body).to.equal(200);
    expect((JSON.parse(r.body) as { namespace: string }).namespace).to.equal(GW_A.namespace);
    expect((await http1Request({ port: ports.a!, host: 'b.example', path: '/x' })).status).to.equal(404);
  });

  it('the wake port: Gateway A\'s certificate (from its Secret) may wake A\'s backend, not B\'s; no certificate, nothing', async () => {
    const cp = replicas[0]!;
    const port = cp.wakePort!;
    expect(port).to.be.a('number');
    const a = secretFiles(await admin.get(secretPath(gatewaySecretName(GW_A))));
    const b = secretFiles(await admin.get(secretPath(gatewaySecretName(GW_B))));
    const hostA = `${GW_A.namespace}-a-80`;
    const hostB = `${GW_B.namespace}-b-80`;
    const aCert = { cert: a['tls.crt']!, key: a['tls.key']! };
    expect((await wakeCall(port, hostA, aCert, a['ca.crt']!)).status).to.equal(202);
    const refused = await wakeCall(port, hostB, aCert, a['ca.crt']!);
    expect(refused.status, refused.body).to.equal(403);
    expect(JSON.parse(refused.body)).to.include({ error: 'forbidden' });
    expect((await wakeCall(port, hostB, { cert: b['tls.crt']!, key: b['tls.key']! }, b['ca.crt']!)).status).to.equal(202);
    const anonymous = await wakeCall(port, hostA, undefined, a['ca.crt']!).catch((err: Error) => ({ status: 0, body: err.message }));
    expect(anonymous.status).to.not.equal(202);
  });

  it('rotation under traffic: the Secret renewed twice and swapped into the Envoy\'s files, its control plane replaced (Envoy reconnects with its renewed certificate): no failed request', async () => {
    const envoy = envoys.a!;
    const sync = syncs.a!;
    const writesAtStart = sync.writes();
    const handshakesAtStart = (await envoy.stats('cluster.xds_control_plane.ssl.handshake')).get('cluster.xds_control_plane.ssl.handshake') ?? 0;
    let ok = 0;
    const failures: string[] = [];
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        try {
          const r = await http1Request({ port: ports.a!, host: 'a.example', path: '/rotation', timeoutMs: 10_000 });
          if (r.status === 200) ok++;
          else failures.push(`${r.status} ${r.body.slice(0, 200)}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    })();
    try {
      // Two renewals reach the Envoy's files, and Envoy loads the latest certificate.
      await eventually(
        async () => {
          expect(sync.writes() - writesAtStart).to.be.at.least(2);
          const latest = secretFiles(await admin.get(secretPath(gatewaySecretName(GW_A))))['tls.crt']!;
          expect(await envoyCertSerials(envoy)).to.include(serialOf(latest));
        },
        { timeoutMs: 60_000, intervalMs: 500, what: 'two certificate renewals loaded by Envoy A' },
      );
      // Envoy A's only replica is replaced (same port): A must open a new connection, so a new handshake,
      // and the only client certificate it has loaded is the renewed one.
      const serving = replicas[0]!;
      closed.add(serving);
      await serving.close();
      const replacement = await start('replica-a2', serving.xdsPort);
      replicas.push(replacement);
      await eventually(async () => expect(replacement.ads.connected.some((s) => s.nodeId.startsWith('xds-certs-a-'))).to.equal(true), {
        timeoutMs: 30_000,
        what: 'Envoy A streaming from the replacement replica',
      });
      const latest = secretFiles(await admin.get(secretPath(gatewaySecretName(GW_A))))['tls.crt']!;
      expect([...new Set(await envoyCertSerials(envoy))]).to.deep.equal([serialOf(latest)]);
      const handshakes = (await envoy.stats('cluster.xds_control_plane.ssl.handshake')).get('cluster.xds_control_plane.ssl.handshake') ?? 0;
      expect(handshakes).to.be.greaterThan(handshakesAtStart);
      // Keep the traffic going a little past the reconnect.
      await new Promise((r) => setTimeout(r, 2_000));
    } finally {
      stop = true;
      await loop;
    }
    expect(failures, `${failures.length} failed of ${ok + failures.length}`).to.deep.equal([]);
    expect(ok).to.be.greaterThan(50);
  });
});
