// One ADS stream: the node it speaks for, and per resource type what was asked, sent, ACKed and NACKed.
// Requests are classified by classifyRequest(); responses go out in PUSH_ORDER on this one stream.
import type { Snapshot } from '../../snapshots/build.ts';
import { FULL_STATE_KINDS, PUSH_ORDER, kindOfTypeUrl, type ResourceKind } from '../../snapshots/type-urls.ts';
import { DEFAULT_GROUP, GATEWAY_METADATA_KEY, gatewayOfGroup, nodeGroup, type Settlement, type SnapshotCache, type SnapshotWatcher, type WatcherLabel } from '../cache/snapshot-cache.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { encodeDiscoveryResponse, encodeResource, resourceVersion, type DiscoveryRequest, type EncodedResource } from '../protos/codec.ts';
import { clientKindOf, clientLabel, type ClientKind } from './client-kind.ts';
import type { AdsEvents } from './events.ts';
import type { AdsSession } from './session.ts';
import { classifyRequest, subscribesToNothing, type Subscription, type TypeStreamState } from './verdict.ts';

export interface NackRecord {
  rejectedVersion: string;
  lastGoodVersion: string;
  nonce: string;
  message: string;
  code: number;
  at: string;
}

/** A rejected version is sent again after a delay, so a transient failure (a busy port) heals by itself. */
export interface NackRetryOptions {
  /** Delay before the first resend of a rejected version; doubles with each further rejection of it. */
  initialMs: number;
  /** The delay never grows past this. */
  maxMs: number;
}

export const DEFAULT_NACK_RETRY: NackRetryOptions = { initialMs: 1_000, maxMs: 60_000 };

export interface StreamSessionOptions {
  clock: Clock;
  nackRetry: NackRetryOptions;
  /**
   * True when a client's first request names a version of the type newer than any we hold (a filter config
   * of a higher generation, from another replica): it is then answered only with the next snapshot, which
   * the control plane publishes above that version, so it is never sent a config older than its own.
   */
  holdsNewer?: (kind: ResourceKind, clientVersion: string) => boolean;
}

export const DEFAULT_STREAM_OPTIONS: StreamSessionOptions = { clock: systemClock, nackRetry: DEFAULT_NACK_RETRY };

interface RetryState {
  version: string;
  /** Resends of this version so far that were rejected again (1 after the first NACK). */
  attempts: number;
  nextAt: number;
  stop: AbortController;
}

interface TypeState extends TypeStreamState {
  ackedVersion?: string;
  nack?: NackRecord;
  retry?: RetryState;
}

export interface StreamSink {
  write(response: Buffer): void;
  /** Ends the stream with a gRPC status (protocol violations). */
  fail(code: number, message: string): void;
}

export interface TypeStatus {
  /** Subscribed to every resource of the type ("*" or the legacy empty list). */
  wildcard: boolean;
  /** Explicitly named resources. */
  subscribed: string[];
  sentVersion?: string;
  ackedVersion?: string;
  nack?: NackRecord;
  /** The rejected version is resent at nextRetryAt; attempts counts its rejections so far. */
  retry?: { version: string; attempts: number; nextRetryAt: string };
}

export interface StreamStatus {
  streamId: number;
  nodeId: string;
  nodeCluster: string;
  userAgent: string;
  /** envoy, grpc (a proxyless gRPC client), or xds-client (anything else). */
  clientKind: ClientKind;
  /** State of the world or delta (incremental) xDS. */
  variant?: 'sotw' | 'delta';
  /** The snapshot group it is served from: default (every gateway), gateway/<namespace>/<name>, proxyless-grpc. */
  group?: string;
  connectedAt: string;
  types: Partial<Record<ResourceKind, TypeStatus>>;
}

let streamIds = 1;
/** Stream ids are unique across both variants. */
export function nextStreamId(): number {
  return streamIds++;
}

