// One ADS stream: the node it speaks for, and per resource type what was asked, sent, ACKed and NACKed.
// Requests are classified by classifyRequest(); responses go out in PUSH_ORDER on this one stream.
import type { Snapshot } from '../../snapshots/build.ts';
import type { Resource } from '../../snapshots/resource.ts';
import { FULL_STATE_KINDS, PUSH_ORDER, type ResourceKind } from '../../snapshots/type-urls.ts';
import { sameResource } from '../../snapshots/wire.ts';
import { encodeDiscoveryResponse, encodeResource, type DiscoveryRequest, type EncodedResource } from '../protos/codec.ts';
import { SessionBase, type SessionTypeState } from './session-base.ts';
import type { AdsSession } from './session.ts';

export { DEFAULT_NACK_RETRY, DEFAULT_STREAM_OPTIONS, nextStreamId, type NackRecord, type NackRetryOptions, type StreamSessionOptions, type StreamSink, type StreamStatus, type TypeStatus } from './session-base.ts';
import { classifyRequest, subscribesToNothing, type Subscription, type TypeStreamState } from './verdict.ts';

interface TypeState extends TypeStreamState, SessionTypeState {
  ackedVersion?: string;
}

export class StreamSession extends SessionBase<TypeState> implements AdsSession {
  readonly variant = 'sotw' as const;
  /** Name -> each cluster in the last CDS response: what a new CDS response changes. */
  private sentClusters = new Map<string, Resource>();

  onRequest(request: DiscoveryRequest): void {
    const kind = this.requestKind(request.node, request.type_url, 'DiscoveryRequest', '');
    if (kind === undefined) return;
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
        this.recordNack(kind, state!, verdict, request.response_nonce, (snapshot) => void this.send(kind, snapshot));
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
    if (this.closed || this.deferIfBlocked()) return;
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


  /** Sends the type's resources; for clusters, says whether any is new or changed since the last CDS sent. */
  private send(kind: ResourceKind, snapshot: Snapshot): boolean {
    const state = this.types.get(kind)!;
    const available = snapshot.resources[kind];
    const { subscription } = state;
    // Wildcard: every resource of the type. Otherwise only the names asked for that exist (for LDS and CDS
    // a subscribed name left out of the response means "deleted"; for the others, "not known yet").
    const wanted = subscription.wildcard ? [...available.keys()] : subscribedNames(subscription.names, available);
    const encoded: EncodedResource[] = wanted.map((name) => ({ name, bytes: encodeResource(kind, available.get(name)!) }));
    const version = snapshot.versions[kind];
    const nonce = String(++this.nonce);
    state.lastNonce = nonce;
    state.lastSentVersion = version;
    this.sink.write(encodeDiscoveryResponse(kind, version, nonce, encoded));
    this.events.emit('response', { ...this.ref(), kind, version, nonce, names: wanted });
    if (kind !== 'cluster') return false;
    // Compared by object first: an unchanged cluster is the same object from one build to the next, so only
    // a rebuilt one is hashed (hashing every cluster sent cost ~25 ms at 5,000 hosts on the way to the socket).
    const sent = new Map(encoded.map((r) => [r.name, available.get(r.name)!]));
    const warm = [...sent].some(([name, cluster]) => {
      const before = this.sentClusters.get(name);
      return before === undefined || !sameResource(kind, before, cluster);
    });
    this.sentClusters = sent;
    return warm;
  }
}

/**
 * The subscribed names that exist, in code-unit order (the order responses list them in). A subscription to
 * most of a type (Envoy's EDS request names every cluster) is walked in the map's own order, which is close to
 * that order already, so the sort has little to do: sorting the names in the request's order took ~3 ms of the
 * answer to a 5,000-cluster EDS request, on a cold load's critical path.
 */
export function subscribedNames(names: ReadonlySet<string>, available: { keys(): IterableIterator<string>; has(name: string): boolean; readonly size: number }): string[] {
  let wanted: string[];
  if (names.size * 4 < available.size) wanted = [...names].filter((n) => available.has(n));
  else {
    wanted = [];
    for (const name of available.keys()) if (names.has(name)) wanted.push(name);
  }
  return wanted.sort();
}
