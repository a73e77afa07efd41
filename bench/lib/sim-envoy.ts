// A simulated Envoy for fleet-scale benchmarks: one ADS stream on its own connection, subscribing the way
// Envoy does (CDS and LDS wildcard; then EDS for the clusters it learned, RDS for the route configs its
// listeners name, ECDS for their discovered HTTP filters), decoding every resource, ACKing every response
// and recording when each version arrived and when it was ACKed. No Envoy is mocked in a test with it: it
// only stands in for 500 Envoys where 500 real ones would not fit on the machine.
//
// Two modes: state of the world (StreamAggregatedResources) and delta (DeltaAggregatedResources:
// subscribe/unsubscribe lists, only changed resources, removals by name). In delta mode a type's "version"
// is the response's system_version_info, which go-control-plane's snapshot cache sets to the type's
// snapshot version; a control plane that leaves it empty cannot be timed by version in this mode.
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { encodeDiscoveryRequest, decodeDiscoveryResponse } from '../../xds-server/protos/codec.ts';
import { messageType } from '../../xds-server/protos/load.ts';
import { ANY_TYPES, TYPE_URLS, kindOfTypeUrl, type ResourceKind } from '../../snapshots/type-urls.ts';
import { ADS_PATH, DELTA_ADS_PATH } from '../../xds-server/ads/service.ts';

const MESSAGES: Record<ResourceKind, string> = {
  cluster: 'envoy.config.cluster.v3.Cluster',
  endpoint: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'envoy.config.listener.v3.Listener',
  route: 'envoy.config.route.v3.RouteConfiguration',
  extensionConfig: 'envoy.config.core.v3.TypedExtensionConfig',
};
/** Kept per type: the versions a run asks about are the last few. */
const HISTORY = 8;

export type SimMode = 'sotw' | 'delta';

export interface VersionStamp {
  arrivedMs: number;
  ackedMs: number;
}

type Held = { eds: string | undefined } | { routes: string[]; filters: string[] } | null;

interface TypeState {
  /** Names subscribed to; undefined = wildcard (CDS, LDS). */
  names: string[] | undefined;
  version: string;
  nonce: string;
  /**
   * Delta: the resources this client holds, by name, each as what its dependents need of it (a cluster's EDS
   * name, a listener's route and filter names; nothing for the others), so removals and dependents are
   * known. Every resource is decoded in full when it arrives; only the decoded message is not kept: 500
   * clients' messages in the one heap of the benchmark made its garbage collector the simulator's main cost
   * (a real Envoy keeps its config in its own process).
   */
  held: Map<string, Held>;
  /** version → when it last became the version in force: arrived and ACKed. */
  seen: Map<string, VersionStamp>;
  subscribed: boolean;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

export class SimEnvoy {
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;
  private readonly types = new Map<ResourceKind, TypeState>();
  private sentNode = false;
  error: string | undefined;
  errorCode: number | undefined;
  responses = 0;
  resourcesDecoded = 0;

  constructor(
    readonly id: string,
    private readonly port: number,
    readonly mode: SimMode = 'sotw',
  ) {
    for (const kind of Object.keys(TYPE_URLS) as ResourceKind[]) {
      const wildcard = kind === 'cluster' || kind === 'listener';
      this.types.set(kind, { names: wildcard ? undefined : [], version: '', nonce: '', held: new Map(), seen: new Map(), subscribed: false });
    }
  }

