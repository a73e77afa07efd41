// The Kubernetes objects the translation reads, as the API server returns them (plain JSON), typed only as far
// as the fields it reads. Every field is optional unless the API server guarantees it: the translation never
// trusts that a CRD's schema was installed, and must not crash on an object it did not validate.
import type { GatewayModel } from '../../model/gateway-model.ts';
import type { DesiredCondition } from './conditions.ts';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  resourceVersion?: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

// --- Gateway API (gateway.networking.k8s.io) ---------------------------------------------------------------

export interface GatewayClass extends KubeObject {
  spec: { controllerName: string; parametersRef?: unknown };
  status?: { conditions?: Condition[] };
}

export interface RouteGroupKind {
  group?: string;
  kind: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface Listener {
  name: string;
  hostname?: string;
  port: number;
  protocol: string;
  tls?: GatewayTLSConfig;
  allowedRoutes?: {
    namespaces?: { from?: string; selector?: LabelSelector };
    kinds?: RouteGroupKind[];
  };
}

export interface SecretObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
}

export interface GatewayTLSConfig {
  /** Terminate (the default) or Passthrough. */
  mode?: string;
  certificateRefs?: SecretObjectReference[];
  options?: Record<string, string>;
}

export interface GatewayAddress {
  type?: string;
  value?: string;
}

export interface ListenerStatus {
  name: string;
  supportedKinds: RouteGroupKind[];
  attachedRoutes: number;
  conditions: Condition[];
}

export interface Gateway extends KubeObject {
  spec: { gatewayClassName: string; listeners?: Listener[]; addresses?: GatewayAddress[] };
  status?: { conditions?: Condition[]; listeners?: ListenerStatus[]; addresses?: GatewayAddress[] };
}

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface RouteParentStatus {
  parentRef: ParentReference;
  controllerName: string;
  conditions?: Condition[];
}

export interface RouteStatus {
  parents?: RouteParentStatus[];
}

export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  /** Per-backend filters (HTTPBackendRef / GRPCBackendRef); none is supported. */
  filters?: unknown[];
}

export interface HeaderMatch {
  type?: string;
  name: string;
  value: string;
}

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface HeaderModifier {
  set?: HTTPHeader[];
  add?: HTTPHeader[];
  remove?: string[];
}

export interface HTTPRequestRedirect {
  scheme?: string;
  hostname?: string;
  path?: { type: string; replaceFullPath?: string; replacePrefixMatch?: string };
  port?: number;
  statusCode?: number;
}

export interface HTTPRouteFilter {
  type: string;
  requestHeaderModifier?: HeaderModifier;
  requestRedirect?: HTTPRequestRedirect;
}

export interface HTTPRouteMatch {
  path?: { type?: string; value?: string };
  headers?: HeaderMatch[];
  queryParams?: unknown[];
  method?: string;
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: BackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: unknown;
  sessionPersistence?: unknown;
}

export interface HTTPRoute extends KubeObject {
  spec: { parentRefs?: ParentReference[]; hostnames?: string[]; rules?: HTTPRouteRule[] };
  status?: RouteStatus;
}

export interface GRPCRouteMatch {
  method?: { type?: string; service?: string; method?: string };
  headers?: HeaderMatch[];
}

export interface GRPCRouteFilter {
  type: string;
  requestHeaderModifier?: HeaderModifier;
}

export interface GRPCRouteRule {
  name?: string;
  matches?: GRPCRouteMatch[];
  filters?: GRPCRouteFilter[];
  backendRefs?: BackendRef[];
  sessionPersistence?: unknown;
}

export interface GRPCRoute extends KubeObject {
  spec: { parentRefs?: ParentReference[]; hostnames?: string[]; rules?: GRPCRouteRule[] };
  status?: RouteStatus;
}

export interface ReferenceGrant extends KubeObject {
  spec: {
    from: { group: string; kind: string; namespace: string }[];
    to: { group: string; kind: string; name?: string }[];
  };
}

// --- Core and discovery ------------------------------------------------------------------------------------

export interface Namespace extends KubeObject {}

export interface ServicePort {
  name?: string;
  port: number;
  protocol?: string;
  appProtocol?: string;
  targetPort?: number | string;
}

/** Only what a certificateRef needs; `data` values are base64. Never logged, never put into a status. */
export interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export interface Service extends KubeObject {
  spec: { ports?: ServicePort[]; type?: string; clusterIP?: string };
}

export interface EndpointSlice extends KubeObject {
  addressType: string;
  endpoints?: {
    addresses: string[];
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
  }[];
  ports?: { name?: string | null; port?: number | null; protocol?: string | null; appProtocol?: string | null }[] | null;
}

// --- Our policy CRD (scaletozero.dev/v1alpha1) -------------------------------------------------------------

export interface PolicyTargetReference {
  /** Defaults to "" (the CRD's default). */
  group?: string;
  /** Defaults to Service (the CRD's default). */
  kind?: string;
  name: string;
}

export interface ReadinessProbe {
  httpGet?: { path?: string };
  grpc?: { service?: string };
  tcpSocket?: Record<string, never>;
  timeoutMs?: number;
}

export interface ScaleToZeroPolicySpec {
  targetRefs?: PolicyTargetReference[];
  scaleTargetRef?: { apiVersion?: string; kind?: string; name?: string };
  wakeReplicas?: number;
  holdTimeoutMs?: number;
  maxHeld?: number;
  retryAfterSeconds?: number;
  wakeTimeoutMs?: number;
  idleAfterMs?: number;
  heldResponseHeader?: boolean;
  readinessProbe?: ReadinessProbe;
}

export interface PolicyAncestorStatus {
  ancestorRef: ParentReference;
  controllerName: string;
  conditions: Condition[];
}

export interface ScaleToZeroPolicy extends KubeObject {
  spec: ScaleToZeroPolicySpec;
  status?: { ancestors?: PolicyAncestorStatus[] };
}

// --- The translation's own interface ------------------------------------------------------------------------

export interface TranslateInput {
  /** GatewayClasses naming this controller are ours; every other class, and its Gateways, is ignored. */
  controllerName: string;
  /** RFC 3339 time written as lastTransitionTime on conditions whose status changes. */
  now: string;
  gatewayClasses: GatewayClass[];
  gateways: Gateway[];
  httpRoutes: HTTPRoute[];
  grpcRoutes: GRPCRoute[];
  referenceGrants: ReferenceGrant[];
  /** Secrets a Listener's tls.certificateRefs may name (kubernetes.io/tls: `tls.crt`, `tls.key`). */
  secrets: Secret[];
  services: Service[];
  endpointSlices: EndpointSlice[];
  /** Namespaces with their labels, for allowedRoutes selectors. */
  namespaces: Namespace[];
  policies: ScaleToZeroPolicy[];
  /** The address the runtime gives a Gateway whose spec.addresses names none; undefined: none yet. */
  gatewayAddress(gateway: Gateway): string | undefined;
  /** Written to our GatewayClasses' status.supportedFeatures; default CORE_SUPPORTED_FEATURES. */
  supportedFeatures?: string[];
  /** Conditions the runtime reports on a policy, by "namespace/name" (see RUNTIME_CONDITIONS). */
  runtimeConditions?: ReadonlyMap<string, readonly DesiredCondition[]>;
}

/** The whole status subresource an object should have; the caller writes it (and may skip it if unchanged). */
export interface StatusUpdate {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  status: Record<string, unknown>;
}

export interface TranslateOutput {
  model: GatewayModel;
  statuses: StatusUpdate[];
}
