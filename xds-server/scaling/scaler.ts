import type { HostConfig } from '../../sources/file/config.ts';

/**
 * Starts and stops a host's replicas. start() is "at least one replica" (idempotent); stop() is "none".
 * The Kubernetes scaler (its own issue) implements the same two verbs against a Deployment's scale.
 */
export interface Scaler {
  readonly kind: string;
  start(host: HostConfig): Promise<void>;
  stop(host: HostConfig): Promise<void>;
  /** Resolves with a reason if the replicas die on their own (a crashed process), so waiting can stop early. */
  failure(host: HostConfig): Promise<string> | undefined;
  close(): Promise<void>;
}

/** Nothing to start or stop: readiness is the operator's business. */
export class ManualScaler implements Scaler {
  readonly kind = 'manual';
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  failure(): undefined {
    return undefined;
  }
  async close(): Promise<void> {}
}
