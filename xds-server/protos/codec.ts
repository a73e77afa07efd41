// Wire encoding for ADS. Resources are encoded once per snapshot (cached by object identity) so a push
// to many Envoys, or a resend, costs one protobuf encode per resource, not one per stream.
import { createHash } from 'node:crypto';
import type protobuf from 'protobufjs';
import { filterGenerationOfResource } from '../../snapshots/build.ts';
import type { Resource } from '../../snapshots/resource.ts';
import { TYPE_URLS, type ResourceKind } from '../../snapshots/type-urls.ts';
import { messageType } from './load.ts';

/** google.protobuf.Struct as protobufjs decodes it (its built-in Struct uses camelCase field names). */
export interface StructObject {
  fields?: Record<string, { stringValue?: string } & Record<string, unknown>>;
}

export interface NodeInfo {
  id?: string;
  cluster?: string;
  user_agent_name?: string;
  user_agent_version?: string;
  metadata?: StructObject;
}

/** A string entry of node.metadata (absent, or not a string: undefined). */
export function nodeMetadataString(node: NodeInfo | undefined, key: string): string | undefined {
  const value = node?.metadata?.fields?.[key]?.stringValue;
  return typeof value === 'string' ? value : undefined;
}

export interface DiscoveryRequest {
  version_info: string;
  node?: NodeInfo;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: { code?: number; message?: string };
}

export interface EncodedResource {
  name: string;
  bytes: Uint8Array;
}

const MESSAGE_BY_KIND: Record<ResourceKind, string> = {
  cluster: 'envoy.config.cluster.v3.Cluster',
  endpoint: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'envoy.config.listener.v3.Listener',
  route: 'envoy.config.route.v3.RouteConfiguration',
  extensionConfig: 'envoy.config.core.v3.TypedExtensionConfig',
};

let requestType: protobuf.Type | undefined;
let responseType: protobuf.Type | undefined;
const encodedCache = new WeakMap<Resource, Uint8Array>();

export function encodeResource(kind: ResourceKind, resource: Resource): Uint8Array {
  const cached = encodedCache.get(resource);
  if (cached) return cached;
  const type = messageType(MESSAGE_BY_KIND[kind]);
  const bytes = type.encode(type.fromObject(resource)).finish();
  encodedCache.set(resource, bytes);
  return bytes;
}

export function encodeDiscoveryResponse(kind: ResourceKind, version: string, nonce: string, resources: EncodedResource[]): Buffer {
  responseType ??= messageType('envoy.service.discovery.v3.DiscoveryResponse');
  const typeUrl = TYPE_URLS[kind];
  const message = responseType.fromObject({
    version_info: version,
    type_url: typeUrl,
    nonce,
    resources: resources.map((r) => ({ type_url: typeUrl, value: r.bytes })),
  });
  return Buffer.from(responseType.encode(message).finish());
}

export function decodeDiscoveryRequest(bytes: Buffer): DiscoveryRequest {
  requestType ??= messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const obj = requestType.toObject(requestType.decode(bytes), { defaults: true, arrays: true, longs: Number, enums: String }) as {
    version_info: string;
    node?: DiscoveryRequest['node'] | null;
    resource_names: string[];
    type_url: string;
    response_nonce: string;
    error_detail?: { code?: number; message?: string } | null;
  };
  const request: DiscoveryRequest = {
    version_info: obj.version_info,
    resource_names: obj.resource_names,
    type_url: obj.type_url,
    response_nonce: obj.response_nonce,
  };
  if (obj.node) request.node = obj.node;
  if (obj.error_detail) request.error_detail = obj.error_detail;
  return request;
}

/** For tests and raw clients: the other direction of each message. */
export function encodeDiscoveryRequest(request: Partial<DiscoveryRequest>): Buffer {
  requestType ??= messageType('envoy.service.discovery.v3.DiscoveryRequest');
  return Buffer.from(requestType.encode(requestType.fromObject(request)).finish());
}

export interface DecodedResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: { type_url: string; value: Uint8Array }[];
}

export function decodeDiscoveryResponse(bytes: Buffer): DecodedResponse {
  responseType ??= messageType('envoy.service.discovery.v3.DiscoveryResponse');
  return responseType.toObject(responseType.decode(bytes), { defaults: true, arrays: true }) as DecodedResponse;
}

export function decodeResource(kind: ResourceKind, bytes: Uint8Array): Record<string, unknown> {
  const type = messageType(MESSAGE_BY_KIND[kind]);
  return type.toObject(type.decode(bytes), { longs: Number, enums: String, json: true }) as Record<string, unknown>;
}

// Delta (incremental) xDS.

export interface DeltaDiscoveryRequest {
  node?: NodeInfo;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  /** What the client already has (on a new stream), by name: the versions we gave those resources. */
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: { code?: number; message?: string };
}

/** A resource in a delta response: its name, its own version, its bytes. */
export interface VersionedResource extends EncodedResource {
  version: string;
}

let deltaRequestType: protobuf.Type | undefined;
let deltaResponseType: protobuf.Type | undefined;
const versionCache = new WeakMap<Resource, string>();

