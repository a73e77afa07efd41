// The intermediate model between the sources (the YAML file, the Kubernetes Gateway API) and the xDS
// builders. Plain data, no behaviour: a source produces it, snapshots/ consumes only it. Everything here is
// already validated and resolved (names unique, references point at backends that exist), so the builders
// never have to second-guess it.

export type Protocol = 'http1' | 'http2' | 'grpc';

export interface Endpoint {
  address: string;
  port: number;
}

export interface GatewayModel {
  listeners: ListenerModel[];
  /** Every backend any route forwards to, by unique name. */
  backends: BackendModel[];
}

/** One Envoy listener: an address and port with its own route table. */
export interface ListenerModel {
  /** Envoy listener name (unique). */
  name: string;
  /**
   * The gateway this listener belongs to (Kubernetes: the Gateway's `<namespace>/<name>`): only Envoys of that
   * gateway are sent it. Absent (file mode): one gateway, and every Envoy gets the listener.
   */
  gateway?: string;
  address: string;
  port: number;
  /** Name of its RDS route configuration (unique). */
  routeConfigName: string;
  virtualHosts: VirtualHostModel[];
  /** TLS termination (Kubernetes HTTPS listeners); absent: plaintext. File mode never sets it. */
  tls?: ListenerTlsModel;
  /**
   * The Host an HTTP/1.0 request without a Host header is routed by (HTTP/1.0 is accepted on every listener).
   * Absent: such a request is answered 400 by Envoy.
   */
  http10DefaultHost?: string;
}

/** TLS termination: one Envoy filter chain per entry, all sharing the listener's route table. */
export interface ListenerTlsModel {
  /** Most specific first: exact server names, then wildcards, then the default (no server names), if any. */
  filterChains: TlsFilterChainModel[];
}

export interface TlsFilterChainModel {
  /**
   * SNI names this chain answers (lower-case, exact or `*.suffix`); empty: the default chain (any other SNI,
   * or none). Unique across the listener's chains; at most one default.
   */
  serverNames: string[];
  /** Non-empty; at most one per key type (Envoy picks by the client's signature algorithms). */
  certificates: TlsCertificateModel[];
}

/** Inline PEM, already checked to parse and to belong together. Never logged. */
export interface TlsCertificateModel {
  certificateChain: string;
  privateKey: string;
}

export interface VirtualHostModel {
  name: string;
  /** Exact lower-case host names, `*.suffix` wildcards, or `*` for any host. Unique within a listener. */
  domains: string[];
  /** In match precedence order: Envoy takes the first route that matches. */
  routes: RouteModel[];
}

export interface RouteModel {
  /** Envoy route name; sources use it to trace a route back to what declared it. */
  name: string;
  match: RouteMatch;
  action: RouteAction;
  /** Request header edits applied before the request goes upstream. */
  requestHeaders?: HeaderEdits;
}

export interface RouteMatch {
  path: { kind: 'prefix' | 'exact'; value: string };
  /** Every header must be present with exactly this value (names lower-case). */
  headers?: HeaderValue[];
}

export interface HeaderValue {
  name: string;
  value: string;
}

export interface HeaderEdits {
  /** Replace the header's value (or add it). */
  set: HeaderValue[];
  /** Append a value (or add it). */
  add: HeaderValue[];
  remove: string[];
}

export interface WeightedBackend {
  backend: string;
  weight: number;
}

export type RouteAction =
  | {
      kind: 'forward';
      /** Non-empty; weights are relative (Envoy's weighted clusters); a single backend may have any weight. */
      backends: WeightedBackend[];
      /**
       * Upstream request timeout, from the end of the request to the end of the answer (a WebSocket, whose
       * request never ends, is not bound by it); 0 = none (long gRPC streams); absent = Envoy's default (15 s).
       * Time a request is held by the buffer filter does not count: the timer starts in the router, after it.
       */
      timeoutMs?: number;
      /**
       * How long the stream may go without a byte either way; 0 = none; absent = the listener's own
       * (at least 5 min). While a backend is held, the route uses at least its hold timeout plus a margin.
       */
      idleTimeoutMs?: number;
    }
  | {
      kind: 'redirect';
      scheme?: 'http' | 'https';
      hostname?: string;
      port?: number;
      /** Replace the whole path, or only the part the route's prefix matched. */
      path?: { kind: 'full' | 'prefix'; value: string };
      statusCode: 301 | 302 | 303 | 307 | 308;
    }
  | {
      /** Answered by Envoy itself, e.g. 500 for a rule whose backends cannot be resolved (Gateway API). */
      kind: 'respond';
      status: number;
      body?: string;
    };

/** Where a backend's requests go: one Envoy cluster. */
export interface BackendModel {
  /**
   * The control plane's key for the backend: the filter's entry name, the wake path `/v1/wake/<name>`, logs
   * and metrics. `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`.
   */
  name: string;
  /** Envoy cluster (and EDS service) name; unique. */
  clusterName: string;
  protocol: Protocol;
  /** Endpoints Envoy may send requests to now (ready ones only). */
  endpoints: Endpoint[];
  /** Absent: the backend is never held (an ordinary route target). */
  scaleToZero?: ScaleToZeroPolicy;
}

/** How the buffer filter treats a backend's requests while it is scaled to zero. */
export interface BufferPolicy {
  /** Longest time a request is held before it is answered 503 / UNAVAILABLE. */
  holdTimeoutMs: number;
  /** Most requests held for this backend on one Envoy worker thread; more are answered at once. */
  maxHeld: number;
  /** Value of the Retry-After header on timeout and overflow answers. */
  retryAfterSeconds: number;
}

export type HealthCheck =
  | { kind: 'http'; path: string; timeoutMs: number }
  | { kind: 'grpc'; service: string; timeoutMs: number }
  /** The endpoint accepts a TCP connection. */
  | { kind: 'tcp'; timeoutMs: number };

/** Which workload answers for a backend, and how it is woken and stopped. */
export type WorkloadRef =
  | { kind: 'manual' }
  | { kind: 'process'; command: string[]; cwd?: string; env?: Record<string, string> }
  | {
      kind: 'kubernetes';
      /** The workload to scale: anything with a /scale subresource (Deployment, StatefulSet, custom resources). */
      target: { apiVersion: string; kind: string; namespace: string; name: string };
      /** Replicas a wake scales 0 to. */
      wakeReplicas: number;
    };

export interface ScaleToZeroPolicy {
  buffer: BufferPolicy;
  /**
   * Request hosts that reach only this backend, so the filter may match them on `:authority` alone (file
   * mode: a host owns its domains). Empty: the filter matches the cluster the route picked.
   */
  exclusiveDomains: string[];
  workload: WorkloadRef;
  health: HealthCheck;
  /** A woken backend that is not ready within this time gives up; held requests get the timeout answer. */
  wakeTimeoutMs: number;
  /**
   * After a failed wake the filter answers the backend's requests at once, with the reason, for this long;
   * then the next request wakes it again. Absent: DEFAULT_WAKE_FAILURE_BACKOFF_MS.
   */
  wakeFailureBackoffMs?: number;
  /** No traffic for this long scales the backend back to zero (0 = never). */
  idleAfterMs: number;
  /** Released requests carry `x-scale-to-zero-held-ms` (how long the filter held them). Absent: off. */
  heldHeader?: true;
  /** The object that declared the policy, where the runtime reports what only it can see (Kubernetes). */
  declaredBy?: { kind: string; namespace: string; name: string };
}
