// Kubernetes Events (core/v1), so `kubectl describe` and `kubectl get events` show what the control plane did
// to a workload and why: a wake, a scale-down, a refusal to fight another writer of replicas. Best effort: a
// failed Event is logged, never fatal.
import type { Logger } from '../log.ts';
import type { KubeClient } from './rest.ts';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}

export const EVENT_SOURCE = 'envoy-scale-to-zero';

/** The same Warning for the same object is recorded once per this period (a refusal repeats every idle check). */
const WARNING_REPEAT_MS = 5 * 60_000;

export class EventRecorder {
  private seq = 0;
  private readonly lastWarning = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async record(object: InvolvedObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    if (type === 'Warning') {
      const key = `${object.kind}/${object.namespace}/${object.name}/${reason}/${message}`;
      const last = this.lastWarning.get(key);
      if (last !== undefined && this.now() - last < WARNING_REPEAT_MS) return;
      this.lastWarning.set(key, this.now());
      if (this.lastWarning.size > 10_000) this.lastWarning.clear();
    }
    const time = new Date(this.now()).toISOString();
    this.seq += 1;
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${object.name}.${this.now().toString(16)}${this.seq.toString(16)}`, namespace: object.namespace },
      involvedObject: { apiVersion: object.apiVersion, kind: object.kind, namespace: object.namespace, name: object.name, ...(object.uid ? { uid: object.uid } : {}) },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: EVENT_SOURCE },
      reportingComponent: EVENT_SOURCE,
      reportingInstance: process.env.HOSTNAME ?? 'local',
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    try {
      await this.client.request('POST', `/api/v1/namespaces/${object.namespace}/events`, body);
    } catch (err) {
      this.log.warn('could not record a Kubernetes Event', { reason, object: `${object.kind} ${object.namespace}/${object.name}`, error: (err as Error).message });
    }
  }
}
