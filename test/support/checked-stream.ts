// A fake ADS stream that checks every write the server makes: each response must be for a type the client
// subscribes to (by its type_url), carry a nonce never used before on the stream and the snapshot's
// version of that type, and hold only resources of that type, the ones subscribed to. Violations are
// collected, not thrown, so a test can assert there were none after any sequence of requests.
import type { Snapshot } from '../../snapshots/build.ts';
import { FULL_STATE_KINDS, kindOfTypeUrl, type ResourceKind } from '../../snapshots/type-urls.ts';
import type { AdsEvents } from '../../xds-server/ads/events.ts';
import { StreamSession, type StreamSessionOptions, type StreamSink } from '../../xds-server/ads/stream-session.ts';
import { nextSubscription, type Subscription } from '../../xds-server/ads/verdict.ts';
import type { SnapshotCache } from '../../xds-server/cache/snapshot-cache.ts';
import { silentLogger } from '../../xds-server/log.ts';
import { decodeDiscoveryResponse, decodeResource, type DecodedResponse, type DiscoveryRequest } from '../../xds-server/protos/codec.ts';

export class CheckedStream implements StreamSink {
  readonly session: StreamSession;
  readonly responses: DecodedResponse[] = [];
  readonly violations: string[] = [];
  failed: { code: number; message: string } | undefined;
  private readonly nonces = new Set<string>();
  private readonly subscriptions = new Map<ResourceKind, Subscription>();

  constructor(
    private readonly cache: SnapshotCache,
    events: AdsEvents,
    private readonly group = 'default',
    options: Partial<StreamSessionOptions> = {},
  ) {
    this.session = new StreamSession(this, cache, events, silentLogger, options);
  }

  /** Sends a request as a client would, tracking what it subscribes to. */
  request(r: Partial<DiscoveryRequest> & { type_url: string }): void {
    const kind = kindOfTypeUrl(r.type_url);
    const names = r.resource_names ?? [];
    if (kind) this.subscriptions.set(kind, nextSubscription(this.subscriptions.get(kind), names, FULL_STATE_KINDS.has(kind)));
    this.session.onRequest({ version_info: '', response_nonce: '', ...r, resource_names: names });
  }

  ack(response: DecodedResponse, names: string[]): void {
    this.request({ type_url: response.type_url, version_info: response.version_info, response_nonce: response.nonce, resource_names: names });
  }

  nack(response: DecodedResponse, names: string[], lastGood: string, message: string): void {
    this.request({ type_url: response.type_url, version_info: lastGood, response_nonce: response.nonce, resource_names: names, error_detail: { code: 13, message } });
  }

  /** Responses since the last call. */
  take(): DecodedResponse[] {
    return this.responses.splice(0);
  }

  write(bytes: Buffer): void {
    const r = decodeDiscoveryResponse(bytes);
    this.responses.push(r);
    const where = `response #${this.nonces.size + 1} (${r.type_url})`;
    const kind = kindOfTypeUrl(r.type_url);
    if (!kind) return void this.violations.push(`${where}: unknown type_url`);
    const subscription = this.subscriptions.get(kind);
    if (!subscription) this.violations.push(`${where}: the client never asked for this type`);
    else if (!subscription.wildcard && subscription.names.size === 0) this.violations.push(`${where}: the client subscribes to nothing of this type`);
    if (r.nonce === '') this.violations.push(`${where}: no nonce`);
    if (this.nonces.has(r.nonce)) this.violations.push(`${where}: nonce ${r.nonce} used before`);
    this.nonces.add(r.nonce);
    const snapshot: Snapshot | undefined = this.cache.getSnapshot(this.group);
    if (r.version_info === '') this.violations.push(`${where}: no version`);
    else if (snapshot && r.version_info !== snapshot.versions[kind]) this.violations.push(`${where}: version ${r.version_info} is not the snapshot's ${snapshot.versions[kind]}`);
    for (const resource of r.resources) {
      if (resource.type_url !== r.type_url) this.violations.push(`${where}: holds a resource of type ${resource.type_url}`);
      const decoded = decodeResource(kind, resource.value);
      const name = String(decoded.name ?? decoded.cluster_name);
      if (subscription && !subscription.wildcard && !subscription.names.has(name)) this.violations.push(`${where}: sent "${name}", which the client did not subscribe to`);
    }
  }

  fail(code: number, message: string): void {
    this.failed = { code, message };
  }
}
