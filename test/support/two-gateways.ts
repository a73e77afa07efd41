// A model with two gateways (as the Kubernetes source produces it), as plain data: gateway ns/a routes
// a.test to backend "a", ns/b routes b.test to "b", and both route shared.test to "shared".
import type { BackendModel, GatewayModel, ListenerModel } from '../../model/gateway-model.ts';
import type { DesiredState } from '../../snapshots/desired-state.ts';

function listener(gateway: string, id: string, port: number, backends: string[]): ListenerModel {
  return {
    name: `gw_${id}`,
    gateway,
    address: '127.0.0.1',
    port,
    routeConfigName: `gw_${id}_routes`,
    virtualHosts: backends.map((b) => ({
      name: `${b}.test`,
      domains: [`${b}.test`],
      routes: [{ name: `to_${b}`, match: { path: { kind: 'prefix', value: '/' } }, action: { kind: 'forward', backends: [{ backend: b, weight: 1 }] } }],
    })),
  };
}

function backend(name: string, port: number): BackendModel {
  return {
    name,
    clusterName: `c_${name}`,
    protocol: 'http1',
    endpoints: [{ address: '127.0.0.1', port }],
    scaleToZero: {
      buffer: { holdTimeoutMs: 30_000, maxHeld: 100, retryAfterSeconds: 5 },
      exclusiveDomains: [`${name}.test`],
      workload: { kind: 'manual' },
      health: { kind: 'tcp', timeoutMs: 1_000 },
      wakeTimeoutMs: 10_000,
      idleAfterMs: 0,
    },
  };
}

export function twoGatewayModel(extraBackendA?: string): GatewayModel {
  const aBackends = ['a', 'shared', ...(extraBackendA ? [extraBackendA] : [])];
  return {
    listeners: [listener('ns/a', 'a', 18001, aBackends), listener('ns/b', 'b', 18002, ['b', 'shared'])],
    backends: [...aBackends, 'b'].map((n, i) => backend(n, 20000 + i)),
  };
}

export function twoGatewayState(held: string[] = [], generation = 1): DesiredState {
  return { model: twoGatewayModel(), held: new Set(held), generation, filterWasmPath: '/f.wasm' };
}