  start(): void {
    this.client = new grpc.Client(`127.0.0.1:${this.port}`, grpc.credentials.createInsecure(), {
      // Each simulated Envoy has its own connection, as real ones do.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': -1,
    });
    this.call = this.client.makeBidiStreamRequest(this.mode === 'delta' ? DELTA_ADS_PATH : ADS_PATH, (b: Buffer) => b, (b: Buffer) => b);
    this.call.on('data', (bytes: Buffer) => (this.mode === 'delta' ? this.onDeltaResponse(bytes) : this.onResponse(bytes)));
    this.call.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) {
        this.error ??= err.message;
        this.errorCode ??= err.code;
      }
    });
    this.subscribe('cluster');
    this.subscribe('listener');
  }

  close(): void {
    this.call?.cancel();
    this.client?.close();
  }

  /** When `kind` last changed to `version` and was ACKed, or undefined. */
  ackedAt(kind: ResourceKind, version: string): number | undefined {
    return this.types.get(kind)!.seen.get(version)?.ackedMs;
  }

  ackedVersion(kind: ResourceKind): string {
    return this.types.get(kind)!.version;
  }

  private send(kind: ResourceKind, state: TypeState): void {
    const request: Parameters<typeof encodeDiscoveryRequest>[0] = {
      type_url: TYPE_URLS[kind],
      version_info: state.version,
      response_nonce: state.nonce,
      resource_names: state.names ?? [],
    };
    if (!this.sentNode) {
      request.node = { id: this.id, cluster: 'bench-sim', user_agent_name: 'envoy' };
      this.sentNode = true;
    }
    this.call!.write(encodeDiscoveryRequest(request));
  }

  private subscribe(kind: ResourceKind): void {
    const state = this.types.get(kind)!;
    state.subscribed = true;
    // Delta wildcard: a first request that subscribes to nothing by name.
    if (this.mode === 'delta') this.sendDelta(kind, { subscribe: [], unsubscribe: [], nonce: '' });
    else this.send(kind, state);
  }

  private sendDelta(kind: ResourceKind, r: { subscribe: string[]; unsubscribe: string[]; nonce: string }): void {
    deltaRequestType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
    const request: Record<string, unknown> = {
      type_url: TYPE_URLS[kind],
      resource_names_subscribe: r.subscribe,
      resource_names_unsubscribe: r.unsubscribe,
      response_nonce: r.nonce,
    };
    if (!this.sentNode) {
      request.node = { id: this.id, cluster: 'bench-sim', user_agent_name: 'envoy' };
      this.sentNode = true;
    }
    this.call!.write(Buffer.from(deltaRequestType.encode(deltaRequestType.fromObject(request)).finish()));
  }

  /** A dependent type's names changed: ask for the new set (Envoy does so before ACKing the parent). */
  private resubscribe(kind: ResourceKind, names: string[]): void {
    const state = this.types.get(kind)!;
    const sorted = [...new Set(names)].sort();
    // Envoy opens no subscription for a type it needs nothing of (an empty SotW list would read as wildcard).
    if (!state.subscribed && sorted.length === 0) return;
    if (state.subscribed && state.names && sorted.length === state.names.length && sorted.every((n, i) => n === state.names![i])) return;
    if (this.mode === 'delta') {
      const before = new Set(state.names ?? []);
      const after = new Set(sorted);
      const subscribe = sorted.filter((n) => !before.has(n));
      const unsubscribe = [...before].filter((n) => !after.has(n));
      state.names = sorted;
      state.subscribed = true;
      if (subscribe.length > 0 || unsubscribe.length > 0) this.sendDelta(kind, { subscribe, unsubscribe, nonce: '' });
      return;
    }
    state.names = sorted;
    state.subscribed = true;
    this.send(kind, state);
  }

  private onDeltaResponse(bytes: Buffer): void {
    const arrivedMs = now();
    this.responses += 1;
    deltaResponseType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
    const response = deltaResponseType.decode(bytes) as unknown as {
      system_version_info: string;
      type_url: string;
      nonce: string;
      resources: { name: string; resource?: { value: Uint8Array } }[];
      removed_resources: string[];
    };
    const kind = kindOfTypeUrl(response.type_url);
    if (!kind) return;
    const state = this.types.get(kind)!;
    const type = typeOf(kind);
    for (const r of response.resources) {
      if (!r.resource) continue;
      const decoded = type.decode(r.resource.value) as protobuf.Message & Record<string, unknown>;
      this.resourcesDecoded += 1;
      if (kind === 'cluster') state.held.set(r.name, { eds: isEdsCluster(decoded) ? edsName(decoded) : undefined });
      else if (kind === 'listener') {
        const refs = { routes: [] as string[], filters: [] as string[] };
        collectListenerRefs(decoded, refs.routes, refs.filters);
        state.held.set(r.name, refs);
      } else state.held.set(r.name, null);
    }
    for (const name of response.removed_resources) state.held.delete(name);
    if (kind === 'cluster') {
      const names: string[] = [];
      for (const c of state.held.values()) if (c !== null && 'eds' in c && c.eds !== undefined) names.push(c.eds);
      this.resubscribe('endpoint', names);
    } else if (kind === 'listener') {
      const routes: string[] = [];
      const filters: string[] = [];
      for (const l of state.held.values()) {
        if (l === null || !('routes' in l)) continue;
        routes.push(...l.routes);
        filters.push(...l.filters);
      }
      this.resubscribe('route', routes);
      this.resubscribe('extensionConfig', filters);
    }
    const changed = state.version !== response.system_version_info;
    state.version = response.system_version_info;
    this.sendDelta(kind, { subscribe: [], unsubscribe: [], nonce: response.nonce });
    if (changed) {
      state.seen.delete(response.system_version_info);
      state.seen.set(response.system_version_info, { arrivedMs, ackedMs: now() });
      if (state.seen.size > HISTORY) state.seen.delete(state.seen.keys().next().value!);
    }
  }

  private onResponse(bytes: Buffer): void {
    const arrivedMs = now();
    this.responses += 1;
    const response = decodeDiscoveryResponse(bytes);
    const kind = kindOfTypeUrl(response.type_url);
    if (!kind) return;
    const type = typeOf(kind);
    const decoded = response.resources.map((r) => type.decode(r.value) as protobuf.Message & Record<string, unknown>);
    this.resourcesDecoded += decoded.length;
    if (kind === 'cluster') {
      this.resubscribe('endpoint', decoded.filter(isEdsCluster).map(edsName));
    } else if (kind === 'listener') {
      const routes: string[] = [];
      const filters: string[] = [];
      for (const l of decoded) collectListenerRefs(l, routes, filters);
      this.resubscribe('route', routes);
      this.resubscribe('extensionConfig', filters);
    }
    const state = this.types.get(kind)!;
    const changed = state.version !== response.version_info;
    state.version = response.version_info;
    state.nonce = response.nonce;
    this.send(kind, state);
    // Stamped when the version changes to this one (a version can come back: A, B, A); a resend of the
    // version in force keeps the earlier stamp.
    if (changed) {
      state.seen.delete(response.version_info);
      state.seen.set(response.version_info, { arrivedMs, ackedMs: now() });
      if (state.seen.size > HISTORY) state.seen.delete(state.seen.keys().next().value!);
    }
  }
}

