// The status subresources we own: GatewayClass and Gateway (whole), and on Routes the status.parents entries
// with our controllerName (other controllers' entries are kept as they are).
import { COND, GATEWAY_GROUP, REASON } from './api.ts';
import type { ParentResult } from './attachment.ts';
import { cond, mergeConditions, type DesiredCondition } from './conditions.ts';
import type { ClassVerdict, GatewayInfo, ListenerInfo } from './gateways.ts';
import { gatewayProgrammable, gatewayVerdict, listenerUsable } from './gateways.ts';
import type { RouteInfo } from './routes.ts';
import type { ListenerStatus, ParentReference, RouteParentStatus } from './types.ts';

export function gatewayClassStatus(v: ClassVerdict, supportedFeatures: readonly string[], now: string): Record<string, unknown> {
  const conditions = mergeConditions(v.cls.status?.conditions, [cond(COND.Accepted, v.accepted, v.reason, v.message)], [COND.Accepted], v.cls.metadata.generation, now);
  return { conditions, ...(v.accepted ? { supportedFeatures: [...supportedFeatures].sort().map((name) => ({ name })) } : {}) };
}

export function gatewayStatus(g: GatewayInfo, attached: ReadonlyMap<ListenerInfo, number>, now: string): Record<string, unknown> {
  const verdict = gatewayVerdict(g);
  const programmed = gatewayProgrammable(g);
  const desired: DesiredCondition[] = [
    cond(COND.Accepted, verdict.accepted, verdict.reason, verdict.message),
    programmed
      ? cond(COND.Programmed, true, REASON.Programmed, `listening on ${g.address}`)
      : !verdict.accepted
        ? cond(COND.Programmed, false, REASON.Invalid, 'the Gateway is not accepted')
        : g.listeners.every((l) => !listenerUsable(l))
          ? cond(COND.Programmed, false, REASON.Invalid, 'no listener of the Gateway is valid')
          : cond(COND.Programmed, false, REASON.AddressNotAssigned, 'no address has been assigned to the Gateway yet'),
  ];
  const generation = g.gateway.metadata.generation;
  const previous = g.gateway.status;
  return {
    conditions: mergeConditions(previous?.conditions, desired, [COND.Accepted, COND.Programmed], generation, now),
    // Addresses the Gateway is reachable on: only once its listeners are bound there.
    addresses: programmed ? [{ type: 'IPAddress', value: g.address }] : [],
    listeners: g.listeners.map((l): ListenerStatus => ({
      name: l.spec.name,
      supportedKinds: l.kinds.map((kind) => ({ group: GATEWAY_GROUP, kind })),
      attachedRoutes: attached.get(l) ?? 0,
      conditions: mergeConditions(
        previous?.listeners?.find((p) => p.name === l.spec.name)?.conditions,
        listenerConditions(g, l, programmed),
        [COND.Accepted, COND.Programmed, COND.ResolvedRefs, COND.Conflicted],
        generation,
        now,
      ),
    })),
  };
}

function listenerConditions(g: GatewayInfo, l: ListenerInfo, gatewayProgrammed: boolean): DesiredCondition[] {
  const accepted = l.rejected
    ? cond(COND.Accepted, false, l.rejected.reason, l.rejected.message)
    : cond(COND.Accepted, true, REASON.Accepted, 'listener is accepted');
  let programmed: DesiredCondition;
  if (l.rejected) programmed = cond(COND.Programmed, false, REASON.Invalid, 'listener is not accepted');
  else if (l.unresolved) programmed = cond(COND.Programmed, false, REASON.Invalid, 'a reference of the listener does not resolve (see ResolvedRefs)');
  else if (gatewayProgrammed) programmed = cond(COND.Programmed, true, REASON.Programmed, `listening on ${g.address}:${l.spec.port}`);
  else if (gatewayVerdict(g).accepted) programmed = cond(COND.Programmed, false, REASON.Pending, 'waiting for an address for the Gateway');
  else programmed = cond(COND.Programmed, false, REASON.Invalid, 'the Gateway is not accepted');
  let resolved: DesiredCondition;
  if (l.invalidKinds.length > 0) {
    resolved = cond(COND.ResolvedRefs, false, REASON.InvalidRouteKinds, `route kinds not supported on protocol ${l.spec.protocol}: ${l.invalidKinds.join(', ')}`);
  } else if (l.unresolved) {
    resolved = cond(COND.ResolvedRefs, false, l.unresolved.reason, l.unresolved.message);
  } else {
    resolved = cond(COND.ResolvedRefs, true, REASON.ResolvedRefs, 'all references are resolved');
  }
  const conflicted = l.conflicted
    ? cond(COND.Conflicted, true, l.rejected?.reason ?? REASON.HostnameConflict, l.rejected?.message ?? 'hostname conflict')
    : cond(COND.Conflicted, false, REASON.NoConflicts, 'no conflicts');
  return [accepted, programmed, resolved, conflicted];
}

/** What a Route's backendRefs resolve to, over all its rules: the same for every parent. */
export interface ResolvedRefsSummary {
  ok: boolean;
  reason: string;
  message: string;
}

export function routeStatus(
  route: RouteInfo,
  parents: readonly ParentResult[],
  refs: ResolvedRefsSummary,
  dropped: string | undefined,
  controllerName: string,
  now: string,
): Record<string, unknown> {
  const previous = route.route.status?.parents ?? [];
  const foreign = previous.filter((p) => p.controllerName !== controllerName);
  const generation = route.route.metadata.generation;
  const ours = parents.map((p): RouteParentStatus => {
    const desired: DesiredCondition[] = [
      p.failure ? cond(COND.Accepted, false, p.failure.reason, p.failure.message) : cond(COND.Accepted, true, REASON.Accepted, 'route is accepted'),
      cond(COND.ResolvedRefs, refs.ok, refs.reason, refs.message),
    ];
    // Only on an accepted parent, and only when some rules are served and some are not (RouteConditionPartiallyInvalid).
    if (!p.failure && dropped !== undefined) desired.push(cond(COND.PartiallyInvalid, true, REASON.UnsupportedValue, dropped));
    const parentRef = echoParentRef(p.ref);
    const before = previous.find((b) => b.controllerName === controllerName && sameParentRef(b.parentRef, parentRef, route.namespace));
    return {
      parentRef,
      controllerName,
      conditions: mergeConditions(before?.conditions, desired, [COND.Accepted, COND.ResolvedRefs, COND.PartiallyInvalid], generation, now),
    };
  });
  return { parents: [...foreign, ...ours] };
}

/** The parentRef as written, with the API server's defaults for group and kind filled in. */
function echoParentRef(ref: ParentReference): ParentReference {
  return {
    group: ref.group ?? GATEWAY_GROUP,
    kind: ref.kind ?? 'Gateway',
    ...(ref.namespace !== undefined ? { namespace: ref.namespace } : {}),
    name: ref.name,
    ...(ref.sectionName !== undefined ? { sectionName: ref.sectionName } : {}),
    ...(ref.port !== undefined ? { port: ref.port } : {}),
  };
}

function sameParentRef(a: ParentReference, b: ParentReference, routeNamespace: string): boolean {
  return (
    (a.group ?? GATEWAY_GROUP) === (b.group ?? GATEWAY_GROUP) &&
    (a.kind ?? 'Gateway') === (b.kind ?? 'Gateway') &&
    (a.namespace ?? routeNamespace) === (b.namespace ?? routeNamespace) &&
    a.name === b.name &&
    a.sectionName === b.sectionName &&
    a.port === b.port
  );
}
