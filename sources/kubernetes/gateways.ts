// GatewayClasses and Gateways before any Route is looked at: which classes are ours and accepted, each
// Gateway's address, and each Listener's verdict (protocol, route kinds, conflicts, port).
import { isIP } from 'node:net';
import { GATEWAY_GROUP, REASON, ROUTE_KINDS, type RouteKind } from './api.ts';
import type { TlsCertificateModel } from '../../model/gateway-model.ts';
import { resolveCertificateRefs, secretIndex, type SecretIndex } from './certificates.ts';
import { ANY_HOST } from './hostnames.ts';
import { compareAge, compareStrings, namespaceOf, objectKey } from './objects.ts';
import type { Gateway, GatewayClass, Listener, TranslateInput } from './types.ts';

export interface ClassVerdict {
  cls: GatewayClass;
  accepted: boolean;
  reason: string;
  message: string;
}

export interface ListenerInfo {
  spec: Listener;
  /** Lower-case; undefined when the Listener names none. */
  hostname: string | undefined;
  /** Route kinds that may attach (allowedRoutes.kinds filtered to what the protocol carries). */
  kinds: RouteKind[];
  /** Kinds allowedRoutes asks for that we cannot serve on this protocol, as `group/kind`. */
  invalidKinds: string[];
  /** Why the Listener is not Accepted; undefined when it is. */
  rejected: { reason: string; message: string } | undefined;
  /** True when a Conflicted condition must say so (the reason is `rejected.reason`). */
  conflicted: boolean;
  /** HTTPS: the certificates to terminate TLS with, once every certificateRef resolved. */
  certificates: TlsCertificateModel[] | undefined;
  /**
   * Why a reference of the Listener (a certificateRef) does not resolve: ResolvedRefs=False with this
   * reason, and the Listener is not programmed (it stays Accepted).
   */
  unresolved: { reason: string; message: string } | undefined;
}

export interface GatewayInfo {
  gateway: Gateway;
  namespace: string;
  name: string;
  key: string;
  /** Address the Gateway's Envoy listeners bind. */
  address: string | undefined;
  /** Why the Gateway is not Accepted as a whole; undefined when it is. */
  rejected: { reason: string; message: string } | undefined;
  listeners: ListenerInfo[];
}

/** Our GatewayClasses and their verdicts. A parametersRef is refused: we define no parameters kind. */
export function classifyGatewayClasses(input: TranslateInput): ClassVerdict[] {
  return input.gatewayClasses
    .filter((c) => c.spec?.controllerName === input.controllerName)
    .sort((a, b) => compareStrings(a.metadata.name, b.metadata.name))
    .map((cls) =>
      cls.spec.parametersRef !== undefined && cls.spec.parametersRef !== null
        ? { cls, accepted: false, reason: REASON.InvalidParameters, message: 'parametersRef is not supported by this controller' }
        : { cls, accepted: true, reason: REASON.Accepted, message: 'GatewayClass is accepted' },
    );
}

/** Route kinds each Listener protocol carries. TLS, TCP and UDP carry kinds we do not implement. */
const SERVED_PROTOCOLS = new Set(['HTTP', 'HTTPS']);
const KINDS_BY_PROTOCOL: Record<string, readonly RouteKind[]> = { HTTP: ROUTE_KINDS, HTTPS: ROUTE_KINDS };

export function analyseGateways(input: TranslateInput, classes: readonly ClassVerdict[]): GatewayInfo[] {
  const byName = new Map(classes.map((c) => [c.cls.metadata.name, c]));
  const secrets = secretIndex(input.secrets);
  const infos = input.gateways
    .filter((g) => byName.has(g.spec?.gatewayClassName))
    .sort(compareAge)
    .map((gateway) => analyseGateway(input, secrets, gateway, byName.get(gateway.spec.gatewayClassName)!));
  claimPorts(infos);
  return infos;
}