/**
 * A resource's own version: a hash of its encoded bytes, so it is the same for the same content on every
 * stream and across restarts of the control plane (a reconnecting client's initial_resource_versions match).
 */
export function resourceVersion(kind: ResourceKind, resource: Resource): string {
  const cached = versionCache.get(resource);
  if (cached) return cached;
  const hash = createHash('sha256').update(encodeResource(kind, resource)).digest('hex').slice(0, 16);
  // The filter config's version names its generation, as the state-of-the-world type version does (build.ts):
  // a delta client reconnecting names it in initial_resource_versions.
  const generation = kind === 'extensionConfig' ? filterGenerationOfResource(resource) : undefined;
  const version = generation === undefined ? hash : `${generation}.${hash}`;
  versionCache.set(resource, version);
  return version;
}

export function decodeDeltaDiscoveryRequest(bytes: Buffer): DeltaDiscoveryRequest {
  deltaRequestType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const obj = deltaRequestType.toObject(deltaRequestType.decode(bytes), { defaults: true, arrays: true, objects: true, longs: Number, enums: String }) as {
    node?: NodeInfo | null;
    type_url: string;
    resource_names_subscribe: string[];
    resource_names_unsubscribe: string[];
    initial_resource_versions: Record<string, string>;
    response_nonce: string;
    error_detail?: { code?: number; message?: string } | null;
  };
  const request: DeltaDiscoveryRequest = {
    type_url: obj.type_url,
    resource_names_subscribe: obj.resource_names_subscribe,
    resource_names_unsubscribe: obj.resource_names_unsubscribe,
    initial_resource_versions: obj.initial_resource_versions ?? {},
    response_nonce: obj.response_nonce,
  };
  if (obj.node) request.node = obj.node;
  if (obj.error_detail) request.error_detail = obj.error_detail;
  return request;
}

/**
 * The same bytes protobufjs writes for the whole message, built from parts: the response's own fields, and
 * each resource's entry (a discovery Resource: name, version, the Any), encoded once per resource and version
 * and shared by every stream. A delta initial sync sends the same 1,000 resources to each of hundreds of
 * Envoys: encoding the entries per stream was most of its cost.
 */
export function encodeDeltaDiscoveryResponse(kind: ResourceKind, systemVersion: string, nonce: string, resources: VersionedResource[], removed: string[]): Buffer {
  deltaResponseType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const typeUrl = TYPE_URLS[kind];
  // protobufjs writes the fields in declaration order: system_version_info (1), resources (2), type_url (4),
  // removed_resources (6), nonce (5); the parts go in that order.
  const head = deltaResponseType.encode(deltaResponseType.fromObject({ system_version_info: systemVersion })).finish();
  const tail = deltaResponseType.encode(deltaResponseType.fromObject({ type_url: typeUrl, nonce, removed_resources: removed })).finish();
  const entries = resources.map((r) => deltaResourceEntry(typeUrl, r));
  let size = head.length + tail.length;
  for (const e of entries) size += 1 + deltaVarintLength(e.length) + e.length;
  const out = Buffer.allocUnsafe(size);
  out.set(head, 0);
  let at = head.length;
  for (const e of entries) {
    out[at++] = RESOURCES_TAG;
    at = writeDeltaVarint(out, at, e.length);
    out.set(e, at);
    at += e.length;
  }
  out.set(tail, at);
  return out;
}

/** Field 2 (resources), length-delimited. */
const RESOURCES_TAG = (2 << 3) | 2;
let deltaResourceType: protobuf.Type | undefined;
const deltaEntries = new WeakMap<Uint8Array, { name: string; version: string; typeUrl: string; entry: Uint8Array }>();

function deltaResourceEntry(typeUrl: string, r: VersionedResource): Uint8Array {
  const known = deltaEntries.get(r.bytes);
  if (known !== undefined && known.name === r.name && known.version === r.version && known.typeUrl === typeUrl) return known.entry;
  deltaResourceType ??= messageType('envoy.service.discovery.v3.Resource');
  const entry = deltaResourceType.encode(deltaResourceType.fromObject({ name: r.name, version: r.version, resource: { type_url: typeUrl, value: r.bytes } })).finish();
  deltaEntries.set(r.bytes, { name: r.name, version: r.version, typeUrl, entry });
  return entry;
}

function deltaVarintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    length += 1;
  }
  return length;
}

function writeDeltaVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

/** For tests and simulated clients: the other direction of each delta message. */
export function encodeDeltaDiscoveryRequest(request: Partial<DeltaDiscoveryRequest>): Buffer {
  deltaRequestType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  return Buffer.from(deltaRequestType.encode(deltaRequestType.fromObject(request)).finish());
}

export interface DecodedDeltaResponse {
  system_version_info: string;
  type_url: string;
  nonce: string;
  resources: { name: string; version: string; resource: { type_url: string; value: Uint8Array } }[];
  removed_resources: string[];
}

export function decodeDeltaDiscoveryResponse(bytes: Buffer): DecodedDeltaResponse {
  deltaResponseType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  return deltaResponseType.toObject(deltaResponseType.decode(bytes), { defaults: true, arrays: true }) as DecodedDeltaResponse;
}
