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

/** Resources by name, in name order (the order they are sent and hashed in). */
export function byName(resources: readonly Resource[]): ReadonlyMap<string, Resource> {
  return new Map(nameOrder(resources).map((i) => [resources[i]!.name, resources[i]!]));
}

// Sorting with localeCompare is ~10,000 calls at 1,000 resources: several ms in a process that has not compiled
// them yet (a one-host change's first runs after start spent more there than anywhere else). Most builds list
// the same names in the same order as a recent one (every one-host change does; clusters and endpoints share
// names), so the latest few lists' permutations are kept and reused when every name matches, index by index.
const RECENT_ORDERS = 8;
const recentOrders: { names: string[]; order: number[] }[] = [];

function nameOrder(resources: readonly Resource[]): number[] {
  for (const recent of recentOrders) {
    if (recent.names.length === resources.length && resources.every((r, i) => r.name === recent.names[i])) return recent.order;
  }
  const order = resources.map((_, i) => i).sort((a, b) => resources[a]!.name.localeCompare(resources[b]!.name));
  recentOrders.unshift({ names: resources.map((r) => r.name), order });
  if (recentOrders.length > RECENT_ORDERS) recentOrders.pop();
  return order;
}
