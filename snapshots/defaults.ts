import type { BufferPolicy } from './desired-state.ts';

// 30 s: longer than most cold starts (a process or a pod), shorter than the 60 s many clients and
// load balancers give up at, so the caller hears our 503 + Retry-After instead of its own timeout.
export const DEFAULT_BUFFER: BufferPolicy = {
  holdTimeoutMs: 30_000,
  maxHeld: 1_000,
  retryAfterSeconds: 5,
};

export const DEFAULT_HEALTH_PATH = '/healthz';
/** The empty service name asks the gRPC health service about the server as a whole. */
export const DEFAULT_GRPC_SERVICE = '';
export const DEFAULT_HEALTH_TIMEOUT_MS = 1_000;
export const DEFAULT_WAKE_TIMEOUT_MS = 60_000;
// 15 minutes of silence before a host is scaled back to zero; long enough that bursty daytime
// traffic does not pay a cold start every few minutes.
export const DEFAULT_IDLE_AFTER_MS = 900_000;

/** Held requests must outlive Envoy's own per-stream idle timer (5 min by default), or Envoy would answer them first. */
export const STREAM_IDLE_MARGIN_MS = 30_000;
export const MIN_STREAM_IDLE_TIMEOUT_MS = 300_000;

/** Cluster circuit breakers sized for mass releases: Envoy's default 1,024 overflow when thousands of held requests go at once. */
export const CLUSTER_CIRCUIT_BREAKER_LIMIT = 50_000;