// Cluster.DiscoveryType EDS = 3.
function isEdsCluster(c: Record<string, unknown>): boolean {
  return c.type === 3;
}

function edsName(c: Record<string, unknown>): string {
  const eds = c.eds_cluster_config as { service_name?: string } | undefined;
  return eds?.service_name || (c.name as string);
}

// Looked up once: a lookup by name walks the loaded protos (a third of the simulator's time per response).
const types = new Map<ResourceKind, protobuf.Type>();
function typeOf(kind: ResourceKind): protobuf.Type {
  let type = types.get(kind);
  if (type === undefined) {
    type = messageType(MESSAGES[kind]);
    types.set(kind, type);
  }
  return type;
}

let hcmType: protobuf.Type | undefined;
let deltaRequestType: protobuf.Type | undefined;
let deltaResponseType: protobuf.Type | undefined;

function collectListenerRefs(listener: Record<string, unknown>, routes: string[], filters: string[]): void {
  hcmType ??= messageType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  const chains = [...((listener.filter_chains as Record<string, unknown>[] | undefined) ?? [])];
  if (listener.default_filter_chain) chains.push(listener.default_filter_chain as Record<string, unknown>);
  for (const chain of chains) {
    for (const filter of (chain.filters as { typed_config?: { type_url: string; value: Uint8Array } }[] | undefined) ?? []) {
      const any = filter.typed_config;
      if (!any || any.type_url !== ANY_TYPES.hcm) continue;
      const hcm = hcmType.decode(any.value) as unknown as {
        rds?: { route_config_name?: string };
        http_filters?: { name: string; config_discovery?: unknown }[];
      };
      if (hcm.rds?.route_config_name) routes.push(hcm.rds.route_config_name);
      for (const f of hcm.http_filters ?? []) if (f.config_discovery) filters.push(f.name);
    }
  }
}

/** Whether the server at `port` answers delta ADS at all (UNIMPLEMENTED: no), bounded to `timeoutMs`. */
export async function probeDelta(port: number, timeoutMs = 5_000): Promise<boolean> {
  const probe = new SimEnvoy('sim-delta-probe', port, 'delta');
  probe.start();
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      if (probe.responses > 0) return true;
      if (probe.errorCode !== undefined) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  } finally {
    probe.close();
  }
}
