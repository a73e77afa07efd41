// What a state-of-the-world and a delta ADS session share: the stream's identity, who the client is (from
// the node on its first request), which snapshot group serves it, its subscriptions per type, and the options.
// Each variant keeps only its own protocol (stream-session.ts, delta-session.ts).
import type { Snapshot } from '../../snapshots/build.ts';
import { kindOfTypeUrl, type ResourceKind } from '../../snapshots/type-urls.ts';
import { groupForClient, type ClientIdentity, type RefusalReason } from '../security/client-identity.ts';
import { DEFAULT_GROUP, GATEWAY_METADATA_KEY, gatewayOfGroup, type Settlement, type SnapshotCache, type WatcherLabel } from '../cache/snapshot-cache.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { NodeInfo } from '../protos/codec.ts';
import { clientKindOf, clientLabel, type ClientKind } from './client-kind.ts';
import type { AdsEvents } from './events.ts';
import { subscribesToNothing, type Subscription, type Verdict } from './verdict.ts';

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

export interface StreamSink {
  write(response: Buffer): void;
  /**
   * True while the client has not taken enough of what was written (write backpressure): snapshot pushes
   * wait, and once it drains the stream's owner calls resume(), which sends the newest snapshot only.
   */
  blocked?(): boolean;
  /** Ends the stream with a gRPC status (protocol violations). */
  fail(code: number, message: string): void;
}

export interface NackRecord {
  rejectedVersion: string;
  lastGoodVersion: string;
  nonce: string;
  message: string;
  code: number;
  at: string;
}

interface RetryState {
  version: string;
  /** Resends of this version so far that were rejected again (1 after the first NACK). */
  attempts: number;
  nextAt: number;
  stop: AbortController;
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

/** Per type: what the client subscribes to, and its standing NACK and the resend of the rejected version. */
export interface SessionTypeState {
  subscription: Subscription;
  lastSentVersion?: string;
  ackedVersion?: string;
  nack?: NackRecord;
  nackedNonce?: string;
  retry?: RetryState;
}

let streamIds = 1;
/** Stream ids are unique across both variants. */
export function nextStreamId(): number {
  return streamIds++;
}

export abstract class SessionBase<TState extends SessionTypeState> {
  readonly streamId = nextStreamId();
  readonly connectedAt: string;
  /** Epoch ms the stream opened. */
  readonly connectedAtMs: number;
  group = '';
  /**
   * The client certificate's identity on an mTLS port (null on a plaintext one): a gateway's certificate pins
   * the client to that gateway's group. Set before the first request.
   */
  identity: ClientIdentity | null = null;
  /** Told when the node contradicts the certificate (the stream is failed too). */
  onIdentityRefused: ((reason: RefusalReason, message: string, node: string) => void) | undefined;
  protected node: NodeInfo | undefined;
  protected kindOfClient: ClientKind = 'xds-client';
  protected readonly types = new Map<ResourceKind, TState>();
  protected nonce = 0;
  protected unwatch: (() => void) | undefined;
  protected closed = false;
  /** A snapshot push waited for the client to read (backpressure); resume() sends the newest one. */
  private deferred = false;
  protected readonly clock: Clock;
  protected readonly retryOptions: NackRetryOptions;
  protected readonly holdsNewer: StreamSessionOptions['holdsNewer'];

  constructor(
    protected readonly sink: StreamSink,
    protected readonly cache: SnapshotCache,
    protected readonly events: AdsEvents,
    protected readonly log: Logger,
    options: Partial<StreamSessionOptions> = {},
  ) {
    this.clock = options.clock ?? DEFAULT_STREAM_OPTIONS.clock;
    this.retryOptions = options.nackRetry ?? DEFAULT_NACK_RETRY;
    this.holdsNewer = options.holdsNewer;
    this.connectedAtMs = this.clock.now();
    this.connectedAt = new Date(this.connectedAtMs).toISOString();
  }

  abstract readonly variant: 'sotw' | 'delta';
  abstract onSnapshot(snapshot: Snapshot): void;