export class StreamSession implements AdsSession {
  readonly streamId = nextStreamId();
  readonly variant = 'sotw' as const;
  readonly connectedAt: string;
  /** Epoch ms of the stream's first request. */
  readonly connectedAtMs: number;
  group = '';
  private node: NonNullable<DiscoveryRequest['node']> | undefined;
  private kindOfClient: ClientKind = 'xds-client';
  private readonly types = new Map<ResourceKind, TypeState>();
  /** Name -> version of each cluster in the last CDS response: what a new CDS response changes. */
  private sentClusters = new Map<string, string>();
  private nonce = 0;
  private unwatch: (() => void) | undefined;
  private closed = false;
  private readonly clock: Clock;
  private readonly retryOptions: NackRetryOptions;
  private readonly holdsNewer: StreamSessionOptions['holdsNewer'];

  constructor(
    private readonly sink: StreamSink,
    private readonly cache: SnapshotCache,
    private readonly events: AdsEvents,
    private readonly log: Logger,
    options: Partial<StreamSessionOptions> = {},
  ) {
    this.clock = options.clock ?? DEFAULT_STREAM_OPTIONS.clock;
    this.retryOptions = options.nackRetry ?? DEFAULT_NACK_RETRY;
    this.holdsNewer = options.holdsNewer;
    this.connectedAtMs = this.clock.now();
    this.connectedAt = new Date(this.connectedAtMs).toISOString();
  }

  get nodeId(): string {
    return this.node?.id ?? '';
  }

  get clientKind(): ClientKind {
    return this.kindOfClient;
  }

  get label(): WatcherLabel {
    return { nodeId: this.nodeId, streamId: this.streamId, client: this.kindOfClient };
  }

  /** Subscribes to the resource of this type and name (by wildcard or by name). */
  subscribesTo(kind: ResourceKind, name: string): boolean {
    const s = this.types.get(kind)?.subscription;
    return s !== undefined && (s.wildcard || s.names.has(name));
  }

  onRequest(request: DiscoveryRequest): void {
    if (this.closed) return;
    if (this.node === undefined) {
      // Envoy sends the node only on the first request (set_node_on_first_message_only).
      if (!request.node?.id) {
        this.sink.fail(3 /* INVALID_ARGUMENT */, 'the first DiscoveryRequest on a stream must carry node.id');
        return;
      }
      this.node = request.node;
      this.kindOfClient = clientKindOf(request.node);
      this.group = nodeGroup(request.node);
      this.unwatch = this.cache.watch(this);
      this.events.emit('stream-open', this.ref());
      const gateway = gatewayOfGroup(this.group);
      this.log.info(`${clientLabel(this.kindOfClient)} connected`, {
        node: this.nodeId,
        stream: this.streamId,
        client: this.kindOfClient,
        userAgent: this.userAgent(),
        group: this.group,
        ...(this.group === DEFAULT_GROUP ? { gateway: `every gateway (node.metadata has no "${GATEWAY_METADATA_KEY}")` } : gateway !== undefined ? { gateway } : {}),
      });
    }
    if (request.type_url === '') {
      this.sink.fail(3, 'DiscoveryRequest.type_url must be set on an aggregated (ADS) stream');
      return;
    }
    const kind = kindOfTypeUrl(request.type_url);
    if (kind === undefined) {
      this.log.warn('request for a type this server does not serve; not answered', { node: this.nodeId, client: this.kindOfClient, typeUrl: request.type_url });
      return;
    }
    const state = this.types.get(kind);
    const verdict = classifyRequest(state, request, FULL_STATE_KINDS.has(kind));
    switch (verdict.kind) {
      case 'stale-nonce':
        break;
      case 'ack':
        state!.ackedVersion = verdict.version;
        delete state!.nack;
        delete state!.nackedNonce;
        if (state!.retry) {
          this.log.info('a config the client had rejected is now accepted', { node: this.nodeId, client: this.kindOfClient, kind, version: verdict.version, rejections: state!.retry.attempts });
          this.stopRetry(state!);
        }
        this.events.emit('ack', { ...this.ref(), kind, version: verdict.version });
        break;
      case 'nack':
        this.recordNack(kind, state!, verdict, request.response_nonce);
        if (verdict.subscription) this.resubscribe(kind, state!, verdict.subscription);
        break;
      case 'nack-repeat':
        if (verdict.subscription) this.resubscribe(kind, state!, verdict.subscription);
        break;
      case 'initial':
        this.types.set(kind, { subscription: verdict.subscription });
        if (this.holdsNewer?.(kind, request.version_info ?? '')) break;
        this.resubscribe(kind, this.types.get(kind)!, verdict.subscription);
        break;
      case 'resubscribe':
        this.resubscribe(kind, state!, verdict.subscription);
        break;
    }
    // After the state changed, so listeners (waitUntilSettled) see what the request did.
    this.events.emit('request', { ...this.ref(), kind, verdict, names: request.resource_names, clientVersion: request.version_info ?? '' });
  }