function analyseGateway(input: TranslateInput, secrets: SecretIndex, gateway: Gateway, cls: ClassVerdict): GatewayInfo {
  const namespace = namespaceOf(gateway);
  const listeners = (gateway.spec.listeners ?? []).map((l) => analyseListener(l, namespace, secrets, input.referenceGrants));
  markConflicts(listeners);
  const { address, problem } = gatewayAddress(input, gateway);
  let rejected: GatewayInfo['rejected'];
  if (!cls.accepted) rejected = { reason: REASON.Invalid, message: `GatewayClass "${cls.cls.metadata.name}" is not accepted` };
  else if (problem) rejected = { reason: REASON.UnsupportedAddress, message: problem };
  return { gateway, namespace, name: gateway.metadata.name, key: objectKey(gateway), address, rejected, listeners };
}

function analyseListener(spec: Listener, namespace: string, secrets: SecretIndex, grants: TranslateInput['referenceGrants']): ListenerInfo {
  const carried = KINDS_BY_PROTOCOL[spec.protocol] ?? [];
  const kinds: RouteKind[] = [];
  const invalidKinds: string[] = [];
  if (spec.allowedRoutes?.kinds !== undefined) {
    for (const k of spec.allowedRoutes.kinds) {
      const group = k.group ?? GATEWAY_GROUP;
      const known = group === GATEWAY_GROUP ? carried.find((c) => c === k.kind) : undefined;
      if (known === undefined) invalidKinds.push(`${group}/${k.kind}`);
      else if (!kinds.includes(known)) kinds.push(known);
    }
  } else {
    kinds.push(...carried);
  }
  const hostname = spec.hostname ? spec.hostname.toLowerCase() : undefined;
  const info: ListenerInfo = { spec, hostname, kinds, invalidKinds, rejected: undefined, conflicted: false, certificates: undefined, unresolved: undefined };
  if (!SERVED_PROTOCOLS.has(spec.protocol)) {
    info.rejected = { reason: REASON.UnsupportedProtocol, message: `protocol ${spec.protocol} is not supported: this controller serves HTTP and HTTPS listeners only` };
  } else if (spec.protocol === 'HTTPS') {
    const mode = spec.tls?.mode ?? 'Terminate';
    if (mode !== 'Terminate') {
      info.rejected = { reason: REASON.UnsupportedProtocol, message: `tls.mode ${mode} is not supported on HTTPS listeners: only Terminate is` };
    } else {
      const tls = resolveCertificateRefs(spec.tls ?? {}, namespace, secrets, grants);
      if (tls.ok) info.certificates = tls.certificates;
      else info.unresolved = { reason: tls.reason, message: tls.message };
    }
  }
  return info;
}

/**
 * Listeners of one Gateway on the same port must agree on the protocol (one Envoy listener either terminates
 * TLS or does not) and differ in host name. Conflicting ones are all refused (Gateway API: "The
 * implementation MUST NOT pick one conflicting Listener as the winner").
 */
function markConflicts(listeners: ListenerInfo[]): void {
  const byPort = new Map<number, ListenerInfo[]>();
  for (const l of listeners) {
    if (!SERVED_PROTOCOLS.has(l.spec.protocol)) continue;
    byPort.set(l.spec.port, [...(byPort.get(l.spec.port) ?? []), l]);
  }
  for (const [port, onPort] of byPort) {
    const protocols = [...new Set(onPort.map((l) => l.spec.protocol))].sort();
    if (protocols.length > 1) {
      for (const l of onPort) {
        l.conflicted = true;
        l.rejected = { reason: REASON.ProtocolConflict, message: `listeners ${onPort.map((g) => g.spec.name).join(', ')} share port ${port} with different protocols (${protocols.join(', ')})` };
      }
      continue;
    }
    const groups = new Map<string, ListenerInfo[]>();
    for (const l of onPort) {
      const key = l.hostname ?? ANY_HOST;
      groups.set(key, [...(groups.get(key) ?? []), l]);
    }
    for (const group of groups.values()) {
      if (group.length < 2) continue;
      for (const l of group) {
        l.conflicted = true;
        l.rejected = {
          reason: REASON.HostnameConflict,
          message: `listeners ${group.map((g) => g.spec.name).join(', ')} share port ${l.spec.port} and hostname "${l.hostname ?? ''}"`,
        };
      }
    }
  }
}

