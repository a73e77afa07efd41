// The I/O half of traffic-share.ts: writes this replica's traffic record as a ConfigMap in the control
// plane's namespace (owned by the replica's Pod when its uid is known, so the garbage collector removes the
// record with the pod) and watches the other replicas' records.
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { Informer } from './informer.ts';
import { KubeApiError, type KubeClient, type KubeObject } from './rest.ts';
import {
  DEFAULT_TRAFFIC_SHARE,
  parseRecord,
  toRecord,
  worthWriting,
  type LocalTraffic,
  type ObservedRecord,
  type TrafficRecord,
  type TrafficShareTiming,
} from './traffic-share.ts';

export const TRAFFIC_RECORD_LABEL = 'scaletozero.dev/traffic-record';
/** What TrafficShare does with ConfigMaps, in the control plane's own namespace only (deploy/rbac.yaml). */
export const TRAFFIC_RECORD_VERBS = ['get', 'list', 'watch', 'create', 'update'] as const;
const DATA_KEY = 'record.json';

/** A ConfigMap name for a replica identity (pod names already are valid; anything else is made so). */
export function trafficRecordName(identity: string): string {
  const cleaned = identity.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return `scale-to-zero-traffic-${cleaned || 'replica'}`.slice(0, 253);
}

export interface TrafficShareOptions {
  client: KubeClient;
  namespace: string;
  identity: string;
  /** The replica's Pod (name = identity), to own the record; absent outside a pod. */
  podUid?: string;
  clock: Clock;
  log: Logger;
  timing?: Partial<TrafficShareTiming>;
  /** What this replica's Envoys reported, now. */
  local: () => LocalTraffic;
  /** How often the write rule is checked (default 250 ms). */
  tickMs?: number;
}

export class TrafficShare {
  readonly timing: TrafficShareTiming;
  readonly name: string;
  readonly stats = { writes: 0, conflicts: 0, failures: 0 };
  private readonly informer: Informer;
  private readonly seen = new Map<string, { text: string; observed: ObservedRecord }>();
  private written: { record: TrafficRecord; writtenAt: number } | undefined;
  private resourceVersion: string | undefined;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly options: TrafficShareOptions) {
    this.timing = { ...DEFAULT_TRAFFIC_SHARE, ...options.timing };
    this.name = trafficRecordName(options.identity);
    this.informer = new Informer(options.client, `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/configmaps`, options.log);
    this.informer.on('change', () => this.observe());
  }

  start(): void {
    this.informer.start();
    this.loop = this.run();
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.informer.stop();
    await this.loop;
  }

  /** Every other replica's record, with when this replica saw it change. */
  others(): ObservedRecord[] {
    return [...this.seen.values()].map((s) => s.observed);
  }

  private observe(): void {
    const now = this.options.clock.now();
    const present = new Set<string>();
    for (const cm of this.informer.list()) {
      if (cm.metadata.labels?.[TRAFFIC_RECORD_LABEL] !== 'true' || cm.metadata.name === this.name) continue;
      const text = (cm.data as Record<string, string> | undefined)?.[DATA_KEY];
      if (text === undefined) continue;
      present.add(cm.metadata.name);
      if (this.seen.get(cm.metadata.name)?.text === text) continue;
      try {
        this.seen.set(cm.metadata.name, { text, observed: { record: parseRecord(text), observedAt: now } });
      } catch (err) {
        this.options.log.warn('ignoring a malformed traffic record', { configMap: cm.metadata.name, error: (err as Error).message });
      }
    }
    for (const name of this.seen.keys()) if (!present.has(name)) this.seen.delete(name);
  }

  private async run(): Promise<void> {
    const { clock } = this.options;
    while (!this.stop.signal.aborted) {
      const now = clock.now();
      const local = this.options.local();
      if (worthWriting(this.written, local, now, this.timing)) {
        const record = toRecord(this.options.identity, local, now);
        try {
          await this.write(record);
          this.written = { record, writtenAt: now };
          this.stats.writes += 1;
          this.failing = false;
        } catch (err) {
          if (err instanceof KubeApiError && err.status === 409) {
            this.stats.conflicts += 1;
            this.resourceVersion = undefined;
          } else {
            this.stats.failures += 1;
            if (!this.failing) this.options.log.warn('cannot write this replica\'s traffic record; retrying', { configMap: this.name, error: (err as Error).message });
            this.failing = true;
          }
        }
      }
      await clock.sleep(this.options.tickMs ?? 250, this.stop.signal);
    }
  }

  private async write(record: TrafficRecord): Promise<void> {
    const { client, namespace } = this.options;
    const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
    const body = (resourceVersion?: string): KubeObject => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.name,
        namespace,
        labels: { [TRAFFIC_RECORD_LABEL]: 'true', 'app.kubernetes.io/name': 'envoy-scale-to-zero' },
        ...(resourceVersion ? { resourceVersion } : {}),
        ...(this.options.podUid
          ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: this.options.identity, uid: this.options.podUid }] }
          : {}),
      } as KubeObject['metadata'],
      data: { [DATA_KEY]: JSON.stringify(record) },
    });
    const timeoutMs = this.timing.heartbeatMs;
    if (this.resourceVersion === undefined) {
      try {
        this.resourceVersion = (await client.get(`${collection}/${this.name}`, { timeoutMs })).metadata.resourceVersion ?? '';
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 404)) throw err;
        const created = await client.request('POST', collection, body(), undefined, { timeoutMs });
        this.resourceVersion = created.metadata.resourceVersion;
        return;
      }
    }
    const updated = await client.request('PUT', `${collection}/${this.name}`, body(this.resourceVersion), undefined, { timeoutMs });
    this.resourceVersion = updated.metadata.resourceVersion;
  }
}
