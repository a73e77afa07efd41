import { NameOrder } from '../model/name-order.ts';
import type { ResourceKind } from './type-urls.ts';

/**
 * An xDS resource as plain data in protobuf field names (snake_case), with '@type' on every Any, exactly
 * as Envoy's YAML would spell it. The builders know nothing about protobuf; snapshots/wire.ts encodes it
 * (once per object), for the protocol layer to send and for the snapshot's versions to hash.
 */
export type Resource = { name: string } & Record<string, unknown>;

export type ResourcesByKind = Record<ResourceKind, ReadonlyMap<string, Resource>>;

export function adsConfigSource(): Record<string, unknown> {
  return { ads: {}, resource_api_version: 'V3' };
}

export function socketAddress(address: string, port: number): Record<string, unknown> {
  return { socket_address: { address, port_value: port } };
}

// The few lists of a build (clusters and endpoints share one; listeners, routes, filter config) and a gateway's.
const resourceOrder = new NameOrder(8);

/** Resources by name, in name order (the order they are sent and hashed in). */
export function byName(resources: readonly Resource[]): ReadonlyMap<string, Resource> {
  return new Map(resourceOrder.sorted(resources).map((r) => [r.name, r]));
}
