// The admin API in Kubernetes mode against a real API server: callers send ServiceAccount tokens minted by
// the TokenRequest API; the control plane asks TokenReview who they are and SubjectAccessReview whether RBAC
// (the example ClusterRoles shipped in deploy/rbac.yaml, bound here as a user would) lets them make the call.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { DEPLOY_DIR } from '../../deploy/render-bootstrap.ts';
import { startKubernetesControlPlane, type KubernetesControlPlane } from '../../xds-server/kubernetes/control-plane.ts';
import { RestKubeClient, type KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { eventually } from '../support/eventually.ts';
import { startKubeCluster, type KubeCluster } from '../support/kube/cluster.ts';
import { applyObjects, OUR_CRD_DIR } from '../support/kube/gateway-stack.ts';
import { appObjects, gatewayObjects, scaleToZeroPolicy } from '../support/kube/objects.ts';
import { serviceAccountToken } from '../support/kube/service-account.ts';
import { freePort } from '../support/ports.ts';
import { FILTER_WASM } from '../support/stack.ts';

const APP_NS = 'demo';
const OTHER_NS = 'shop';
const OPS_NS = 'ops';
const HOST = `${APP_NS}-hello-80`;
const OTHER_HOST = `${OTHER_NS}-cart-80`;
/** Short, so that a removed binding is seen to stop working within the test. */
const TTL_MS = 1_000;

interface ErrorBody {
  error: string;
  message: string;
  required?: Record<string, string>;
}

describe('admin API in Kubernetes mode: TokenReview + SubjectAccessReview on a real API server', function () {
  this.timeout(180_000);
  let cluster: KubeCluster;
  let admin: RestKubeClient;
  let cp: KubernetesControlPlane;
  const tokens: Record<string, string> = {};

  const call = async (method: 'GET' | 'POST', p: string, token?: string): Promise<{ status: number; body: unknown }> => {
    const r = await fetch(cp.adminUrl + p, {
      method,
      headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
      ...(method === 'POST' ? { body: '{}' } : {}),
    });
    return { status: r.status, body: await r.json() };
  };

  before(async function () {
    this.timeout(240_000);
    cluster = await startKubeCluster();
    admin = new RestKubeClient(cluster.kubeConfig(), 'stz-test');
    await cluster.applyCrds();
    await cluster.applyCrds(OUR_CRD_DIR);
    const port = await freePort();
    await applyObjects(
      admin,
      ...gatewayObjects(APP_NS, port),
      ...appObjects(APP_NS, 'hello', 0),
      scaleToZeroPolicy(APP_NS, 'hello'),
      ...gatewayObjects(OTHER_NS, await freePort()),
      ...appObjects(OTHER_NS, 'cart', 0),
      scaleToZeroPolicy(OTHER_NS, 'cart'),
    );
    // The example roles exactly as deploy/rbac.yaml ships them.
    const shipped = parseAllDocuments(readFileSync(path.join(DEPLOY_DIR, 'rbac.yaml'), 'utf8'))
      .map((d) => d.toJS() as KubeObject)
      .filter((o) => o?.kind === 'ClusterRole' && /^envoy-scale-to-zero-(admin-viewer|host-operator)$/.test(o.metadata.name));
    expect(shipped.map((o) => o.metadata.name).sort()).to.deep.equal(['envoy-scale-to-zero-admin-viewer', 'envoy-scale-to-zero-host-operator']);
    for (const role of shipped) await admin.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', role);
    await admin.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPS_NS } });
    for (const sa of ['operator', 'viewer', 'nobody']) {
      await admin.request('POST', `/api/v1/namespaces/${OPS_NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } });
      tokens[sa] = await serviceAccountToken(admin, OPS_NS, sa);
    }
    // The operator may act on demo's hosts only (a RoleBinding there); the viewer reads everything.
    await admin.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${APP_NS}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'operator-hosts' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'envoy-scale-to-zero-host-operator' },
      subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: OPS_NS }],
    });
    await admin.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'viewer-admin-api' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'envoy-scale-to-zero-admin-viewer' },
      subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: OPS_NS }],
    });
    cp = await startKubernetesControlPlane({ client: admin, filterWasmPath: FILTER_WASM, log: silentLogger, adminRbac: { timing: { ttlMs: TTL_MS } } });
    await eventually(async () => expect(cp.state.find(HOST)?.held).to.equal(true), { what: `${HOST} known and held` });
    await eventually(async () => expect(cp.state.find(OTHER_HOST)?.held).to.equal(true), { what: `${OTHER_HOST} known and held` });
  });

  after(async function () {
    this.timeout(60_000);
    await cp?.close().catch(() => {});
    await cluster?.stop();
  });

  it('no token, a made-up token, or a real one with a broken signature: 401 (JSON, WWW-Authenticate: Bearer)', async () => {
    for (const token of [undefined, 'not-a-token', `${tokens.operator!.slice(0, -4)}AAAA`]) {
      for (const [method, p] of [['GET', '/v1/hosts'], ['POST', `/v1/hosts/${HOST}/wake`], ['GET', '/v1/status']] as const) {
        const r = await call(method, p, token);
        expect(r.status, `${method} ${p} with ${token === undefined ? 'no token' : 'a bad token'}`).to.equal(401);
        expect((r.body as ErrorBody).error).to.equal('unauthorized');
      }
    }
    // The public routes stay public.
    expect((await call('GET', '/healthz')).status).to.equal(200);
  });

  it('a ServiceAccount without the RBAC verb: 403 naming the verb and resource it lacks', async () => {
    const wake = await call('POST', `/v1/hosts/${HOST}/wake`, tokens.nobody);
    expect(wake.status).to.equal(403);
    expect(wake.body).to.deep.include({ error: 'forbidden', required: { group: 'scaletozero.dev', resource: 'hosts', verb: 'wake', namespace: APP_NS, name: HOST } });
    expect((wake.body as ErrorBody).message).to.include(`system:serviceaccount:${OPS_NS}:nobody may not wake hosts.scaletozero.dev "${HOST}" in namespace "${APP_NS}"`);
    const list = await call('GET', '/v1/hosts', tokens.nobody);
    expect(list.status).to.equal(403);
    expect((list.body as ErrorBody).required).to.deep.equal({ group: 'scaletozero.dev', resource: 'hosts', verb: 'list' });
    // The viewer reads but may not act.
    expect((await call('GET', '/v1/hosts', tokens.viewer)).status).to.equal(200);
    expect((await call('GET', '/v1/snapshot', tokens.viewer)).status).to.equal(200);
    const viewerMarks = await call('POST', `/v1/hosts/${HOST}/scale-to-zero`, tokens.viewer);
    expect(viewerMarks.status).to.equal(403);
    expect((viewerMarks.body as ErrorBody).required).to.deep.include({ verb: 'update', resource: 'hosts' });
    // The static user "nobody" of the API server's token file: authenticated, bound to nothing.
    expect((await call('GET', `/v1/hosts/${HOST}`, cluster.restrictedToken)).status).to.equal(403);
  });

  it('with the verb (a RoleBinding in the host\'s namespace): 200; the same ServiceAccount on another namespace\'s host, or listing all hosts: 403', async () => {
    const get = await call('GET', `/v1/hosts/${HOST}`, tokens.operator);
    expect(get.status, JSON.stringify(get.body)).to.equal(200);
    expect((get.body as { name: string }).name).to.equal(HOST);
    const mark = await call('POST', `/v1/hosts/${HOST}/scale-to-zero`, tokens.operator);
    expect(mark.status, JSON.stringify(mark.body)).to.equal(200);
    expect((mark.body as { host: { state: string } }).host.state).to.equal('scaled_to_zero');
    const other = await call('POST', `/v1/hosts/${OTHER_HOST}/scale-to-zero`, tokens.operator);
    expect(other.status).to.equal(403);
    expect((other.body as ErrorBody).required).to.deep.include({ namespace: OTHER_NS, name: OTHER_HOST, verb: 'update' });
    expect((await call('GET', '/v1/hosts', tokens.operator)).status).to.equal(403);
  });

  it('a removed RoleBinding stops working once the cached answer expires', async () => {
    expect((await call('GET', `/v1/hosts/${HOST}`, tokens.operator)).status).to.equal(200);
    await admin.request('DELETE', `/apis/rbac.authorization.k8s.io/v1/namespaces/${APP_NS}/rolebindings/operator-hosts`, undefined);
    await eventually(async () => expect((await call('GET', `/v1/hosts/${HOST}`, tokens.operator)).status).to.equal(403), {
      timeoutMs: TTL_MS + 10_000,
      what: 'the operator refused after its RoleBinding went',
    });
  });

  it('the OpenAPI document says which permission each route needs', async () => {
    const doc = (await call('GET', '/openapi.json')).body as { paths: Record<string, Record<string, { 'x-kubernetes-rbac'?: unknown; responses: Record<string, unknown> }>> };
    const wake = doc.paths['/v1/hosts/{name}/wake']!.post!;
    expect(wake['x-kubernetes-rbac']).to.deep.equal({ group: 'scaletozero.dev', verb: 'wake', resource: 'hosts' });
    expect(Object.keys(wake.responses)).to.include.members(['401', '403']);
    expect(doc.paths['/v1/wake/{name}']!.post!['x-kubernetes-rbac']).to.equal(undefined);
  });
});
