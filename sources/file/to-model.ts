// File source, second stage: a validated GatewayConfig → the model. Each host becomes one virtual host
// with one catch-all route to one backend of the same name; the host owns its domains, so the filter may
// match its held requests on :authority alone.
import type { BackendModel, GatewayModel, VirtualHostModel } from '../../model/gateway-model.ts';
import { NameOrder } from '../../model/name-order.ts';
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
        virtualHosts: hostOrder.sorted(config.hosts).map((h) => remembered(virtualHosts, h, virtualHost)),
      },
    ],
    backends: config.hosts.map((h) => remembered(backends, h, backend)),
  };
}

// A reload that leaves every host's name where it was (an endpoint moved: the common case) sorts nothing.
const hostOrder = new NameOrder(1);

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

// The model shares what it can with the host config it is made from (arrays and objects that neither is
// ever changed in place: a reload makes new host objects, keepUnchangedHosts keeps the old ones whole), and
// parts every host has alike are one frozen object: at 5,000 hosts ~1 MiB fewer objects kept.
const MATCH_ANY_PATH = Object.freeze({ path: Object.freeze({ kind: 'prefix' as const, value: '/' }) });
const MANUAL_WORKLOAD = Object.freeze({ kind: 'manual' as const });

function virtualHost(host: HostConfig): VirtualHostModel {
  return {
    name: `vh_${host.name}`,
    domains: host.domains,
    routes: [
      {
        name: `host_${host.name}`,
        match: MATCH_ANY_PATH,
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
    endpoints: host.endpoints,
    scaleToZero: {
      buffer: host.buffer,
      exclusiveDomains: host.domains,
      workload: host.scaler.kind === 'process' ? { ...host.scaler, command: [...host.scaler.command] } : MANUAL_WORKLOAD,
      health: host.health,
      wakeTimeoutMs: host.wakeTimeoutMs,
      wakeFailureBackoffMs: host.wakeFailureBackoffMs,
      idleAfterMs: host.idleAfterMs,
      ...(host.heldHeader ? { heldHeader: true as const } : {}),
    },
  };
}