/** Accepted and every reference resolved: the Listener can carry traffic once its Gateway does. */
export function listenerUsable(l: ListenerInfo): boolean {
  return l.rejected === undefined && l.unresolved === undefined;
}

/**
 * The first `IPAddress` entry of spec.addresses (an empty value asks us to choose, like no entry), else the
 * address the runtime gives. Other address types cannot be bound by an Envoy listener.
 */
function gatewayAddress(input: TranslateInput, gateway: Gateway): { address: string | undefined; problem?: string } {
  const requested = gateway.spec.addresses ?? [];
  const unsupported = requested.find((a) => (a.type ?? 'IPAddress') !== 'IPAddress');
  if (unsupported) return { address: undefined, problem: `address type ${unsupported.type} is not supported: only IPAddress is` };
  const ip = requested.find((a) => a.value !== undefined && a.value !== '');
  if (ip) {
    if (isIP(ip.value!) === 0) return { address: undefined, problem: `address "${ip.value}" is not an IP address` };
    return { address: ip.value };
  }
  const given = input.gatewayAddress(gateway);
  return { address: given === '' ? undefined : given };
}

/**
 * Two Gateways given the same address cannot both bind a port: the older Gateway keeps it, the newer one's
 * HTTP Listeners on that port are refused with PortUnavailable.
 */
function claimPorts(gateways: readonly GatewayInfo[]): void {
  const owner = new Map<string, string>();
  for (const g of gateways) {
    if (g.rejected || g.address === undefined) continue;
    for (const l of g.listeners) {
      if (l.rejected) continue;
      const key = `${g.address}|${l.spec.port}`;
      const taken = owner.get(key);
      if (taken === undefined || taken === g.key) {
        owner.set(key, g.key);
      } else {
        l.rejected = { reason: REASON.PortUnavailable, message: `${g.address}:${l.spec.port} is already used by Gateway ${taken}` };
      }
    }
  }
}

/** Whether the Gateway as a whole is refused: its own problem, or no Listener left. */
export function gatewayVerdict(g: GatewayInfo): { accepted: boolean; reason: string; message: string } {
  if (g.rejected) return { accepted: false, ...g.rejected };
  if (g.listeners.length === 0) return { accepted: false, reason: REASON.ListenersNotValid, message: 'the Gateway has no listeners' };
  const bad = g.listeners.filter((l) => !listenerUsable(l));
  // The Gateway itself is sound: it stays Accepted (the spec allows ListenersNotValid with True) and is not
  // Programmed while no listener is valid. Each listener's own conditions say what is wrong with it.
  if (bad.length === g.listeners.length) {
    return { accepted: true, reason: REASON.ListenersNotValid, message: `no valid listener: ${describe(bad)}` };
  }
  if (bad.length > 0) return { accepted: true, reason: REASON.ListenersNotValid, message: `some listeners are not valid: ${describe(bad)}` };
  return { accepted: true, reason: REASON.Accepted, message: 'Gateway is accepted' };
}

function describe(listeners: readonly ListenerInfo[]): string {
  return listeners.map((l) => `${l.spec.name} (${(l.rejected ?? l.unresolved)!.reason})`).join(', ');
}

/** The Gateway carries traffic: accepted, with an address and at least one valid Listener. */
export function gatewayProgrammable(g: GatewayInfo): boolean {
  return gatewayVerdict(g).accepted && g.address !== undefined && g.listeners.some(listenerUsable);
}

/** The Listener carries traffic: its Gateway does, and it is accepted with its references resolved. */
export function listenerProgrammable(g: GatewayInfo, l: ListenerInfo): boolean {
  return gatewayProgrammable(g) && listenerUsable(l);
}

/** Ports of a Gateway's programmable Listeners, ascending. */
export function programmablePorts(g: GatewayInfo): number[] {
  return [...new Set(g.listeners.filter((l) => listenerProgrammable(g, l)).map((l) => l.spec.port))].sort((a, b) => a - b);
}
