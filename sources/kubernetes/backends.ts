// backendRefs -> Services -> model backends. A backendRef is served only if it names a core Service (group "",
// kind Service) with a port the Service has, in the Route's namespace or one whose ReferenceGrant allows the
// Route in. Endpoints come from the Service's EndpointSlices, never from its clusterIP: Envoy dials ready pods
// directly, so a woken pod is reachable the moment it is ready (no kube-proxy delay).
import { isIP } from 'node:net';
import type { BackendModel, Endpoint, Protocol } from '../../model/gateway-model.ts';
import { CORE_GROUP, GATEWAY_GROUP, LABEL_SERVICE_NAME, REASON, SERVICE_KIND } from './api.ts';
import { clusterName, hashedBackendName, plainBackendName } from './names.ts';
import { namespaceOf } from './objects.ts';
import { referenceAllowed } from './reference-grants.ts';
import type { RouteInfo } from './routes.ts';
import type { BackendRef, EndpointSlice, ReferenceGrant, Service, ServicePort } from './types.ts';

export interface BackendKey {
  namespace: string;
  service: string;
  port: number;
}

export type RefResolution =
  | { ok: true; key: BackendKey; id: string; weight: number; protocol: Protocol; servicePort: ServicePort }
  | { ok: false; reason: string; message: string };

export function backendId(key: BackendKey): string {
  return `${key.namespace}/${key.service}/${key.port}`;
}

export interface BackendContext {
  services: ReadonlyMap<string, Service>;
  grants: readonly ReferenceGrant[];
}

export function backendContext(services: readonly Service[], grants: readonly ReferenceGrant[]): BackendContext {
  return { services: new Map(services.map((s) => [`${namespaceOf(s)}/${s.metadata.name}`, s])), grants };
}

/** Resolves one backendRef of a Route; the checks run in the order the reasons are most useful. */
export function resolveBackendRef(ctx: BackendContext, route: RouteInfo, ref: BackendRef): RefResolution {
  const group = ref.group ?? CORE_GROUP;
  const kind = ref.kind ?? SERVICE_KIND;
  const namespace = ref.namespace ?? route.namespace;
  const where = `${namespace}/${ref.name}`;
  if (group !== CORE_GROUP || kind !== SERVICE_KIND) {
    return { ok: false, reason: REASON.InvalidKind, message: `backendRef ${where}: ${group === '' ? 'core' : group}/${kind} is not a supported kind (only Service)` };
  }
  // Checked before existence, so a Route cannot probe which Services exist in a namespace it may not use.
  const allowed = referenceAllowed(
    ctx.grants,
    { group: GATEWAY_GROUP, kind: route.kind, namespace: route.namespace },
    { group: CORE_GROUP, kind: SERVICE_KIND, namespace, name: ref.name },
  );
  if (!allowed) {
    return { ok: false, reason: REASON.RefNotPermitted, message: `backendRef ${where}: no ReferenceGrant in ${namespace} allows ${route.kind}s from ${route.namespace}` };
  }
  const service = ctx.services.get(where);
  if (!service) return { ok: false, reason: REASON.BackendNotFound, message: `backendRef ${where}: Service not found` };
  if (ref.port === undefined) return { ok: false, reason: REASON.BackendNotFound, message: `backendRef ${where}: port is required for a Service` };
  const servicePort = (service.spec?.ports ?? []).find((p) => p.port === ref.port && (p.protocol ?? 'TCP') === 'TCP');
  if (!servicePort) return { ok: false, reason: REASON.BackendNotFound, message: `backendRef ${where}: Service has no TCP port ${ref.port}` };
  const protocol = backendProtocol(route.kind, servicePort.appProtocol);
  if (!protocol.ok) return { ok: false, reason: REASON.UnsupportedProtocol, message: `backendRef ${where} port ${ref.port}: ${protocol.reason}` };
  const key = { namespace, service: ref.name, port: ref.port };
  return { ok: true, key, id: backendId(key), weight: ref.weight ?? 1, protocol: protocol.value, servicePort };
}

const TLS_APP_PROTOCOLS = ['https', 'tls', 'wss', 'kubernetes.io/wss'];
const H2C_APP_PROTOCOLS = ['kubernetes.io/h2c', 'h2c', 'http2'];

