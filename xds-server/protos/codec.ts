// Wire encoding for ADS. Resources are encoded once (snapshots/wire.ts, cached by object identity) so a
// push to many Envoys, or a resend, costs one protobuf encode per resource, not one per stream.
import type protobuf from 'protobufjs';
import { filterGenerationOfResource } from '../../snapshots/build.ts';
import type { Resource } from '../../snapshots/resource.ts';
import { TYPE_URLS, type ResourceKind } from '../../snapshots/type-urls.ts';
import { encodeMessage, encodeResource, resourceType, wireHash } from '../../snapshots/wire.ts';
import { messageType } from './load.ts';
import { readDeltaDiscoveryRequest, readDiscoveryRequest } from './request-decode.ts';

export { encodeResource };

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

let requestType: protobuf.Type | undefined;
let responseType: protobuf.Type | undefined;

/**
 * A DiscoveryResponse, written by hand around the resources' bytes (encoded once, snapshots/wire.ts): the same
 * bytes protobufjs writes (fields in number order), without building a message object per resource and copying
 * every resource twice, which cost ~10 ms for a 5,000-cluster response on its way to Envoy.
 */
export function encodeDiscoveryResponse(kind: ResourceKind, version: string, nonce: string, resources: EncodedResource[]): Buffer {
  const typeUrl = Buffer.from(TYPE_URLS[kind]);
  const versionBytes = Buffer.from(version);
  const nonceBytes = Buffer.from(nonce);
  // Every resource's Any starts with the same type_url (field 1): written once here, copied per resource.
  const anyHead = Buffer.allocUnsafe(fieldLength(typeUrl.length));
  anyHead.set(typeUrl, writeTagAndLength(anyHead, 0, 0x0a, typeUrl.length));
  let total = fieldLength(versionBytes.length) + fieldLength(typeUrl.length) + fieldLength(nonceBytes.length);
  for (let i = 0; i < resources.length; i++) total += fieldLength(anyHead.length + fieldLength(resources[i]!.bytes.length));
  const out = Buffer.allocUnsafe(total);
  // version_info = 1 (written even when empty, as protobufjs writes a field that is set).
  let at = writeBytesField(out, 0, 0x0a, versionBytes);
  for (let i = 0; i < resources.length; i++) {
    const bytes = resources[i]!.bytes;
    // resources = 2, each an Any: type_url = 1, value = 2.
    at = writeTagAndLength(out, at, 0x12, anyHead.length + fieldLength(bytes.length));
    out.set(anyHead, at);
    at = writeBytesField(out, at + anyHead.length, 0x12, bytes);
  }
  at = writeBytesField(out, at, 0x22, typeUrl); // type_url = 4
  at = writeBytesField(out, at, 0x2a, nonceBytes); // nonce = 5
  if (at !== out.length) throw new Error(`DiscoveryResponse size mismatch: wrote ${at} of ${out.length} bytes`);
  return out;
}

function writeBytesField(out: Buffer, at: number, tag: number, bytes: Uint8Array): number {
  at = writeTagAndLength(out, at, tag, bytes.length);
  out.set(bytes, at);
  return at + bytes.length;
}

/** A length-delimited field's size on the wire: tag (one byte here), length varint, bytes. */
function fieldLength(n: number): number {
  return 1 + varintLength(n) + n;
}

function varintLength(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

function writeTagAndLength(out: Buffer, at: number, tag: number, n: number): number {
  out[at++] = tag;
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/** A DiscoveryRequest as the ADS service reads it (request-decode.ts: protobufjs's result, read faster). */
export function decodeDiscoveryRequest(bytes: Buffer): DiscoveryRequest {
  return readDiscoveryRequest(bytes);
}

/** The same request read by protobufjs (decode, then toObject): what decodeDiscoveryRequest must equal. */
export function decodeDiscoveryRequestByProtobufjs(bytes: Buffer): DiscoveryRequest {
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
  const type = resourceType(kind);
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
  const hash = wireHash(kind, resource).slice(0, 16);
  // The filter config's version names its generation, as the state-of-the-world type version does (build.ts):
  // a delta client reconnecting names it in initial_resource_versions.
  const generation = kind === 'extensionConfig' ? filterGenerationOfResource(resource) : undefined;
  const version = generation === undefined ? hash : `${generation}.${hash}`;
  versionCache.set(resource, version);
  return version;
}

/** A DeltaDiscoveryRequest as the ADS service reads it (request-decode.ts). */
export function decodeDeltaDiscoveryRequest(bytes: Buffer): DeltaDiscoveryRequest {
  return readDeltaDiscoveryRequest(bytes);
}

/** The same request read by protobufjs: what decodeDeltaDiscoveryRequest must equal. */
export function decodeDeltaDiscoveryRequestByProtobufjs(bytes: Buffer): DeltaDiscoveryRequest {
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
  const head = encodeMessage(deltaResponseType, { system_version_info: systemVersion });
  const tail = encodeMessage(deltaResponseType, { type_url: typeUrl, nonce, removed_resources: removed });
  const entries = resources.map((r) => deltaResourceEntry(typeUrl, r));
  let size = head.length + tail.length;
  for (const e of entries) size += fieldLength(e.length);
  const out = Buffer.allocUnsafe(size);
  out.set(head, 0);
  let at = head.length;
  for (const e of entries) {
    at = writeTagAndLength(out, at, RESOURCES_TAG, e.length);
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
  const entry = encodeMessage(deltaResourceType, { name: r.name, version: r.version, resource: { type_url: typeUrl, value: r.bytes } });
  deltaEntries.set(r.bytes, { name: r.name, version: r.version, typeUrl, entry });
  return entry;
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
