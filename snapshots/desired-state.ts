// The input model: what the operator wants the gateway to be. Plain data, no behaviour.

export type Protocol = 'http1' | 'http2' | 'grpc';

export interface Endpoint {
  address: string;
  port: number;
}

/** How the buffer filter treats a host while it is scaled to zero. */
export interface BufferPolicy {
  /** Longest time a request is held before it is answered 503 / UNAVAILABLE. */
  holdTimeoutMs: number;
  /** Most requests held for this host on one Envoy worker thread; more are answered at once. */
  maxHeld: number;
  /** Value of the Retry-After header on timeout and overflow answers. */
  retryAfterSeconds: number;
}

export type HealthCheck =
  | { kind: 'http'; path: string; timeoutMs: number }
  | { kind: 'grpc'; service: string; timeoutMs: number };

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
  /** No traffic for this long scales the host back to zero (0 = never). */
  idleAfterMs: number;
}

export interface ListenerConfig {
  address: string;
  port: number;
}

export interface GatewayConfig {
  listener: ListenerConfig;
  hosts: HostConfig[];
}

/** Where Envoy reaches the control plane for wake calls; absent when wake calls are off. */
export interface WakeTarget {
  address: string;
  port: number;
  leaseMs: number;
  timeoutMs: number;
}

/** Everything a snapshot is built from: the config plus the runtime marks the control plane owns. */
export interface DesiredState {
  config: GatewayConfig;
  /** Names of hosts that are scaled to zero now (the filter holds their requests). */
  scaledToZero: ReadonlySet<string>;
  /** Grows with every change the filter must see; the filter orders configs by it. */
  generation: number;
  /** Absolute path of filter.wasm, as Envoy will read it. */
  filterWasmPath: string;
  wake?: WakeTarget;
}
