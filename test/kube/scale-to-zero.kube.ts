// Kubernetes mode end to end: a real API server, controller-manager, scheduler and etcd, kwok pods with
// loopback IPs served by local processes, our control plane in Kubernetes mode and the real Envoy.
import { expect } from 'chai';
import WebSocket from 'ws';
import { grpcEcho, isGrpcError } from '../../upstream/grpc-client.ts';
import type { KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import { CONTROLLER_NAME, startGatewayStack, waitForGatewayPort, type GatewayStack } from '../support/kube/gateway-stack.ts';
import { freePort } from '../support/ports.ts';

const NS = 'shop';

function deployment(name: string, replicas: number, annotations: Record<string, string> = {}, namespace = NS, port = 8080): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations },
        spec: { containers: [{ name: 'app', image: 'example.invalid/app:1', ports: [{ containerPort: port }] }] },
      },
    },
  };
}

function service(name: string, appProtocol?: string, namespace = NS): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080, ...(appProtocol ? { appProtocol } : {}) }] },
  };
}

function policy(name: string, target: string, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'scaletozero.dev/v1alpha1',
    kind: 'ScaleToZeroPolicy',
    metadata: { name, namespace: NS },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: target }],
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target },
      holdTimeoutMs: 30_000,
      wakeTimeoutMs: 25_000,
      idleAfterMs: 0,
      ...extra,
    },
  };
}

function httpRoute(name: string, hostname: string, backends: { name: string; weight?: number; namespace?: string }[]): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: NS },
    spec: {
      parentRefs: [{ name: 'gw' }],
      hostnames: [hostname],
      rules: [{ backendRefs: backends.map((b) => ({ name: b.name, port: 80, ...(b.weight !== undefined ? { weight: b.weight } : {}), ...(b.namespace ? { namespace: b.namespace } : {}) })) }],
    },
  };
}

interface Condition {
  type: string;
  status: string;
  reason: string;
}
const condition = (conditions: Condition[] | undefined, type: string): Condition | undefined => conditions?.find((c) => c.type === type);

