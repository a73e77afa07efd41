// One ADS stream: the node it speaks for, and per resource type what was asked, sent, ACKed and NACKed.
// Requests are classified by classifyRequest(); responses go out in PUSH_ORDER on this one stream.
import type { Snapshot } from '../../snapshots/build.ts';
import { FULL_STATE_KINDS, PUSH_ORDER, kindOfTypeUrl, type ResourceKind } from '../../snapshots/type-urls.ts';
import { nodeGroup, type SnapshotCache, type SnapshotWatcher } from '../cache/snapshot-cache.ts';
import type { Logger } from '../log.ts';
import { encodeDiscoveryResponse, encodeResource, type DiscoveryRequest, type EncodedResource } from '../protos/codec.ts';
import type { AdsEvents } from './events.ts';
import { classifyRequest, type TypeStreamState } from './verdict.ts';

export interface NackRecord {
  rejectedVersion: string;
  lastGoodVersion: string;
  nonce: string;
  message: string;
  code: number;
  at: string;
}

interface TypeState extends TypeStreamState {
  ackedVersion?: string;
  nack?: NackRecord;
}

export interface StreamSink {
  write(response: Buffer): void;
  /** Ends the stream with a gRPC status (protocol violations). */
  fail(code: number, message: string): void;
}

export interface StreamStatus {
  streamId: number;
  nodeId: string;
  nodeCluster: string;
  userAgent: string;
  connectedAt: string;
  types: Partial<Record<ResourceKind, { sentVersion?: string; ackedVersion?: string; subscribed: string[]; nack?: NackRecord }>>;
}

let nextStreamId = 1;

export class StreamSession implements SnapshotWatcher {
  readonly streamId = nextStreamId++;
  readonly connectedAt = new Date().toISOString();
  group = '';
  private node: NonNullable<DiscoveryRequest['node']> | undefined;
  private readonly types = new Map<ResourceKind, TypeState>();
  private nonce = 0;
  private unwatch: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly sink: StreamSink,
    private readonly cache: SnapshotCache,
    private readonly events: AdsEvents,
    private readonly log: Logger,
  ) {}

  get nodeId(): string {
    return this.node?.id ?? '';
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
      this.group = nodeGroup(request.node);
      this.unwatch = this.cache.watch(this);
      this.events.emit('stream-open', this.ref());
      this.log.info('envoy connected', { node: this.nodeId, stream: this.streamId });
    }
    if (request.type_url === '') {
      this.sink.fail(3, 'DiscoveryRequest.type_url must be set on an aggregated (ADS) stream');
      return;
    }
    const kind = kindOfTypeUrl(request.type_url);
    if (kind === undefined) {
      this.log.warn('request for a type this server does not serve; not answered', { node: this.nodeId, typeUrl: request.type_url });
      return;
    }
    const state = this.types.get(kind);
    const verdict = classifyRequest(state, request);
    this.events.emit('request', { ...this.ref(), kind, verdict, names: request.resource_names });
    switch (verdict.kind) {
      case 'stale-nonce':
        return;
      case 'ack':
        state!.ackedVersion = verdict.version;
        delete state!.nack;
        this.events.emit('ack', { ...this.ref(), kind, version: verdict.version });
        return;
      case 'nack':
        state!.nack = {
          rejectedVersion: verdict.rejectedVersion,
          lastGoodVersion: verdict.lastGoodVersion,
          nonce: request.response_nonce,
          message: verdict.message,
          code: verdict.code,
          at: new Date().toISOString(),
        };
        this.log.error('envoy rejected a config (NACK); keeping it from being resent until the snapshot changes', {
          node: this.nodeId,
          kind,
          rejectedVersion: verdict.rejectedVersion,
          error: verdict.message,
        });
        this.events.emit('nack', { ...this.ref(), kind, rejectedVersion: verdict.rejectedVersion, message: verdict.message });
        return;
      case 'initial':
      case 'resubscribe': {
        const next: TypeState = state ?? { names: new Set() };
        next.names = new Set(request.resource_names);
        this.types.set(kind, next);
        const snapshot = this.cache.getSnapshot(this.group);
        if (snapshot) this.send(kind, snapshot);
        return;
      }
    }
  }

  onSnapshot(snapshot: Snapshot): void {
    if (this.closed) return;
    let clustersSent = false;
    for (const kind of PUSH_ORDER) {
      const state = this.types.get(kind);
      if (state === undefined) continue;
      // A changed cluster warms until it sees an EDS response, even for unchanged endpoints: always follow
      // CDS with EDS (Istio does the same) so warming never waits for initial_fetch_timeout.
      const forced = kind === 'endpoint' && clustersSent;
      if (!forced && state.lastSentVersion === snapshot.versions[kind]) continue;
      this.send(kind, snapshot);
      if (kind === 'cluster') clustersSent = true;
    }
  }

  hasSettled(kind: ResourceKind, version: string): boolean {
    const state = this.types.get(kind);
    if (state === undefined) return true;
    return state.ackedVersion === version || state.nack?.rejectedVersion === version;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    if (this.node !== undefined) {
      this.events.emit('stream-close', { ...this.ref(), reason });
      this.log.info('envoy disconnected', { node: this.nodeId, stream: this.streamId, reason });
    }
  }

  status(): StreamStatus {
    const types: StreamStatus['types'] = {};
    for (const [kind, s] of this.types) {
      types[kind] = { sentVersion: s.lastSentVersion, ackedVersion: s.ackedVersion, subscribed: [...s.names].sort(), ...(s.nack ? { nack: s.nack } : {}) };
    }
    return {
      streamId: this.streamId,
      nodeId: this.nodeId,
      nodeCluster: this.node?.cluster ?? '',
      userAgent: [this.node?.user_agent_name, this.node?.user_agent_version].filter(Boolean).join('/'),
      connectedAt: this.connectedAt,
      types,
    };
  }

  private send(kind: ResourceKind, snapshot: Snapshot): void {
    const state = this.types.get(kind)!;
    const available = snapshot.resources[kind];
    const wanted = FULL_STATE_KINDS.has(kind) || state.names.size === 0 ? [...available.keys()] : [...state.names].filter((n) => available.has(n));
    const encoded: EncodedResource[] = wanted.map((name) => ({ name, bytes: encodeResource(kind, available.get(name)!) }));
    const version = snapshot.versions[kind];
    const nonce = String(++this.nonce);
    state.lastNonce = nonce;
    state.lastSentVersion = version;
    this.sink.write(encodeDiscoveryResponse(kind, version, nonce, encoded));
    this.events.emit('response', { ...this.ref(), kind, version, nonce, names: wanted });
  }

  private ref(): { streamId: number; nodeId: string } {
    return { streamId: this.streamId, nodeId: this.nodeId };
  }
}
