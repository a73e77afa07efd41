// One delta (incremental) ADS stream: per resource type what the client subscribes to, which version of each
// resource it has (seeded by initial_resource_versions on a new stream), and what it ACKed and NACKed. A
// change sends only the resources whose version differs from the client's, and removals as
// removed_resources. The bookkeeping the rest of the control plane sees (settlement, events, NACK resend
// backoff, status) is the same as a state-of-the-world stream's, so the publisher and the backend
// controller do not care which variant a client speaks.
import type { Snapshot } from '../../snapshots/build.ts';
import type { Resource } from '../../snapshots/resource.ts';
import { FULL_STATE_KINDS, PUSH_ORDER, type ResourceKind } from '../../snapshots/type-urls.ts';
import {
  encodeDeltaDiscoveryResponse, encodeResource, resourceVersion, type DeltaDiscoveryRequest, type VersionedResource,
} from '../protos/codec.ts';
import type { AdsSession } from './session.ts';
import { SessionBase, type SessionTypeState } from './session-base.ts';
import { WILDCARD, subscribesToNothing, type Subscription, type Verdict } from './verdict.ts';

/** Unanswered responses remembered per type. */
export const MAX_OUTSTANDING = 64;

/** A response the client has not answered yet, and what it changed in our view of the client. */
interface Outstanding {
  /** The type's snapshot version the client is at once it applies this (and everything before it). */
  version: string;
  /** name -> the version the client had before (undefined: it did not have the resource). */
  before: Map<string, string | undefined>;
}

interface DeltaTypeState extends SessionTypeState {
  subscription: Subscription;
  /** name -> version of each resource the client has, as far as we know (updated when sent). */
  known: Map<string, string>;
  /** Explicitly subscribed names we told the client do not exist (removed_resources), until they do. */
  toldAbsent: Set<string>;
  outstanding: Map<string, Outstanding>;
  /** The snapshot whose resources `known` equals within the subscription (after a full push); undefined: unknown. */
  base?: Snapshot;
  lastNonce?: string;
  lastSentVersion?: string;
  ackedVersion?: string;
}

export class DeltaStreamSession extends SessionBase<DeltaTypeState> implements AdsSession {
  readonly variant = 'delta' as const;

  onRequest(request: DeltaDiscoveryRequest): void {
    const kind = this.requestKind(request.node, request.type_url, 'DeltaDiscoveryRequest', ' (delta xDS)');
    if (kind === undefined) return;
    let state = this.types.get(kind);
    let verdict: Verdict;
    const snapshot = this.cache.getSnapshot(this.group);
    if (state === undefined) {
      // The first request of the type: what the client subscribes to, and what it has from an earlier stream.
      const subscribe = request.resource_names_subscribe;
      const legacy = subscribe.length === 0 && FULL_STATE_KINDS.has(kind);
      const subscription: Subscription = {
        wildcard: legacy || subscribe.includes(WILDCARD),
        legacyWildcard: legacy,
        names: new Set(subscribe.filter((n) => n !== WILDCARD)),
      };
      state = { subscription, known: new Map(Object.entries(request.initial_resource_versions)), toldAbsent: new Set(), outstanding: new Map() };
      this.types.set(kind, state);
      verdict = { kind: 'initial', subscription };
      // A wildcard client is always answered (even with nothing), so its initial fetch completes.
      // A client holding a newer config than ours (another replica's) waits for the one published above it.
      const newer = this.holdsNewer?.(kind, Object.values(request.initial_resource_versions)[0] ?? '') ?? false;
      if (snapshot && !subscribesToNothing(subscription) && !newer) this.push(kind, state, snapshot, { always: subscription.wildcard });
    } else {
      // Subscription changes count even with a stale nonce (xds_protocol, incremental variants).
      const added = this.resubscribe(state, request);
      verdict = this.answer(kind, state, request);
      if (added !== undefined && snapshot) {
        if (verdict.kind === 'ack' || verdict.kind === 'stale-nonce') verdict = { kind: 'resubscribe', subscription: state.subscription };
        // Only what was newly subscribed: a pending NACK's resources wait for their own retry.
        this.push(kind, state, snapshot, { only: added });
      }
    }
    // What the client holds from before (another replica, or us before a restart): its initial versions.
    const clientVersion = verdict.kind === 'initial' ? (Object.values(request.initial_resource_versions)[0] ?? '') : '';
    this.events.emit('request', { ...this.ref(), kind, verdict, names: [...state.subscription.names], clientVersion });
  }

  onSnapshot(snapshot: Snapshot): void {
    if (this.closed || this.deferIfBlocked()) return;
    let changedClusters: Set<string> | undefined;
    for (const kind of PUSH_ORDER) {
      const state = this.types.get(kind);
      if (state === undefined || subscribesToNothing(state.subscription)) continue;
      const version = snapshot.versions[kind];
      if (state.retry) {
        // A rejected version is resent by its retry timer only; a new version replaces it.
        if (state.retry.version === version) continue;
        this.stopRetry(state);
      }
      // An updated cluster warms until it sees its endpoints, even unchanged ones: send them again with it.
      const forced = kind === 'endpoint' ? changedClusters : undefined;
      const sent = this.push(kind, state, snapshot, forced ? { force: forced } : {});
      if (kind === 'cluster') changedClusters = new Set(sent.map((r) => edsName(snapshot.resources.cluster.get(r)) ?? r));
    }
  }