describe('Kubernetes mode: Gateway API + ScaleToZeroPolicy on a real API server and a real Envoy', function () {
  this.timeout(180_000);
  let stack: GatewayStack;
  let port: number;

  before(async () => {
    // Short informer backoff: the API server restart test must not wait out a 30 s retry.
    stack = await startGatewayStack({ controlPlane: { scaling: { idleCheckIntervalMs: 200, loadReportIntervalMs: 200 }, state: { informer: { backoffMaxMs: 1_000 } } } });
    port = await freePort();
    await stack.apply(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'stz' }, spec: { controllerName: CONTROLLER_NAME } },
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'gw', namespace: NS },
        spec: { gatewayClassName: 'stz', listeners: [{ name: 'http', protocol: 'HTTP', port, allowedRoutes: { namespaces: { from: 'All' } } }] },
      },
      deployment('cart', 0),
      service('cart'),
      httpRoute('cart', 'cart.example', [{ name: 'cart' }]),
      policy('cart', 'cart'),
    );
    await waitForGatewayPort(stack.envoy, port);
  });
  after(async () => {
    await stack?.close();
  });

  const cart = (path: string) => http1Request({ port, host: 'cart.example', path, timeoutMs: 30_000 });

  it('writes the statuses a user reads with kubectl: class Accepted, Gateway Programmed, route Accepted and ResolvedRefs, policy Accepted', async () => {
    await eventually(async () => {
      const gc = await stack.get('/apis/gateway.networking.k8s.io/v1/gatewayclasses/stz');
      expect(condition((gc.status as { conditions?: Condition[] })?.conditions, 'Accepted')?.status).to.equal('True');
      const gw = await stack.get(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways/gw`);
      const gws = gw.status as { conditions?: Condition[]; addresses?: { value: string }[]; listeners?: { attachedRoutes: number }[] };
      expect(condition(gws.conditions, 'Programmed')?.status).to.equal('True');
      expect(gws.addresses?.[0]?.value).to.equal('127.0.0.1');
      expect(gws.listeners?.[0]?.attachedRoutes).to.equal(1);
      const route = await stack.get(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes/cart`);
      const parent = (route.status as { parents?: { controllerName: string; conditions: Condition[] }[] }).parents?.find((p) => p.controllerName === CONTROLLER_NAME);
      expect(condition(parent?.conditions, 'Accepted')?.status).to.equal('True');
      expect(condition(parent?.conditions, 'ResolvedRefs')?.status).to.equal('True');
      const pol = await stack.get(`/apis/scaletozero.dev/v1alpha1/namespaces/${NS}/scaletozeropolicies/cart`);
      const ancestors = (pol.status as { ancestors?: { conditions: Condition[] }[] } | undefined)?.ancestors ?? [];
      expect(condition(ancestors[0]?.conditions, 'Accepted')?.status).to.equal('True');
    }, { timeoutMs: 20_000, what: 'statuses written' });
  });

  it('holds 100 concurrent requests for a Deployment at 0, scales it up once, and answers all 100 from the pod', async () => {
    const before = await stack.get(`/apis/apps/v1/namespaces/${NS}/deployments/cart`);
    expect((before.spec as { replicas: number }).replicas).to.equal(0);
    const generation = before.metadata.generation!;
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => cart(`/item/${i}`)));
    for (const [i, r] of replies.entries()) {
      expect(r.status, `request ${i}: ${r.body}`).to.equal(200);
      const body = JSON.parse(r.body) as { pod: string; namespace: string; path: string };
      expect(body.namespace).to.equal(NS);
      expect(body.pod).to.match(/^cart-/);
      expect(body.path).to.equal(`/item/${i}`);
    }
    const after = await stack.get(`/apis/apps/v1/namespaces/${NS}/deployments/cart`);
    expect((after.spec as { replicas: number }).replicas).to.equal(1);
    // Exactly one write of the spec: the generation moved by one.
    expect(after.metadata.generation).to.equal(generation + 1);
    const managers = (after.metadata as { managedFields?: { manager: string; subresource?: string }[] }).managedFields ?? [];
    expect(managers.some((m) => m.manager === 'envoy-scale-to-zero' && m.subresource === 'scale')).to.equal(true);
    const host = (await (await stack.adminFetch('/v1/hosts/shop-cart-80')).json()) as { state: string; scaling: { phase: string; wakeCount: number } };
    expect(host.state).to.equal('ready');
    expect(host.scaling.wakeCount).to.equal(1);
  });

  const replicas = async (name: string, namespace = NS): Promise<number> =>
    ((await stack.get(`/apis/apps/v1/namespaces/${namespace}/deployments/${name}`)).spec as { replicas?: number }).replicas ?? 0;
  /** Every connected Envoy has ACKed its group's current routes and filter config, and that config holds `host`. */
  const envoyApplied = async (host: string): Promise<void> => {
    const body = (await (await stack.adminFetch('/v1/nodes')).json()) as { nodes: { group: string; clientKind: string; types: Record<string, { ackedVersion?: string } | undefined> }[] };
    const envoys = body.nodes.filter((n) => n.clientKind === 'envoy');
    expect(envoys.length, 'an Envoy is connected').to.be.greaterThan(0);
    for (const n of envoys) {
      const snapshot = stack.cp.cache.getSnapshot(n.group);
      expect(snapshot, `a snapshot for ${n.group}`).to.not.equal(undefined);
      expect(JSON.stringify([...snapshot!.resources.extensionConfig.values()]), 'the filter config holds the host').to.include(host);
      expect(n.types.extensionConfig?.ackedVersion).to.equal(snapshot!.versions.extensionConfig);
      expect(n.types.route?.ackedVersion).to.equal(snapshot!.versions.route);
    }
  };

  const hostState = async (name: string): Promise<{ state: string; scaling: { phase: string; wakeCount: number; lastError?: string } }> =>
    (await (await stack.adminFetch(`/v1/hosts/${name}`)).json()) as { state: string; scaling: { phase: string; wakeCount: number; lastError?: string } };
  const events = async (reason: string): Promise<{ message: string; involvedObject: { name: string } }[]> =>
    ((await stack.get(`/api/v1/namespaces/${NS}/events`)) as unknown as { items: { reason: string; message: string; involvedObject: { name: string } }[] }).items.filter((e) => e.reason === reason);
  const get = (p: number, host: string, path = '/', timeoutMs = 30_000) => http1Request({ port: p, host, path, timeoutMs });
  const routeParent = async (kind: 'httproutes' | 'grpcroutes', name: string) => {
    const route = await stack.get(`/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/${kind}/${name}`);
    return (route.status as { parents?: { controllerName: string; conditions: Condition[] }[] } | undefined)?.parents?.find((p) => p.controllerName === CONTROLLER_NAME);
  };

  const policyAncestors = async (name: string): Promise<{ conditions: Condition[] }[]> =>
    ((await stack.get(`/apis/scaletozero.dev/v1alpha1/namespaces/${NS}/scaletozeropolicies/${name}`)).status as { ancestors?: { conditions: Condition[] }[] } | undefined)?.ancestors ?? [];

  it('refuses a bad ScaleToZeroPolicy at the API server, with a message that names the field', async () => {
    const refused = async (spec: Record<string, unknown>): Promise<string> => {
      try {
        await stack.client.request('POST', `/apis/scaletozero.dev/v1alpha1/namespaces/${NS}/scaletozeropolicies`, { apiVersion: 'scaletozero.dev/v1alpha1', kind: 'ScaleToZeroPolicy', metadata: { name: 'bad', namespace: NS }, spec });
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error(`accepted: ${JSON.stringify(spec)}`);
    };
    const target = { targetRefs: [{ group: '', kind: 'Service', name: 'x' }], scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'x' } };
    expect(await refused({ ...target, holdTimeoutMs: 0 })).to.match(/holdTimeoutMs/);
    expect(await refused({ ...target, targetRefs: [{ group: 'apps', kind: 'Deployment', name: 'x' }] })).to.match(/targetRefs must be core Services/);
    expect(await refused({ ...target, readinessProbe: { httpGet: { path: '/h' }, tcpSocket: {} } })).to.match(/exactly one of httpGet, grpc, tcpSocket/);
    expect(await refused({ targetRefs: target.targetRefs })).to.match(/scaleTargetRef/);
    expect(await refused({ ...target, wakeReplicas: 0 })).to.match(/wakeReplicas/);
    expect(await refused({ ...target, heldResponseHeader: 'yes' })).to.match(/heldResponseHeader/);
  });

  it('says on the policy and in an Event when its workload cannot be scaled, and answers held requests with that reason at once', async () => {
    await stack.apply(
      service('ghost'),
      policy('ghost', 'ghost', { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'no-such-deployment' }, holdTimeoutMs: 1_500 }),
      httpRoute('ghost', 'ghost.example', [{ name: 'ghost' }]),
    );
    await eventually(async () => expect((await stack.adminFetch('/v1/hosts/shop-ghost-80')).status).to.equal(200), { what: 'the policy in force' });
    // 404 until Envoy has the route; then, for as long as the route is applied before the filter config that
    // lists its backend (RDS is pushed before ECDS), a plain 503 from Envoy. Wait for the filter's answer.
    // The refused scale write fails the wake at once: the held request gets the reason, not the hold timeout.
    const reply = await eventually(async () => {
      const r = await get(port, 'ghost.example');
      expect(r.status).to.equal(503);
      expect(r.headers['x-scale-to-zero']).to.equal('wake_failed');
      return r;
    }, { what: 'a held request answered with the failed wake' });
    const body = JSON.parse(reply.body) as { error: string; host: string; message: string };
    expect(body).to.include({ error: 'wake_failed', host: 'shop-ghost-80' });
    expect(body.message).to.match(/Deployment shop\/no-such-deployment does not exist/);
    await eventually(async () => {
      const conditions = (await policyAncestors('ghost'))[0]?.conditions;
      expect(condition(conditions, 'WorkloadScalable')).to.include({ status: 'False', reason: 'ScaleTargetUnusable' });
      expect((await events('ScaleTargetUnusable')).some((e) => /no-such-deployment does not exist/.test(e.message))).to.equal(true);
    }, { what: 'WorkloadScalable False and a Warning Event' });
    expect((await hostState('shop-ghost-80')).scaling.lastError).to.match(/Deployment shop\/no-such-deployment does not exist/);
  });

  it('scales an idle Deployment back to 0 through /scale, and the next request wakes it again', async () => {
    await stack.apply(deployment('nap', 0), service('nap'), httpRoute('nap', 'nap.example', [{ name: 'nap' }]), policy('nap', 'nap', { idleAfterMs: 1_500 }));
    const first = await eventually(async () => {
      const r = await get(port, 'nap.example', '/one');
      expect(r.status).to.equal(200);
      return r;
    }, { what: 'the route programmed and the first request answered' });
    expect(JSON.parse(first.body).pod).to.match(/^nap-/);
    expect(await replicas('nap')).to.equal(1);
    await eventually(async () => expect(await replicas('nap')).to.equal(0), { timeoutMs: 15_000, what: 'idle scale-down to 0' });
    await eventually(async () => expect((await hostState('shop-nap-80')).scaling.phase).to.equal('scaled_to_zero'), { what: 'phase scaled_to_zero' });
    expect((await events('ScaledToZero')).some((e) => e.involvedObject.name === 'nap')).to.equal(true);
    const second = await get(port, 'nap.example', '/two');
    expect(second.status).to.equal(200);
    expect(JSON.parse(second.body)).to.include({ path: '/two' });
    expect(await replicas('nap')).to.equal(1);
    expect((await hostState('shop-nap-80')).scaling.wakeCount).to.equal(2);
  });

  it('holds a WebSocket upgrade through an HTTPRoute to a Deployment at 0, scales it up once, and echoes from the pod', async () => {
    await stack.apply(deployment('chat', 0), service('chat'), httpRoute('chat', 'chat.example', [{ name: 'chat' }]), policy('chat', 'chat'));
    // A plain request first only to know the route is programmed would wake the Deployment; wait for the
    // route in Envoy's config instead.
    await eventually(async () => {
      const dump = await (await stack.envoy.admin('/config_dump?resource=dynamic_route_configs')).text();
      if (!dump.includes('chat.example')) throw new Error('route not in Envoy yet');
    }, { what: 'the chat route in Envoy' });
    expect(await replicas('chat')).to.equal(0);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/live`, { headers: { host: 'chat.example' }, handshakeTimeout: 60_000 });
    try {
      const opened = new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
        ws.once('error', reject);
      });
      await opened;
      expect(await replicas('chat')).to.equal(1);
      const echoed = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
      ws.send('hello pod');
      expect(await echoed).to.equal('hello pod');
      expect((await hostState('shop-chat-80')).scaling.wakeCount).to.equal(1);
    } finally {
      ws.terminate();
    }
  });

  it('holds only what a split rule sends to the cold Service; what goes to the warm one is answered at once', async () => {
    // The cold pods become Ready but never listen, so the cold backend stays held for the whole test.
    await stack.apply(
      deployment('warm', 1),
      service('warm'),
      deployment('cold', 0, { 'stz.test/pod-server': 'off' }),
      service('cold'),
      policy('cold', 'cold', { holdTimeoutMs: 1_500, wakeTimeoutMs: 20_000 }),
      httpRoute('split', 'split.example', [{ name: 'cold', weight: 1 }, { name: 'warm', weight: 1 }]),
    );
    await eventually(async () => {
      expect((await stack.adminFetch('/v1/hosts/shop-cold-80')).status, 'the policy is in force').to.equal(200);
      const r = await get(port, 'split.example', '/probe', 3_000);
      expect(r.status).to.equal(200);
      // Not only decided: applied. Until the Envoy has ACKed the filter config that holds the cold backend (and
      // the routes that run the filter for it), a request sent to the cold half meets its empty cluster (503
      // from the router, not a hold).
      await envoyApplied('shop-cold-80');
    }, { what: 'the policy in force, applied by the Envoy, and the warm half answering' });
    const started = Date.now();
    const replies = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const t0 = Date.now();
        const r = await get(port, 'split.example', `/r/${i}`, 10_000);
        return { ...r, ms: Date.now() - t0 };
      }),
    );
    const warm = replies.filter((r) => r.status === 200);
    const held = replies.filter((r) => r.status === 503);
    expect(warm.length + held.length, JSON.stringify(replies.map((r) => [r.status, r.body.slice(0, 80)]))).to.equal(30);
    expect(warm.length).to.be.greaterThan(0);
    expect(held.length).to.be.greaterThan(0);
    for (const r of warm) {
      expect(JSON.parse(r.body).pod).to.match(/^warm-/);
      expect(r.ms, 'a warm answer is not held').to.be.below(1_000);
    }
    for (const r of held) {
      expect(r.headers['x-scale-to-zero']).to.equal('timeout');
      expect(JSON.parse(r.body)).to.include({ error: 'hold_timeout', host: 'shop-cold-80' });
      expect(r.ms).to.be.at.least(1_400);
    }
    expect(Date.now() - started).to.be.below(9_000);
    // Woken in Kubernetes (a Ready pod), but its endpoint never answered: still held, nothing thrown at it.
    expect(await replicas('cold')).to.equal(1);
    expect((await hostState('shop-cold-80')).state).to.equal('scaled_to_zero');
  });

  it('releases nothing to a pod that is Ready but not listening, and releases the moment it answers', async () => {
    await stack.apply(deployment('slow', 0, { 'stz.test/pod-server': 'off' }), service('slow'), httpRoute('slow', 'slow.example', [{ name: 'slow' }]), policy('slow', 'slow'));
    await eventually(async () => {
      const parent = await routeParent('httproutes', 'slow');
      expect(condition(parent?.conditions, 'Accepted')?.status).to.equal('True');
    }, { what: 'route accepted' });
    let answered: { status: number; body: string } | undefined;
    const pending = get(port, 'slow.example', '/waited', 30_000).then((r) => (answered = r));
    const pod = await eventually(async () => {
      const pods = (await stack.get(`/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dslow`)) as unknown as { items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] };
      const ready = pods.items.find((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      if (!ready) throw new Error('no Ready pod yet');
      return ready.metadata.name;
    }, { timeoutMs: 15_000, what: 'the woken pod Ready' });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(answered, 'answered although the pod does not listen').to.equal(undefined);
    // The process starts listening.
    await stack.client.request('PATCH', `/api/v1/namespaces/${NS}/pods/${pod}`, { metadata: { annotations: { 'stz.test/pod-server': 'on' } } }, 'application/merge-patch+json');
    const reply = await pending;
    expect(reply.status).to.equal(200);
    expect(JSON.parse(reply.body)).to.include({ pod, path: '/waited' });
  });

  it('refuses a cross-namespace backend without a ReferenceGrant (ResolvedRefs False, 500), and routes once one exists', async () => {
    await stack.apply(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } },
      deployment('far', 1, {}, 'other'),
      service('far', undefined, 'other'),
      httpRoute('far', 'far.example', [{ name: 'far', namespace: 'other' }]),
    );
    await eventually(async () => {
      const parent = await routeParent('httproutes', 'far');
      expect(condition(parent?.conditions, 'ResolvedRefs')).to.include({ status: 'False', reason: 'RefNotPermitted' });
      const r = await get(port, 'far.example');
      expect(r.status).to.equal(500);
    }, { what: 'RefNotPermitted and a 500' });
    await stack.apply({
      apiVersion: 'gateway.networking.k8s.io/v1beta1',
      kind: 'ReferenceGrant',
      metadata: { name: 'from-shop', namespace: 'other' },
      spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: NS }], to: [{ group: '', kind: 'Service' }] },
    });
    await eventually(async () => {
      const parent = await routeParent('httproutes', 'far');
      expect(condition(parent?.conditions, 'ResolvedRefs')?.status).to.equal('True');
      const r = await get(port, 'far.example', '/x');
      expect(r.status).to.equal(200);
      expect(JSON.parse(r.body)).to.include({ namespace: 'other' });
    }, { what: 'resolved and routed after the grant' });
  });

  it("does not fight a user's HPA: woken from 0, the HPA owns 1..N, and idle does not scale it down", async () => {
    await stack.apply(
      deployment('busy', 0),
      service('busy'),
      httpRoute('busy', 'busy.example', [{ name: 'busy' }]),
      policy('busy', 'busy', { idleAfterMs: 5_000 }),
      {
        apiVersion: 'autoscaling/v2',
        kind: 'HorizontalPodAutoscaler',
        metadata: { name: 'busy', namespace: NS },
        spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'busy' }, minReplicas: 2, maxReplicas: 4 },
      },
    );
    const first = await eventually(async () => {
      const r = await get(port, 'busy.example', '/first');
      expect(r.status).to.equal(200);
      return r;
    }, { what: 'woken from 0 and answered' });
    expect(JSON.parse(first.body).pod).to.match(/^busy-/);
    await eventually(async () => expect(await replicas('busy')).to.equal(2), { timeoutMs: 15_000, what: 'the HPA raising replicas to its minimum' });
    await eventually(async () => expect((await events('ScaleDownSkipped')).some((e) => e.involvedObject.name === 'busy')).to.equal(true), { timeoutMs: 20_000, what: 'an idle scale-down declined with an Event' });
    expect(await replicas('busy')).to.equal(2);
    const state = await hostState('shop-busy-80');
    expect(state.state).to.equal('ready');
    expect(state.scaling.lastError).to.match(/another writer/);
    await eventually(async () => {
      const conditions = (await policyAncestors('busy'))[0]?.conditions;
      expect(condition(conditions, 'ReplicasOwned')).to.include({ status: 'False', reason: 'OtherWriter' });
    }, { what: 'the conflict on the policy status' });
    const t0 = Date.now();
    const again = await get(port, 'busy.example', '/again');
    expect(again.status).to.equal(200);
    expect(Date.now() - t0).to.be.below(1_000);
  });

  it('holds gRPC calls through a GRPCRoute, wakes once, answers every call from the pod, and wakes again after idling to 0', async () => {
    await stack.apply(deployment('greeter', 0, { 'stz.test/pod-server': 'grpc' }), service('greeter'), policy('greeter', 'greeter', { idleAfterMs: 1_500 }), {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GRPCRoute',
      metadata: { name: 'greeter', namespace: NS },
      spec: {
        parentRefs: [{ name: 'gw' }],
        hostnames: ['grpc.example'],
        rules: [{ matches: [{ method: { service: 'stz.demo.v1.Echo', method: 'Echo' } }], backendRefs: [{ name: 'greeter', port: 80 }] }],
      },
    });
    await eventually(async () => {
      const parent = await routeParent('grpcroutes', 'greeter');
      expect(condition(parent?.conditions, 'Accepted')?.status).to.equal('True');
    }, { what: 'GRPCRoute accepted' });
    const generation = (await stack.get(`/apis/apps/v1/namespaces/${NS}/deployments/greeter`)).metadata.generation!;
    const calls = await Promise.all(Array.from({ length: 50 }, (_, i) => grpcEcho(`127.0.0.1:${port}`, 'grpc.example', `hello ${i}`, Buffer.alloc(0), 30_000)));
    for (const [i, c] of calls.entries()) {
      if (isGrpcError(c)) throw new Error(`call ${i}: ${JSON.stringify(c)}`);
      expect(c.message).to.equal(`hello ${i}`);
      expect(c.upstream).to.match(/^shop\/greeter-/);
    }
    const after = await stack.get(`/apis/apps/v1/namespaces/${NS}/deployments/greeter`);
    expect(after.metadata.generation).to.equal(generation + 1);
    expect((after.spec as { replicas: number }).replicas).to.equal(1);
    // Idle: back to 0, and the next call wakes it again.
    await eventually(async () => expect(await replicas('greeter')).to.equal(0), { timeoutMs: 15_000, what: 'idle scale-down of the gRPC backend' });
    const again = await grpcEcho(`127.0.0.1:${port}`, 'grpc.example', 'again', Buffer.alloc(0), 30_000);
    if (isGrpcError(again)) throw new Error(`call after the scale-down: ${JSON.stringify(again)}`);
    expect(again.message).to.equal('again');
    expect((await hostState('shop-greeter-80')).scaling.wakeCount).to.equal(2);
  });

  it('redirects with ReplacePrefixMatch by whole path segments (RequestRedirect)', async () => {
    await stack.apply({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'moved', namespace: NS },
      spec: {
        parentRefs: [{ name: 'gw' }],
        hostnames: ['moved.example'],
        rules: [
          { matches: [{ path: { type: 'PathPrefix', value: '/old' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' }, statusCode: 301 } }] },
          { matches: [{ path: { type: 'PathPrefix', value: '/gone' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }] },
        ],
      },
    });
    const location = async (path: string): Promise<string> => {
      const r = await get(port, 'moved.example', path, 3_000);
      expect(r.status, `${path}: ${r.body}`).to.be.oneOf([301, 302]);
      return new URL(String(r.headers.location)).pathname;
    };
    await eventually(async () => expect(await location('/old/a/b')).to.equal('/new/a/b'), { what: 'the redirect route programmed' });
    expect(await location('/old')).to.equal('/new');
    expect(await location('/gone/x')).to.equal('/x');
    expect(await location('/gone')).to.equal('/');
  });

  it('loses no update when the API server restarts and cuts every watch', async () => {
    await stack.cluster.restartApiServer();
    // Made as soon as the API server is back, while our informers are still reconnecting.
    await stack.apply(deployment('late', 1), service('late'), httpRoute('late', 'late.example', [{ name: 'late' }]));
    await eventually(async () => {
      const r = await get(port, 'late.example', '/after-restart', 3_000);
      expect(r.status).to.equal(200);
      expect(JSON.parse(r.body).pod).to.match(/^late-/);
    }, { timeoutMs: 30_000, what: 'the route made after the restart served' });
    // And a change to an object the control plane already knew.
    await stack.apply(httpRoute('late', 'later.example', [{ name: 'late' }]));
    await eventually(async () => expect((await get(port, 'later.example', '/', 3_000)).status).to.equal(200), { timeoutMs: 20_000, what: 'the changed hostname served' });
    expect((await get(port, 'late.example', '/', 3_000)).status).to.equal(404);
  });
});
