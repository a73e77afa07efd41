import type { BufferPolicy } from '../model/gateway-model.ts';

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
// After a failed wake: long enough that a command failing at once is not restarted for every request,
// short enough that a fixed problem (a port freed, a file restored) is retried soon.
export const DEFAULT_WAKE_FAILURE_BACKOFF_MS = 10_000;
// 15 minutes of silence before a host is scaled back to zero; long enough that bursty daytime
// traffic does not pay a cold start every few minutes.
export const DEFAULT_IDLE_AFTER_MS = 900_000;

/**
 * Upstream request timeout of an HTTP host: Envoy's own default, now stated. gRPC hosts have none by default
 * (streams may live for hours). Time held by the filter does not count.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/** Envoy's default stream idle timeout (5 min): a stream (a WebSocket too) silent for this long is closed. */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;

/** Downstream HTTP/2 flow-control windows: they bound what a client can push into a held stream. */
export const HTTP2_STREAM_WINDOW_BYTES = 1_048_576;
export const HTTP2_CONNECTION_WINDOW_BYTES = 16_777_216;

/** Held requests must outlive Envoy's own per-stream idle timer (5 min by default), or Envoy would answer them first. */
export const STREAM_IDLE_MARGIN_MS = 30_000;
export const MIN_STREAM_IDLE_TIMEOUT_MS = 300_000;

/**
 * Cluster circuit breakers sized for mass releases. Requests and pending requests: high, because Envoy's
 * default of 1,024 answers a release of thousands with overflow 503s. Connections: bounded, because every
 * released HTTP/1.1 request would otherwise open its own upstream socket on top of the held downstream one,
 * and 10,000 held + ~9,000 new sockets ran into Envoy's 20,000 open-file limit (503 "local connection
 * failure", seen in bench/). At the cap, Envoy keeps a request pending until a connection frees up.
 */
export const CLUSTER_REQUEST_LIMIT = 50_000;
export const CLUSTER_CONNECTION_LIMIT = 2_048;
