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

/**
 * Resources by name, whose names are known before the resources are built: the map byName(build()) would be,
 * built when a resource is first asked for. Which names it has (has, keys, size) needs no resource. A cold
 * load's endpoints are built this way: the clusters go to Envoy first, and a snapshot's consistency check
 * asks only whether each cluster's endpoints exist; at 5,000 hosts building them (~40,000 objects, frozen)
 * was ~10 ms on the way to the first CDS byte, and is now done after it, while Envoy warms the clusters.
 */
export function lazyByName(names: readonly string[], build: () => readonly Resource[]): ReadonlyMap<string, Resource> {
  return new LazyResources(resourceOrder.sortedNames(names), build);
}

class LazyResources implements ReadonlyMap<string, Resource> {
  private built: ReadonlyMap<string, Resource> | undefined;
  /** Until built: the names in name order, and as a set. */
  private names: readonly string[] | undefined;
  private nameSet: ReadonlySet<string> | undefined;
  private build: (() => readonly Resource[]) | undefined;

  constructor(names: readonly string[], build: () => readonly Resource[]) {
    this.names = names;
    this.build = build;
  }

  private resources(): ReadonlyMap<string, Resource> {
    if (this.built !== undefined) return this.built;
    const built = byName(this.build!());
    // The names announced are the names built, in the same order: anything else is a bug to hear about.
    const names = this.names!;
    let i = 0;
    for (const name of built.keys()) {
      if (name !== names[i++]) throw new Error(`lazily built resources are not the ones named: ${name} where ${names[i - 1]} was expected`);
    }
    if (i !== names.length) throw new Error(`lazily built resources are not the ones named: ${i} built, ${names.length} named`);
    this.built = built;
    this.names = undefined;
    this.nameSet = undefined;
    this.build = undefined;
    return built;
  }

  get size(): number {
    return this.built?.size ?? this.names!.length;
  }

  has(name: string): boolean {
    if (this.built !== undefined) return this.built.has(name);
    this.nameSet ??= new Set(this.names);
    return this.nameSet.has(name);
  }

  keys(): MapIterator<string> {
    return this.built !== undefined ? this.built.keys() : this.names!.values();
  }

  get(name: string): Resource | undefined {
    return this.resources().get(name);
  }

  values(): MapIterator<Resource> {
    return this.resources().values();
  }

  entries(): MapIterator<[string, Resource]> {
    return this.resources().entries();
  }

  forEach(callback: (value: Resource, key: string, map: ReadonlyMap<string, Resource>) => void, thisArg?: unknown): void {
    this.resources().forEach((value, key) => callback.call(thisArg, value, key, this));
  }

  [Symbol.iterator](): MapIterator<[string, Resource]> {
    return this.entries();
  }
}