  /** Applies subscribe/unsubscribe; returns the names newly in scope ('*' for a new wildcard), if any. */
  private resubscribe(state: DeltaTypeState, request: DeltaDiscoveryRequest): Set<string> | undefined {
    const { resource_names_subscribe: subscribe, resource_names_unsubscribe: unsubscribe } = request;
    if (subscribe.length === 0 && unsubscribe.length === 0) return undefined;
    const names = new Set(state.subscription.names);
    let { wildcard, legacyWildcard } = state.subscription;
    const added = new Set<string>();
    for (const name of unsubscribe) {
      if (name === WILDCARD) {
        wildcard = false;
        legacyWildcard = false;
      } else names.delete(name);
    }
    for (const name of subscribe) {
      if (name === WILDCARD) {
        if (!wildcard) added.add(WILDCARD);
        wildcard = true;
        legacyWildcard = false;
      } else if (!names.has(name)) {
        names.add(name);
        if (!wildcard) added.add(name);
      }
    }
    // A legacy wildcard (empty first request) ends when the client names resources without '*'.
    if (legacyWildcard && subscribe.some((n) => n !== WILDCARD)) {
      wildcard = false;
      legacyWildcard = false;
    }
    // What the client no longer subscribes to it forgets: a later subscription sends it again.
    for (const name of [...state.known.keys()]) if (!wildcard && !names.has(name)) state.known.delete(name);
    for (const name of [...state.toldAbsent]) if (!names.has(name)) state.toldAbsent.delete(name);
    state.subscription = { wildcard, legacyWildcard, names };
    if (added.has(WILDCARD)) delete state.base;
    if (subscribesToNothing(state.subscription)) this.stopRetry(state);
    return added.size > 0 ? added : undefined;
  }

  /** What the request says about our responses: ACK, NACK, or nothing (no nonce, or a stale one). */
  private answer(kind: ResourceKind, state: DeltaTypeState, request: DeltaDiscoveryRequest): Verdict {
    const nonce = request.response_nonce;
    if (nonce === '') return { kind: 'resubscribe', subscription: state.subscription };
    const answered = state.outstanding.get(nonce);
    if (request.error_detail !== undefined) {
      if (state.nackedNonce === nonce) return { kind: 'nack-repeat' };
      if (answered === undefined) return { kind: 'stale-nonce' };
      state.outstanding.delete(nonce);
      // The client keeps what it had of the rejected resources: so do we, and a resend sends them again.
      delete state.base;
      for (const [name, before] of answered.before) {
        if (before === undefined) state.known.delete(name);
        else state.known.set(name, before);
      }
      const verdict = {
        kind: 'nack' as const,
        rejectedVersion: answered.version,
        lastGoodVersion: state.ackedVersion ?? '',
        message: request.error_detail.message ?? '',
        code: request.error_detail.code ?? 0,
      };
      this.recordNack(kind, state, verdict, nonce, (snapshot) => this.push(kind, state, snapshot, { always: true }));
      return verdict;
    }
    if (answered === undefined) return { kind: 'stale-nonce' };
    state.outstanding.delete(nonce);
    state.ackedVersion = answered.version;
    if (state.retry || state.nack) {
      if (state.retry) this.log.info('a config the client had rejected is now accepted', { node: this.nodeId, client: this.kindOfClient, kind, version: answered.version, rejections: state.retry.attempts });
      delete state.nack;
      delete state.nackedNonce;
      this.stopRetry(state);
    }
    this.events.emit('ack', { ...this.ref(), kind, version: answered.version });
    return { kind: 'ack', version: answered.version };
  }

