// A fake delta ADS stream that checks every write the server makes, as a delta client would see it: each
// response is for a type the client subscribes to, carries a fresh nonce and the snapshot's version of the
// type (system_version_info), holds only resources of that type that the client subscribes to, each with
// the version we define (a hash of its bytes) and never one the client already has at that version (unless
// a cluster changed: its endpoints are sent again), and removes only names the client had or named. It also
// keeps the client's view (name -> version), so a test can check that the client converged to the snapshot.
// Violations are collected, not thrown.
import { createHash } from 'node:crypto';
import { filterGenerationOfResource } from '../../snapshots/build.ts';
import type { Snapshot } from '../../snapshots/build.ts';
import { FULL_STATE_KINDS, kindOfTypeUrl, type ResourceKind } from '../../snapshots/type-urls.ts';
import { DeltaStreamSession } from '../../xds-server/ads/delta-session.ts';
import type { AdsEvents } from '../../xds-server/ads/events.ts';
import type { StreamSessionOptions, StreamSink } from '../../xds-server/ads/stream-session.ts';
import { WILDCARD } from '../../xds-server/ads/verdict.ts';
import type { SnapshotCache } from '../../xds-server/cache/snapshot-cache.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { decodeDeltaDiscoveryResponse, decodeResource, encodeResource, type DecodedDeltaResponse, type DeltaDiscoveryRequest } from '../../xds-server/protos/codec.ts';

interface ClientSubscription {
  wildcard: boolean;
  names: Set<string>;
}

export class CheckedDeltaStream implements StreamSink {
  readonly session: DeltaStreamSession;
  readonly responses: DecodedDeltaResponse[] = [];
  readonly violations: string[] = [];
  failed: { code: number; message: string } | undefined;
  /** What the client has, per type: name -> version (updated as it applies responses it ACKs). */
  readonly has = new Map<ResourceKind, Map<string, string>>();
  private readonly nonces = new Set<string>();
  private readonly subscriptions = new Map<ResourceKind, ClientSubscription>();
  private count = 0;

  constructor(
    private readonly cache: SnapshotCache,
    events: AdsEvents,
    private readonly group = 'default',
    options: Partial<StreamSessionOptions> = {},
  ) {
    this.session = new DeltaStreamSession(this, cache, events, silentLogger, options);
  }

  /** Sends a request as a client would, tracking what it subscribes to. */
  request(r: Partial<DeltaDiscoveryRequest> & { type_url: string }): void {
    const kind = kindOfTypeUrl(r.type_url);
    const subscribe = r.resource_names_subscribe ?? [];
    const unsubscribe = r.resource_names_unsubscribe ?? [];
    if (kind) {
      let s = this.subscriptions.get(kind);
      if (!s) {
        s = { wildcard: (subscribe.length === 0 && FULL_STATE_KINDS.has(kind)) || subscribe.includes(WILDCARD), names: new Set() };
        this.subscriptions.set(kind, s);
        if (r.initial_resource_versions) this.has.set(kind, new Map(Object.entries(r.initial_resource_versions)));
      }
      for (const n of unsubscribe) {
        if (n === WILDCARD) s.wildcard = false;
        else s.names.delete(n);
        if (!s.wildcard) this.has.get(kind)?.delete(n);
      }
      for (const n of subscribe) if (n === WILDCARD) s.wildcard = true;
      else s.names.add(n);
    }
    this.session.onRequest({ type_url: r.type_url, resource_names_subscribe: subscribe, resource_names_unsubscribe: unsubscribe, initial_resource_versions: r.initial_resource_versions ?? {}, response_nonce: r.response_nonce ?? '', ...(r.node ? { node: r.node } : {}), ...(r.error_detail ? { error_detail: r.error_detail } : {}) });
  }

  /** Applies the response to the client's view and ACKs it. */
  ack(response: DecodedDeltaResponse): void {
    const kind = kindOfTypeUrl(response.type_url)!;
    const has = this.has.get(kind) ?? new Map<string, string>();
    this.has.set(kind, has);
    for (const r of response.resources) has.set(r.name, r.version);
    for (const name of response.removed_resources) has.delete(name);
    this.request({ type_url: response.type_url, response_nonce: response.nonce });
  }

  nack(response: DecodedDeltaResponse, message: string): void {
    this.request({ type_url: response.type_url, response_nonce: response.nonce, error_detail: { code: 13, message } });
  }

  /** Responses since the last call. */
  take(): DecodedDeltaResponse[] {
    return this.responses.splice(0);
  }

