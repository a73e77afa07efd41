// File source, second stage: a validated GatewayConfig → the model. Each host becomes one virtual host
// with one catch-all route to one backend of the same name; the host owns its domains, so the filter may
// match its held requests on :authority alone.
import type { BackendModel, GatewayModel, VirtualHostModel } from '../../model/gateway-model.ts';
import type { GatewayConfig, HostConfig } from './config.ts';

export const FILE_LISTENER_NAME = 'gateway_http';
export const FILE_ROUTE_CONFIG_NAME = 'gateway_routes';

export function fileConfigToModel(config: GatewayConfig): GatewayModel {
  return {
    listeners: [
      {
        name: FILE_LISTENER_NAME,
        address: config.listener.address,
        port: config.listener.port,
        routeConfigName: FILE_ROUTE_CONFIG_NAME,
        ...(config.listener.http10DefaultHost !== undefined ? { http10DefaultHost: config.listener.http10DefaultHost } : {}),
        virtualHosts: [...config.hosts].sort((a, b) => a.name.localeCompare(b.name)).map((h) => remembered(virtualHosts, h, virtualHost)),
      },
    ],
    backends: config.hosts.map((h) => remembered(backends, h, backend)),
  };
}

// A host that a reload left as it was (keepUnchangedHosts) keeps its model objects too, so the snapshot
// builders reuse what they built from them (snapshots/memo.ts).
const virtualHosts = new WeakMap<HostConfig, VirtualHostModel>();
const backends = new WeakMap<HostConfig, BackendModel>();

function remembered<T>(cache: WeakMap<HostConfig, T>, host: HostConfig, make: (host: HostConfig) => T): T {
  let value = cache.get(host);
  if (value === undefined) {
    value = make(host);
    cache.set(host, value);
  }
  return value;
}

export function hostClusterName(host: string): string {
  return `host_${host}`;
}

function virtualHost(host: HostConfig): VirtualHostModel {
  return {
    name: `vh_${host.name}`,
    domains: [...host.domains],
    routes: [
      {
        name: `host_${host.name}`,
        match: { path: { kind: 'prefix', value: '/' } },
        action: { kind: 'forward', backends: [{ backend: host.name, weight: 1 }], timeoutMs: host.requestTimeoutMs, idleTimeoutMs: host.streamIdleTimeoutMs },
      },
    ],
  };
}

function backend(host: HostConfig): BackendModel {
  return {
    name: host.name,
    clusterName: hostClusterName(host.name),
    protocol: host.protocol,
    endpoints: host.endpoints.map((e) => ({ address: e.address, port: e.port })),
    scaleToZero: {
      buffer: { ...host.buffer },
      exclusiveDomains: [...host.domains],
      workload: host.scaler.kind === 'process' ? { ...host.scaler, command: [...host.scaler.command] } : { kind: 'manual' },
      health: host.health,
      wakeTimeoutMs: host.wakeTimeoutMs,
      wakeFailureBackoffMs: host.wakeFailureBackoffMs,
      idleAfterMs: host.idleAfterMs,
      ...(host.heldHeader ? { heldHeader: true as const } : {}),
    },
  };
}
