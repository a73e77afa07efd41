// Names fixed by the APIs we implement: groups, kinds, versions, and the condition types and reasons of
// Gateway API v1.4 (apis/v1/shared_types.go, gateway_types.go, gatewayclass_types.go, policy_types.go).

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_API_VERSION = `${GATEWAY_GROUP}/v1`;
export const REFERENCE_GRANT_KIND = 'ReferenceGrant';

export const POLICY_GROUP = 'scaletozero.dev';
export const POLICY_API_VERSION = `${POLICY_GROUP}/v1alpha1`;
export const POLICY_KIND = 'ScaleToZeroPolicy';

export const CORE_GROUP = '';
export const SERVICE_KIND = 'Service';
export const SECRET_KIND = 'Secret';

export type RouteKind = 'HTTPRoute' | 'GRPCRoute';
export const ROUTE_KINDS: readonly RouteKind[] = ['HTTPRoute', 'GRPCRoute'];

/** Gateway API feature names (pkg/features) this controller implements; sorted, as the status requires. */
export const CORE_SUPPORTED_FEATURES = ['GRPCRoute', 'Gateway', 'HTTPRoute', 'ReferenceGrant'];

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
/** Set by the API server on every namespace since Kubernetes 1.22; assumed when a namespace object lacks it. */
export const LABEL_NAMESPACE_NAME = 'kubernetes.io/metadata.name';

export const COND = {
  Accepted: 'Accepted',
  Programmed: 'Programmed',
  ResolvedRefs: 'ResolvedRefs',
  Conflicted: 'Conflicted',
  PartiallyInvalid: 'PartiallyInvalid',
} as const;

export const REASON = {
  // shared
  Accepted: 'Accepted',
  Programmed: 'Programmed',
  ResolvedRefs: 'ResolvedRefs',
  Invalid: 'Invalid',
  Pending: 'Pending',
  // GatewayClass
  InvalidParameters: 'InvalidParameters',
  // Gateway
  ListenersNotValid: 'ListenersNotValid',
  AddressNotAssigned: 'AddressNotAssigned',
  UnsupportedAddress: 'UnsupportedAddress',
  // Listener
  UnsupportedProtocol: 'UnsupportedProtocol',
  PortUnavailable: 'PortUnavailable',
  InvalidRouteKinds: 'InvalidRouteKinds',
  InvalidCertificateRef: 'InvalidCertificateRef',
  HostnameConflict: 'HostnameConflict',
  ProtocolConflict: 'ProtocolConflict',
  NoConflicts: 'NoConflicts',
  // Route
  NotAllowedByListeners: 'NotAllowedByListeners',
  NoMatchingListenerHostname: 'NoMatchingListenerHostname',
  NoMatchingParent: 'NoMatchingParent',
  UnsupportedValue: 'UnsupportedValue',
  RefNotPermitted: 'RefNotPermitted',
  InvalidKind: 'InvalidKind',
  BackendNotFound: 'BackendNotFound',
  // Policy
  Conflicted: 'Conflicted',
  TargetNotFound: 'TargetNotFound',
} as const;