/**
 * How Envoy talks to the backend. A GRPCRoute's backends speak gRPC. Otherwise the Service port's appProtocol
 * decides: `kubernetes.io/h2c` -> HTTP/2 cleartext; `grpc` (or `<domain>/grpc`) -> gRPC; none, `http`,
 * `kubernetes.io/ws` (WebSocket is an HTTP/1.1 upgrade) and any other value -> HTTP/1.1. TLS to the
 * backend is not supported.
 */
export function backendProtocol(routeKind: RouteInfo['kind'], appProtocol: string | undefined): { ok: true; value: Protocol } | { ok: false; reason: string } {
  const app = (appProtocol ?? '').toLowerCase();
  if (TLS_APP_PROTOCOLS.includes(app)) return { ok: false, reason: `appProtocol ${appProtocol} needs TLS to the backend, which is not supported` };
  if (routeKind === 'GRPCRoute') return { ok: true, value: 'grpc' };
  if (H2C_APP_PROTOCOLS.includes(app)) return { ok: true, value: 'http2' };
  if (app === 'grpc' || app.endsWith('/grpc')) return { ok: true, value: 'grpc' };
  return { ok: true, value: 'http1' };
}

/** A backend some served Route forwards to, with every protocol it was asked for. */
export interface BackendUse {
  key: BackendKey;
  servicePort: ServicePort;
  protocols: Set<Protocol>;
}

/**
 * The model backends, by name. gRPC wins over HTTP/2 over HTTP/1.1 when Routes disagree (a gRPC backend
 * must get HTTP/2; an HTTP/1.1 request can still be carried over HTTP/2 to a server that speaks it).
 */
export function buildBackends(uses: ReadonlyMap<string, BackendUse>, slices: readonly EndpointSlice[]): { backends: BackendModel[]; nameOf: Map<string, string> } {
  const nameOf = backendNames([...uses.values()].map((u) => u.key));
  const backends = [...uses.entries()].map(([id, use]): BackendModel => ({
    name: nameOf.get(id)!,
    clusterName: clusterName(use.key.namespace, use.key.service, use.key.port),
    protocol: use.protocols.has('grpc') ? 'grpc' : use.protocols.has('http2') ? 'http2' : 'http1',
    endpoints: endpointsFor(slices, use.key.namespace, use.key.service, use.servicePort),
  }));
  backends.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { backends, nameOf };
}

/** Plain names where they are unique; every identity sharing a plain name with another gets the hashed form. */
export function backendNames(keys: readonly BackendKey[]): Map<string, string> {
  const byPlain = new Map<string, BackendKey[]>();
  for (const k of keys) {
    const plain = plainBackendName(k.namespace, k.service, k.port);
    byPlain.set(plain, [...(byPlain.get(plain) ?? []), k]);
  }
  const out = new Map<string, string>();
  for (const [plain, group] of byPlain) {
    for (const k of group) out.set(backendId(k), group.length === 1 ? plain : hashedBackendName(k.namespace, k.service, k.port));
  }
  return out;
}

/**
 * Ready endpoints of one Service port: IPv4 EndpointSlices labelled with the Service's name, the slice port
 * named like the Service port (its number is the target port), endpoints not known to be unready and not
 * terminating. Deduplicated (a pod may briefly appear in two slices) and sorted.
 */
export function endpointsFor(slices: readonly EndpointSlice[], namespace: string, service: string, servicePort: ServicePort): Endpoint[] {
  const seen = new Map<string, Endpoint>();
  const portName = servicePort.name ?? '';
  for (const slice of slices) {
    if (namespaceOf(slice) !== namespace || slice.metadata.labels?.[LABEL_SERVICE_NAME] !== service || slice.addressType !== 'IPv4') continue;
    const port = (slice.ports ?? []).find((p) => (p.name ?? '') === portName && (p.protocol ?? 'TCP') === 'TCP')?.port;
    if (port === undefined || port === null) continue;
    for (const e of slice.endpoints ?? []) {
      if (e.conditions?.ready === false || e.conditions?.terminating === true) continue;
      for (const address of e.addresses ?? []) {
        if (isIP(address) !== 4) continue;
        seen.set(`${address}:${port}`, { address, port });
      }
    }
  }
  return [...seen.values()].sort(compareEndpoints);
}

function compareEndpoints(a: Endpoint, b: Endpoint): number {
  const pa = a.address.split('.').map(Number);
  const pb = b.address.split('.').map(Number);
  for (let i = 0; i < 4; i++) {
    if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  }
  return a.port - b.port;
}
