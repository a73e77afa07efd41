// Wire encoding for ADS. Resources are encoded once per snapshot (cached by object identity) so a push
// to many Envoys, or a resend, costs one protobuf encode per resource, not one per stream.
import type protobuf from 'protobufjs';
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
