// Kubernetes mode end to end: a real API server, controller-manager, scheduler and etcd, kwok pods with
// loopback IPs served by local processes, our control plane in Kubernetes mode and the real Envoy.
import { expect } from 'chai';
import type { KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { eventually } from '../support/eventually.ts';
import { http1Request } from '../support/http-client.ts';
import { CONTROLLER_NAME, startGatewayStack, waitForGatewayPort, type GatewayStack } from '../support/kube/gateway-stack.ts';
import { freePort } from '../support/ports.ts';

const NS = 'shop';

function deployment(name: string, replicas: number, port = 8080, annotations: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
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

function service(name: string, appProtocol?: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
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
    stack = await startGatewayStack({ podCidr: '127.20.0.1/16' });
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
});