  /**
   * Sends what the client lacks of the snapshot for this type: resources it does not have at their current
   * version (within `only` if given; `force` names are sent even when unchanged), and removals of those it
   * has that are gone or that it named and do not exist. Returns the names sent.
   */
  private push(kind: ResourceKind, state: DeltaTypeState, snapshot: Snapshot, opts: { only?: ReadonlySet<string>; force?: ReadonlySet<string>; always?: boolean }): string[] {
    const available = snapshot.resources[kind];
    const { subscription } = state;
    const version = snapshot.versions[kind];
    const wholeType = opts.only === undefined || opts.only.has(WILDCARD);
    const inScope = (name: string): boolean => subscription.wildcard || subscription.names.has(name);
    // A client whose view equals an earlier snapshot needs only what changed since (computed once per pair of
    // snapshots for every stream); any other is compared resource by resource.
    const since = wholeType && state.base !== undefined ? changedNames(kind, state.base, snapshot) : undefined;
    const candidates: Iterable<string> = !wholeType
      ? opts.only!
      : since !== undefined
        ? new Set([...since, ...(opts.force ?? [])])
        : subscription.wildcard
          ? new Set([...available.keys(), ...subscription.names])
          : subscription.names;
    const resources: VersionedResource[] = [];
    const removed: string[] = [];
    const before = new Map<string, string | undefined>();
    for (const name of candidates) {
      if (!inScope(name)) continue;
      const resource = available.get(name);
      if (resource === undefined) {
        // Gone, or named and absent: say so once (xds_protocol: "the server should indicate that a requested
        // resource does not exist by including its name in removed_resources").
        const had = state.known.has(name);
        if (had || (subscription.names.has(name) && !state.toldAbsent.has(name))) {
          before.set(name, state.known.get(name));
          state.known.delete(name);
          if (subscription.names.has(name)) state.toldAbsent.add(name);
          removed.push(name);
        }
        continue;
      }
      state.toldAbsent.delete(name);
      const v = resourceVersion(kind, resource);
      if (state.known.get(name) === v && !opts.force?.has(name)) continue;
      before.set(name, state.known.get(name));
      state.known.set(name, v);
      resources.push({ name, version: v, bytes: encodeResource(kind, resource as Resource) });
    }
    if (wholeType && since === undefined) {
      // Resources the client has that are gone from the snapshot.
      for (const name of [...state.known.keys()]) {
        if (available.has(name) || before.has(name)) continue;
        before.set(name, state.known.get(name));
        state.known.delete(name);
        removed.push(name);
      }
    }
    // The client's view (as sent) is now this snapshot's, for everything it subscribes to.
    if (wholeType) state.base = snapshot;
    else if (state.base !== snapshot) state.base = undefined;
    if (resources.length === 0 && removed.length === 0 && !opts.always) {
      // Nothing to send: the client is at this version as soon as what is outstanding is applied.
      if (wholeType) this.reachedWithoutSending(kind, state, version);
      return [];
    }
    const nonce = String(++this.nonce);
    state.lastNonce = nonce;
    state.lastSentVersion = version;
    state.outstanding.set(nonce, { version, before });
    // Envoy answers every response; a client that never does must not grow this without bound. An answer
    // to a response forgotten here counts as a stale nonce.
    if (state.outstanding.size > MAX_OUTSTANDING) state.outstanding.delete(state.outstanding.keys().next().value!);
    this.sink.write(encodeDeltaDiscoveryResponse(kind, version, nonce, resources, removed));
    const names = resources.map((r) => r.name);
    this.events.emit('response', { ...this.ref(), kind, version, nonce, names, removed });
    return names;
  }

  /** A snapshot version that changes nothing the client subscribes to. */
  private reachedWithoutSending(kind: ResourceKind, state: DeltaTypeState, version: string): void {
    if (state.lastSentVersion === version) return;
    state.lastSentVersion = version;
    const latest = state.lastNonce !== undefined ? state.outstanding.get(state.lastNonce) : undefined;
    if (latest) {
      latest.version = version;
      return;
    }
    // Nothing outstanding: the client has all of this version already (e.g. the config it rejected was
    // withdrawn and what it kept is current again), so a standing NACK no longer stands.
    state.ackedVersion = version;
    if (state.nack) {
      this.log.info('a config the client had rejected was replaced by one it already has', { node: this.nodeId, client: this.kindOfClient, kind, version });
      delete state.nack;
      delete state.nackedNonce;
      this.stopRetry(state);
    }
    this.events.emit('settled', { ...this.ref(), kind, version });
  }


}

const NOTHING: ReadonlySet<string> = new Set();
/** The last pair of snapshots diffed, per target snapshot: every stream moving between them shares it. */
const diffs = new WeakMap<Snapshot, { from: Snapshot; byKind: Map<ResourceKind, Set<string>> }>();

/** Names of the resources of a type that were added, changed or removed between two snapshots. */
function changedNames(kind: ResourceKind, from: Snapshot, to: Snapshot): ReadonlySet<string> {
  if (from === to || from.versions[kind] === to.versions[kind]) return NOTHING;
  let memo = diffs.get(to);
  if (memo === undefined || memo.from !== from) {
    memo = { from, byKind: new Map() };
    diffs.set(to, memo);
  }
  let changed = memo.byKind.get(kind);
  if (changed) return changed;
  changed = new Set<string>();
  const before = from.resources[kind];
  for (const [name, resource] of to.resources[kind]) {
    const old = before.get(name);
    if (old === undefined || (old !== resource && resourceVersion(kind, old) !== resourceVersion(kind, resource))) changed.add(name);
  }
  for (const name of before.keys()) if (!to.resources[kind].has(name)) changed.add(name);
  memo.byKind.set(kind, changed);
  return changed;
}

/** The EDS name an EDS cluster reads its endpoints from. */
function edsName(cluster: Resource | undefined): string | undefined {
  if (cluster?.type !== 'EDS') return undefined;
  return (cluster.eds_cluster_config as { service_name?: string } | undefined)?.service_name ?? cluster.name;
}
