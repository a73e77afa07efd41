// The xDS certificates in Kubernetes mode on a real API server: two replicas starting at once create one CA
// Secret between them; the leader (only) writes a client certificate Secret per Gateway of our class and
// writes a new one before the old expires (short validity here, so renewals happen within the test).
import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { startKubernetesControlPlane, type KubernetesControlPlane } from '../../xds-server/kubernetes/control-plane.ts';
import { RestKubeClient, type KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { CA_SECRET_NAME, gatewaySecretName } from '../../xds-server/kubernetes/xds-certificates.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { gatewayIdentity, identityUris } from '../../xds-server/security/pki.ts';
import { eventually } from '../support/eventually.ts';
import { startKubeCluster, type KubeCluster } from '../support/kube/cluster.ts';
import { applyObjects, CONTROLLER_NAME, OUR_CRD_DIR } from '../support/kube/gateway-stack.ts';
import { secretFiles } from '../support/kube/secret-volume.ts';
import { freePort } from '../support/ports.ts';
import { FILTER_WASM } from '../support/stack.ts';

const CP_NS = 'scale-to-zero-system';
const GW_A = { namespace: 'team-a', name: 'edge' };
const GW_B = { namespace: 'team-b', name: 'edge' };
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

describe('xDS certificates in Kubernetes mode on a real API server', function () {
  this.timeout(180_000);
  let cluster: KubeCluster;
  let admin: RestKubeClient;
  const replicas: KubernetesControlPlane[] = [];
  const secretPath = (name: string): string => `/api/v1/namespaces/${CP_NS}/secrets/${name}`;

  before(async function () {
    this.timeout(240_000);
    cluster = await startKubeCluster();
    admin = new RestKubeClient(cluster.kubeConfig(), 'stz-test');
    await cluster.applyCrds();
    await cluster.applyCrds(OUR_CRD_DIR);
    await applyObjects(
      admin,
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: CP_NS } },
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'stz' }, spec: { controllerName: CONTROLLER_NAME } },
      ...gateway(GW_A, await freePort()),
      ...gateway(GW_B, await freePort()),
    );
  });

  after(async function () {
    this.timeout(60_000);
    for (const r of replicas) await r.close().catch(() => {});
    await cluster?.stop();
  });

  it('two replicas starting at once create one CA Secret and both use it', async () => {
    const start = (identity: string): Promise<KubernetesControlPlane> =>
      startKubernetesControlPlane({
        client: new RestKubeClient(cluster.kubeConfig(), identity),
        filterWasmPath: FILTER_WASM,
        log: silentLogger,
        leaderElection: { namespace: CP_NS, identity, timing: { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 } },
        xdsCertificates: { namespace: CP_NS, serverNames: { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }, timing: TIMING },
      });
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

  it('the leader writes one client certificate Secret per Gateway, naming that Gateway and issued by the CA; the follower writes none', async () => {
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
    const leader = replicas.find((r) => r.isLeader())!;
    const follower = replicas.find((r) => !r.isLeader())!;
    expect(leader.certificates!.gateways.stats.issued).to.be.at.least(2);
    expect(follower.certificates!.gateways.stats.issued).to.equal(0);
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
});
