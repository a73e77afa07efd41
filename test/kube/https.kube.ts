// Kubernetes mode, HTTPS: a Gateway's HTTPS listener terminates TLS with the certificate of a kubernetes.io/tls
// Secret (a self-signed one made here with openssl), picked by SNI; the route behind it is served like on HTTP.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { eventually } from '../support/eventually.ts';
import { CONTROLLER_NAME, startGatewayStack, waitForGatewayPort, type GatewayStack } from '../support/kube/gateway-stack.ts';
import { freePort } from '../support/ports.ts';

const NS = 'secure';
const HOST = 'secure.example';

interface Condition {
  type: string;
  status: string;
  reason: string;
}
const condition = (conditions: Condition[] | undefined, type: string): Condition | undefined => conditions?.find((c) => c.type === type);

/** A self-signed certificate for `host` (its own CA), with its key. */
function selfSigned(host: string): { cert: string; key: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'stz-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', path.join(dir, 'tls.key'), '-out', path.join(dir, 'tls.crt'), '-days', '2',
      '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`,
    ], { stdio: 'pipe' });
    return { cert: readFileSync(path.join(dir, 'tls.crt'), 'utf8'), key: readFileSync(path.join(dir, 'tls.key'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GET over TLS to 127.0.0.1:port with SNI `servername`, trusting only `ca`. */
function httpsGet(port: number, servername: string, ca: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, servername, ca, path: urlPath, headers: { host: servername }, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('Kubernetes mode: an HTTPS listener terminating TLS with a Secret\'s certificate', function () {
  this.timeout(180_000);
  let stack: GatewayStack;
  let port: number;
  const tls = selfSigned(HOST);

  before(async () => {
    stack = await startGatewayStack({});
    port = await freePort();
    await stack.apply(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'stz-tls' }, spec: { controllerName: CONTROLLER_NAME } },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'secure-cert', namespace: NS },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': Buffer.from(tls.cert).toString('base64'), 'tls.key': Buffer.from(tls.key).toString('base64') },
      } as KubeObject,
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'gw', namespace: NS },
        spec: {
          gatewayClassName: 'stz-tls',
          listeners: [{ name: 'https', protocol: 'HTTPS', port, hostname: HOST, tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: 'secure-cert' }] } }],
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: NS },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'example.invalid/app:1', ports: [{ containerPort: 8080 }] }] } },
        },
      },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'web', namespace: NS },
        spec: { parentRefs: [{ name: 'gw' }], hostnames: [HOST], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] },
      },
    );
    await waitForGatewayPort(stack.envoy, port);
  });
  after(async () => {
    await stack?.close();
  });

  it('programs the Gateway and its HTTPS listener (ResolvedRefs True, one route attached)', async () => {
    await eventually(async () => {
      const gw = await stack.get(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways/gw`);
      const status = gw.status as { conditions?: Condition[]; listeners?: { name: string; attachedRoutes: number; conditions: Condition[] }[] };
      expect(condition(status.conditions, 'Accepted')?.status).to.equal('True');
      expect(condition(status.conditions, 'Programmed')?.status).to.equal('True');
      const listener = status.listeners?.find((l) => l.name === 'https');
      expect(condition(listener?.conditions, 'Programmed')?.status).to.equal('True');
      expect(condition(listener?.conditions, 'ResolvedRefs')?.status).to.equal('True');
      expect(listener?.attachedRoutes).to.equal(1);
    }, { timeoutMs: 20_000, what: 'Gateway Programmed' });
  });

  it('answers an HTTPS request with SNI secure.example from the pod, with the Secret\'s certificate', async () => {
    await eventually(async () => {
      const r = await httpsGet(port, HOST, tls.cert, '/hello');
      expect(r.status, r.body).to.equal(200);
      const body = JSON.parse(r.body) as { pod: string; namespace: string; path: string };
      expect(body.namespace).to.equal(NS);
      expect(body.pod).to.match(/^web-/);
      expect(body.path).to.equal('/hello');
    }, { timeoutMs: 30_000, what: 'a 200 over HTTPS from the pod' });
  });

  it('has no certificate for another server name (no default chain: the handshake fails)', async () => {
    const err = await httpsGet(port, 'other.example', tls.cert, '/').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err, 'the handshake must fail').to.be.instanceOf(Error);
  });

  it('never shows the private key in the admin API\'s snapshot', async () => {
    const text = await (await stack.adminFetch('/v1/snapshot')).text();
    expect(text).to.include('[redacted]');
    expect(text).to.not.include(tls.key.split('\n')[1]!);
  });
});