  onSnapshot(snapshot: Snapshot): void {
    if (this.closed) return;
    let clustersWarm = false;
    for (const kind of PUSH_ORDER) {
      const state = this.types.get(kind);
      if (state === undefined || subscribesToNothing(state.subscription)) continue;
      // A new or changed cluster warms until it sees an EDS response, even for unchanged endpoints: follow
      // such a CDS with EDS (Istio does the same) so warming never waits for initial_fetch_timeout. A CDS
      // that only removes clusters warms nothing.
      const forced = kind === 'endpoint' && clustersWarm;
      if (!forced && state.lastSentVersion === snapshot.versions[kind]) continue;
      // A new version replaces a rejected one: its own answer decides whether to retry.
      if (state.retry && state.retry.version !== snapshot.versions[kind]) this.stopRetry(state);
      const warm = this.send(kind, snapshot);
      if (kind === 'cluster') clustersWarm = warm;
    }
  }

  settlement(kind: ResourceKind, version: string): Settlement {
    const state = this.types.get(kind);
    if (state === undefined || subscribesToNothing(state.subscription)) return { state: 'unsubscribed' };
    if (state.ackedVersion === version) return { state: 'applied' };
    if (state.nack?.rejectedVersion === version) return { state: 'rejected', message: state.nack.message };
    return { state: 'pending' };
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const state of this.types.values()) this.stopRetry(state);
    this.unwatch?.();
    if (this.node !== undefined) {
      this.events.emit('stream-close', { ...this.ref(), reason });
      this.log.info(`${clientLabel(this.kindOfClient)} disconnected`, { node: this.nodeId, stream: this.streamId, client: this.kindOfClient, reason });
    }
  }

  status(): StreamStatus {
    const types: StreamStatus['types'] = {};
    for (const [kind, s] of this.types) {
      types[kind] = {
        wildcard: s.subscription.wildcard,
        subscribed: [...s.subscription.names].sort(),
        ...(s.lastSentVersion !== undefined ? { sentVersion: s.lastSentVersion } : {}),
        ...(s.ackedVersion !== undefined ? { ackedVersion: s.ackedVersion } : {}),
        ...(s.nack ? { nack: s.nack } : {}),
        ...(s.retry ? { retry: { version: s.retry.version, attempts: s.retry.attempts, nextRetryAt: new Date(s.retry.nextAt).toISOString() } } : {}),
      };
    }
    return {
      streamId: this.streamId,
      nodeId: this.nodeId,
      nodeCluster: this.node?.cluster ?? '',
      userAgent: this.userAgent(),
      clientKind: this.kindOfClient,
      variant: 'sotw',
      group: this.group,
      connectedAt: this.connectedAt,
      types,
    };
  }

  private userAgent(): string {
    return [this.node?.user_agent_name, this.node?.user_agent_version].filter(Boolean).join('/');
  }

  private resubscribe(kind: ResourceKind, state: TypeState, subscription: Subscription): void {
    state.subscription = subscription;
    if (subscribesToNothing(subscription)) {
      // Nothing to answer: a response the client does not watch is neither applied nor ACKed by it.
      this.stopRetry(state);
      return;
    }
    const snapshot = this.cache.getSnapshot(this.group);
    if (snapshot) this.send(kind, snapshot);
  }

  private recordNack(kind: ResourceKind, state: TypeState, verdict: Extract<ReturnType<typeof classifyRequest>, { kind: 'nack' }>, nonce: string): void {
    state.nack = {
      rejectedVersion: verdict.rejectedVersion,
      lastGoodVersion: verdict.lastGoodVersion,
      nonce,
      message: verdict.message,
      code: verdict.code,
      at: new Date(this.clock.now()).toISOString(),
    };
    state.nackedNonce = nonce;
    const attempts = state.retry?.version === verdict.rejectedVersion ? state.retry.attempts + 1 : 1;
    this.stopRetry(state);
    const delay = Math.min(this.retryOptions.maxMs, this.retryOptions.initialMs * 2 ** Math.min(attempts - 1, 30));
    const retry: RetryState = { version: verdict.rejectedVersion, attempts, nextAt: this.clock.now() + delay, stop: new AbortController() };
    state.retry = retry;
    this.log.error(`${clientLabel(this.kindOfClient)} rejected a config (NACK); resending the same version after a delay unless the snapshot changes first`, {
      node: this.nodeId,
      client: this.kindOfClient,
      kind,
      rejectedVersion: verdict.rejectedVersion,
      error: verdict.message,
      rejections: attempts,
      retryInMs: delay,
    });
    this.events.emit('nack', { ...this.ref(), kind, rejectedVersion: verdict.rejectedVersion, message: verdict.message });
    void this.clock.sleep(delay, retry.stop.signal).then(() => {
      if (this.closed || state.retry !== retry || retry.stop.signal.aborted) return;
      const snapshot = this.cache.getSnapshot(this.group);
      if (!snapshot || snapshot.versions[kind] !== retry.version || subscribesToNothing(state.subscription)) return;
      this.log.info('resending a rejected config', { node: this.nodeId, client: this.kindOfClient, kind, version: retry.version, rejections: retry.attempts });
      this.send(kind, snapshot);
    });
  }

  private stopRetry(state: TypeState): void {
    state.retry?.stop.abort();
    delete state.retry;
  }

  /** Sends the type's resources; for clusters, says whether any is new or changed since the last CDS sent. */
  private send(kind: ResourceKind, snapshot: Snapshot): boolean {
    const state = this.types.get(kind)!;
    const available = snapshot.resources[kind];
    const { subscription } = state;
    // Wildcard: every resource of the type. Otherwise only the names asked for that exist (for LDS and CDS
    // a subscribed name left out of the response means "deleted"; for the others, "not known yet").
    const wanted = subscription.wildcard ? [...available.keys()] : [...subscription.names].filter((n) => available.has(n)).sort();
    const encoded: EncodedResource[] = wanted.map((name) => ({ name, bytes: encodeResource(kind, available.get(name)!) }));
    const version = snapshot.versions[kind];
    const nonce = String(++this.nonce);
    state.lastNonce = nonce;
    state.lastSentVersion = version;
    this.sink.write(encodeDiscoveryResponse(kind, version, nonce, encoded));
    this.events.emit('response', { ...this.ref(), kind, version, nonce, names: wanted });
    if (kind !== 'cluster') return false;
    const sent = new Map(encoded.map((r) => [r.name, resourceVersion(kind, available.get(r.name)!)]));
    const warm = [...sent].some(([name, v]) => this.sentClusters.get(name) !== v);
    this.sentClusters = sent;
    return warm;
  }

  private ref(): { streamId: number; nodeId: string } {
    return { streamId: this.streamId, nodeId: this.nodeId };
  }
}