  /** Where this stream stands with `version` of a type: the same rule for both variants. */
  settlement(kind: ResourceKind, version: string): Settlement {
    const state = this.types.get(kind);
    if (state === undefined || subscribesToNothing(state.subscription)) return { state: 'unsubscribed' };
    if (state.ackedVersion === version) return { state: 'applied' };
    if (state.nack?.rejectedVersion === version) return { state: 'rejected', message: state.nack.message };
    return { state: 'pending' };
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

  /**
   * On the first request: takes the client's node (Envoy sends it only then: set_node_on_first_message_only),
   * starts watching its snapshot group and says who connected. False, with the stream failed, when the first
   * request carries no node id.
   */
  private adoptNode(node: NodeInfo | null | undefined, requestType: string, how: string): boolean {
    if (this.node !== undefined) return true;
    if (!node?.id) {
      this.sink.fail(3 /* INVALID_ARGUMENT */, `the first ${requestType} on a stream must carry node.id`);
      return false;
    }
    const decision = groupForClient(this.identity, node);
    if (!decision.ok) {
      this.onIdentityRefused?.(decision.reason, decision.message, node.id);
      this.sink.fail(7 /* PERMISSION_DENIED */, decision.message);
      return false;
    }
    this.node = node;
    this.kindOfClient = clientKindOf(node);
    this.group = decision.group;
    this.unwatch = this.cache.watch(this);
    this.events.emit('stream-open', this.ref());
    const gateway = gatewayOfGroup(this.group);
    this.log.info(`${clientLabel(this.kindOfClient)} connected${how}`, {
      node: this.nodeId,
      stream: this.streamId,
      client: this.kindOfClient,
      userAgent: userAgentOf(node),
      group: this.group,
      ...(this.identity ? { certificate: this.identity.uri, certificateSerial: this.identity.serial } : {}),
      ...(this.group === DEFAULT_GROUP ? { gateway: `every gateway (node.metadata has no "${GATEWAY_METADATA_KEY}")` } : gateway !== undefined ? { gateway } : {}),
    });
    return true;
  }

  /**
   * Records a NACK and resends the rejected version after a backoff (doubling per rejection of the same version,
   * capped) unless the snapshot moves on or the client unsubscribes first: a transient failure heals by itself.
   */
  protected recordNack(kind: ResourceKind, state: TState, verdict: Extract<Verdict, { kind: 'nack' }>, nonce: string, resend: (snapshot: Snapshot) => void): void {
    state.nack = { rejectedVersion: verdict.rejectedVersion, lastGoodVersion: verdict.lastGoodVersion, nonce, message: verdict.message, code: verdict.code, at: new Date(this.clock.now()).toISOString() };
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
      resend(snapshot);
    });
  }

  protected stopRetry(state: TState): void {
    state.retry?.stop.abort();
    delete state.retry;
  }

  /**
   * True when the client has not read what it was sent: the push is left out and remembered. Every
   * snapshot is complete, so a client that skips some gets the newest one on resume(), as a reconnecting
   * client would (only what differs from what it was last sent).
   */
  protected deferIfBlocked(): boolean {
    if (!this.sink.blocked?.()) return false;
    this.deferred = true;
    return true;
  }

  /** The client has read its backlog: sends the newest snapshot if a push was left out meanwhile. */
  resume(): void {
    if (!this.deferred || this.closed) return;
    this.deferred = false;
    const snapshot = this.cache.getSnapshot(this.group);
    if (snapshot) this.onSnapshot(snapshot);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const state of this.types.values()) this.stopRetry(state);
    this.unwatch?.();
    if (this.node !== undefined) {
      this.events.emit('stream-close', { ...this.ref(), reason });
      this.log.info(`${clientLabel(this.kindOfClient)} disconnected${this.variant === 'delta' ? ' (delta xDS)' : ''}`, { node: this.nodeId, stream: this.streamId, client: this.kindOfClient, reason });
    }
  }

  answeredEverySent(): boolean {
    // Asked after every request of an initial sync: read the state as it is (status() sorts every name).
    let sent = 0;
    for (const s of this.types.values()) {
      if (s.lastSentVersion === undefined) continue;
      sent += 1;
      if (s.ackedVersion !== s.lastSentVersion && s.nack?.rejectedVersion !== s.lastSentVersion) return false;
    }
    return sent > 0;
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
      userAgent: userAgentOf(this.node),
      clientKind: this.kindOfClient,
      variant: this.variant,
      group: this.group,
      connectedAt: this.connectedAt,
      types,
    };
  }

  /**
   * What every request goes through first, in both variants: the node on the first one, an ADS type URL, a
   * type we serve. The type, or undefined when the request is not to be answered (the stream may be failed).
   */
  protected requestKind(node: NodeInfo | null | undefined, typeUrl: string, requestType: string, how: string): ResourceKind | undefined {
    if (this.closed) return undefined;
    if (!this.adoptNode(node, requestType, how)) return undefined;
    if (typeUrl === '') {
      this.sink.fail(3, `${requestType}.type_url must be set on an aggregated (ADS) stream`);
      return undefined;
    }
    const kind = kindOfTypeUrl(typeUrl);
    if (kind === undefined) this.log.warn(`${requestType} for a type this server does not serve; not answered`, { node: this.nodeId, client: this.kindOfClient, typeUrl });
    return kind;
  }

  protected ref(): { streamId: number; nodeId: string } {
    return { streamId: this.streamId, nodeId: this.nodeId };
  }
}

function userAgentOf(node: NodeInfo | null | undefined): string {
  return [node?.user_agent_name, node?.user_agent_version].filter(Boolean).join('/');
}
