// Kubernetes mode, per-gateway snapshots: two Gateways and an Envoy for each that names its Gateway in its
// node metadata (scaletozero.dev/gateway). Each binds only its own Gateway's ports and knows only the
// clusters its routes reach (the Envoys do not share ports, so an Envoy sent the other's listener would NACK
// it: address in use); gw-b's Envoy speaks delta ADS. The stack's own Envoy names a third Gateway that does not exist at first: it gets
// nothing, then that Gateway once it is created. (An Envoy that names no Gateway gets every Gateway: the
// protocol test test/protocol/gateways.test.ts and the other kube tests.)
import { expect } from 'chai';
import { startEnvoy, type EnvoyProcess } from '../../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../../envoy-bootstrap/render.ts';
import { GATEWAY_METADATA_KEY } from '../../xds-server/cache/snapshot-cache.ts';
import type { KubeObject } from '../../xds-server/kubernetes/rest.ts';
import { eventually } from '../support/eventually.ts';
import { CONTROLLER_NAME, startGatewayStack, waitForGatewayPort, type GatewayStack } from '../support/kube/gateway-stack.ts';
import { freePort } from '../support/ports.ts';

const NS = 'gateways';

async function listenerPorts(envoy: EnvoyProcess): Promise<number[]> {
  const body = (await (await fetch(`${envoy.adminUrl}/listeners?format=json`)).json()) as { listener_statuses?: { local_address?: { socket_address?: { port_value?: number } } }[] };
  return (body.listener_statuses ?? []).map((l) => l.local_address?.socket_address?.port_value ?? 0).sort((a, b) => a - b);
}

async function clusterNames(envoy: EnvoyProcess): Promise<string[]> {
  const body = (await (await fetch(`${envoy.adminUrl}/clusters?format=json`)).json()) as { cluster_statuses?: { name: string }[] };
  return (body.cluster_statuses ?? []).map((c) => c.name).filter((n) => n.startsWith('k8s_')).sort();
}

function gateway(name: string, port: number): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: NS },
    spec: { gatewayClassName: 'stz-two', listeners: [{ name: 'http', protocol: 'HTTP', port }] },
  };
}

function routeTo(name: string, gatewayName: string): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name, namespace: NS },
      spec: { parentRefs: [{ name: gatewayName }], hostnames: [`${name}.example`], rules: [{ backendRefs: [{ name, port: 80 }] }] },
    },
  ];
}

describe('Kubernetes mode: each Envoy gets only its own Gateway (node metadata)', function () {
  this.timeout(180_000);
  let stack: GatewayStack;
  let portA: number;
  let portB: number;
  const envoys: EnvoyProcess[] = [];

  const envoyFor = async (gatewayKey: string, apiType: 'GRPC' | 'DELTA_GRPC'): Promise<EnvoyProcess> => {
    const envoy = await startEnvoy({
      bootstrap: renderBootstrap({ nodeId: `gw-${gatewayKey.replace('/', '-')}-${process.pid}`, xdsAddress: '127.0.0.1', xdsPort: stack.cp.xdsPort, metadata: { [GATEWAY_METADATA_KEY]: gatewayKey }, apiType }),
      concurrency: 1,
      logLevel: 'warning',
    });
    envoys.push(envoy);
    return envoy;
  };

  before(async () => {
    stack = await startGatewayStack({ envoyMetadata: { [GATEWAY_METADATA_KEY]: `${NS}/gw-c` } });
    portA = await freePort();
    portB = await freePort();
    await stack.apply(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'stz-two' }, spec: { controllerName: CONTROLLER_NAME } },
      gateway('gw-a', portA),
      gateway('gw-b', portB),
      ...routeTo('app-a', 'gw-a'),
      ...routeTo('app-b', 'gw-b'),
    );
  });
  after(async () => {
    for (const e of envoys) await e.stop().catch(() => {});
    await stack?.close();
  });

  it('binds only its own Gateway\'s port on each gateway\'s Envoy, with only its clusters (one on SotW, one on delta ADS)', async () => {
    const a = await envoyFor(`${NS}/gw-a`, 'GRPC');
    const b = await envoyFor(`${NS}/gw-b`, 'DELTA_GRPC');
    await waitForGatewayPort(a, portA);
    await waitForGatewayPort(b, portB);
    expect(await listenerPorts(a)).to.deep.equal([portA]);
    expect(await listenerPorts(b)).to.deep.equal([portB]);
    await eventually(async () => {
      expect(await clusterNames(a)).to.deep.equal([`k8s_${NS}_app-a_80`]);
      expect(await clusterNames(b)).to.deep.equal([`k8s_${NS}_app-b_80`]);
    }, { timeoutMs: 10_000, what: 'each Envoy with its own clusters' });
    // The Envoy of a Gateway that does not exist: nothing.
    expect(await listenerPorts(stack.envoy)).to.deep.equal([]);
    expect(await clusterNames(stack.envoy)).to.deep.equal([]);
    const nodes = (await (await stack.adminFetch('/v1/nodes')).json()) as { nodes: { nodeId: string; variant: string; group: string; types: { listener?: { nack?: unknown } } }[] };
    expect(nodes.nodes.filter((n) => n.types.listener?.nack !== undefined).map((n) => n.nodeId)).to.deep.equal([]);
    expect(nodes.nodes.map((n) => `${n.group} ${n.variant}`).sort()).to.deep.equal([`gateway/${NS}/gw-a sotw`, `gateway/${NS}/gw-b delta`, `gateway/${NS}/gw-c sotw`]);
  });

  it('gives a Gateway\'s Envoy a listener added to its Gateway, and none added to the other', async () => {
    const [a, b] = envoys as [EnvoyProcess, EnvoyProcess];
    const portA2 = await freePort();
    const more = gateway('gw-a', portA);
    (more.spec as { listeners: unknown[] }).listeners.push({ name: 'http-2', protocol: 'HTTP', port: portA2 });
    await stack.apply(more);
    await waitForGatewayPort(a, portA2);
    expect(await listenerPorts(a)).to.deep.equal([portA, portA2].sort((x, y) => x - y));
    expect(await listenerPorts(b)).to.deep.equal([portB]);
    expect(await listenerPorts(stack.envoy)).to.deep.equal([]);
  });

  it('gives the Envoy of a Gateway created after it connected that Gateway\'s listener', async () => {
    const portC = await freePort();
    await stack.apply(gateway('gw-c', portC), ...routeTo('app-c', 'gw-c'));
    await waitForGatewayPort(stack.envoy, portC);
    expect(await listenerPorts(stack.envoy)).to.deep.equal([portC]);
    await eventually(async () => expect(await clusterNames(stack.envoy)).to.deep.equal([`k8s_${NS}_app-c_80`]), { timeoutMs: 10_000, what: 'gw-c\'s cluster' });
    expect(await clusterNames(envoys[0]!)).to.deep.equal([`k8s_${NS}_app-a_80`]);
  });
});
