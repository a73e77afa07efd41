// The file source's own shape: what config/gateway.yaml declares once validated and defaulted. Only the
// file source and file-mode runtime pieces (the process scaler, the admin API's host view) read it; the
// snapshot builders see the model it is turned into (to-model.ts).
import type { BufferPolicy, Endpoint, HealthCheck, Protocol } from '../../model/gateway-model.ts';

export type { BufferPolicy, Endpoint, HealthCheck, Protocol };

export type ScalerConfig =
  | { kind: 'manual' }
  | {
      kind: 'process';
      command: string[];
      cwd?: string;
      env?: Record<string, string>;
    };

export interface HostConfig {
  name: string;
  domains: string[];
  protocol: Protocol;
  endpoints: Endpoint[];
  initialState: 'ready' | 'scaled_to_zero';
  buffer: BufferPolicy;
  scaler: ScalerConfig;
  health: HealthCheck;
  /** A woken host that is not healthy within this time gives up; held requests get the timeout answer. */
  wakeTimeoutMs: number;
  /** After a failed wake, requests are answered at once (with the reason) for this long; then the next one wakes it again. */
  wakeFailureBackoffMs: number;
  /** No traffic for this long scales the host back to zero (0 = never). */
  idleAfterMs: number;
  /** Released requests get `x-scale-to-zero-held-ms` (default false). */
  heldHeader: boolean;
  /** Upstream request timeout (0 = none); time held by the filter does not count. */
  requestTimeoutMs: number;
  /** A stream with no bytes either way for this long is closed (0 = none); never shorter than a hold. */
  streamIdleTimeoutMs: number;
}

export interface ListenerConfig {
  address: string;
  port: number;
  /** Host an HTTP/1.0 request without a Host header is routed by; absent: Envoy answers it 400. */
  http10DefaultHost?: string;
}

export interface GatewayConfig {
  listener: ListenerConfig;
  hosts: HostConfig[];
}
