// The protobuf wire form of a resource: the bytes Envoy is sent, and what its version hashes. Each resource
// object is encoded once (remembered by identity), so building a snapshot's versions and sending it to every
// stream cost one encoding per resource. Resources are not changed once built (builders freeze what they
// reuse between builds; the rest is new each build), which is what makes remembering by identity safe.
// The bytes are written by our writer (snapshots/proto-writer.ts), the same bytes protobufjs's fromObject +
// encode give at a fraction of the CPU; a shape the writer does not write exactly is left to protobufjs.
import { createHash } from 'node:crypto';
import type protobuf from 'protobufjs';
import { messageType } from '../xds-server/protos/load.ts';
import { isUnsupported, writeMessage } from './proto-writer.ts';
import type { Resource } from './resource.ts';
import type { ResourceKind } from './type-urls.ts';

const MESSAGE_BY_KIND: Record<ResourceKind, string> = {
  cluster: 'envoy.config.cluster.v3.Cluster',
  endpoint: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'envoy.config.listener.v3.Listener',
  route: 'envoy.config.route.v3.RouteConfiguration',
  extensionConfig: 'envoy.config.core.v3.TypedExtensionConfig',
};

// Looked up once per kind: a lookup in the protobuf root per resource was ~2% of a cold load's CPU.
const types = new Map<ResourceKind, protobuf.Type>();
export function resourceType(kind: ResourceKind): protobuf.Type {
  let type = types.get(kind);
  if (type === undefined) {
    type = messageType(MESSAGE_BY_KIND[kind]);
    types.set(kind, type);
  }
  return type;
}

const encoded = new WeakMap<Resource, Uint8Array>();

export function encodeResource(kind: ResourceKind, resource: Resource): Uint8Array {
  const known = encoded.get(resource);
  if (known) return known;
  const bytes = encodeMessage(resourceType(kind), resource);
  encoded.set(resource, bytes);
  return bytes;
}

/** Any message in proto3-JSON form, by the writer, or by protobufjs for a shape the writer leaves alone. */
export function encodeMessage(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  const written = writeMessage(type, value);
  if (!isUnsupported(written)) return written;
  fallbacks++;
  return encodeWithProtobufjs(type, value);
}

/**
 * protobufjs's own path (fromObject, then encode): what the writer (snapshots/proto-writer.ts) is held to, and
 * what encodes a shape the writer leaves alone.
 */
export function encodeWithProtobufjs(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}

let fallbacks = 0;

/** How many messages protobufjs encoded because the writer left their shape alone (since the process started). */
export function protobufjsFallbacks(): number {
  return fallbacks;
}

const hashes = new WeakMap<Resource, string>();

/** SHA-256 (hex) of the resource's encoded bytes: equal for equal content, on every stream and across restarts. */
export function wireHash(kind: ResourceKind, resource: Resource): string {
  const known = hashes.get(resource);
  if (known !== undefined) return known;
  const hash = createHash('sha256').update(encodeResource(kind, resource)).digest('hex');
  hashes.set(resource, hash);
  return hash;
}

/**
 * Whether two resources say the same: the same object (builders hand out the same object for the same input,
 * so only a rebuilt one is hashed), or the same encoded bytes.
 */
export function sameResource(kind: ResourceKind, a: Resource, b: Resource): boolean {
  return a === b || wireHash(kind, a) === wireHash(kind, b);
}