  /** ACKs every response, and every response that follows, until none is left. */
  ackAll(): DecodedDeltaResponse[] {
    const all: DecodedDeltaResponse[] = [];
    for (let batch = this.take(); batch.length > 0; batch = this.take()) {
      for (const r of batch) this.ack(r);
      all.push(...batch);
    }
    return all;
  }

  /**
   * The client's view of a type against the snapshot: every subscribed resource that exists, at its
   * version, and nothing else. Empty when they agree.
   */
  divergence(kind: ResourceKind): string[] {
    const snapshot = this.cache.getSnapshot(this.group)!;
    const s = this.subscriptions.get(kind);
    const has = this.has.get(kind) ?? new Map<string, string>();
    const out: string[] = [];
    const wanted = new Map<string, string>();
    for (const [name, resource] of snapshot.resources[kind]) {
      if (s && (s.wildcard || s.names.has(name))) wanted.set(name, bytesVersion(kind, resource));
    }
    for (const [name, v] of wanted) if (has.get(name) !== v) out.push(`${kind}/${name}: client has ${has.get(name) ?? 'nothing'}, snapshot ${v}`);
    for (const name of has.keys()) if (!wanted.has(name)) out.push(`${kind}/${name}: client has it, the snapshot (or its subscription) does not`);
    return out;
  }

  write(bytes: Buffer): void {
    const r = decodeDeltaDiscoveryResponse(bytes);
    this.responses.push(r);
    const where = `delta response #${++this.count} (${r.type_url})`;
    const kind = kindOfTypeUrl(r.type_url);
    if (!kind) return void this.violations.push(`${where}: unknown type_url`);
    const s = this.subscriptions.get(kind);
    if (!s) this.violations.push(`${where}: the client never asked for this type`);
    else if (!s.wildcard && s.names.size === 0) this.violations.push(`${where}: the client subscribes to nothing of this type`);
    if (r.nonce === '') this.violations.push(`${where}: no nonce`);
    if (this.nonces.has(r.nonce)) this.violations.push(`${where}: nonce ${r.nonce} used before`);
    this.nonces.add(r.nonce);
    const snapshot: Snapshot | undefined = this.cache.getSnapshot(this.group);
    if (snapshot && r.system_version_info !== snapshot.versions[kind]) this.violations.push(`${where}: version ${r.system_version_info} is not the snapshot's ${snapshot.versions[kind]}`);
    const names = new Set<string>();
    for (const resource of r.resources) {
      if (resource.resource.type_url !== r.type_url) this.violations.push(`${where}: holds a resource of type ${resource.resource.type_url}`);
      const decoded = decodeResource(kind, resource.resource.value);
      const name = String(decoded.name ?? decoded.cluster_name);
      if (name !== resource.name) this.violations.push(`${where}: resource named "${resource.name}" is "${name}"`);
      names.add(name);
      if (s && !s.wildcard && !s.names.has(name)) this.violations.push(`${where}: sent "${name}", which the client did not subscribe to`);
      const hash = createHash('sha256').update(resource.resource.value).digest('hex').slice(0, 16);
      // The filter config's version is "<generation>.<hash>", the generation being the one inside it.
      const generation = kind === 'extensionConfig' ? /^(\d+)\./.exec(resource.version)?.[1] : undefined;
      if (kind === 'extensionConfig' && (generation === undefined || !Buffer.from(resource.resource.value).includes(`"generation":${generation}`))) {
        this.violations.push(`${where}: "${name}" has version ${resource.version}, which does not name the generation inside it`);
      }
      const v = generation === undefined ? hash : `${generation}.${hash}`;
      if (resource.version !== v) this.violations.push(`${where}: "${name}" has version ${resource.version}, not the hash of its bytes ${v}`);
    }
    for (const name of r.removed_resources) {
      if (names.has(name)) this.violations.push(`${where}: "${name}" both sent and removed`);
      const had = this.has.get(kind)?.has(name) ?? false;
      if (!had && !(s?.names.has(name) ?? false)) this.violations.push(`${where}: removes "${name}", which the client neither had nor named`);
    }
  }

  fail(code: number, message: string): void {
    this.failed = { code, message };
  }
}

function bytesVersion(kind: ResourceKind, resource: Record<string, unknown> & { name: string }): string {
  // The same definition as the server's, computed here from the encoding rather than trusted.
  const hash = createHash('sha256').update(encodeResource(kind, resource)).digest('hex').slice(0, 16);
  const generation = kind === 'extensionConfig' ? filterGenerationOfResource(resource) : undefined;
  return generation === undefined ? hash : `${generation}.${hash}`;
}
