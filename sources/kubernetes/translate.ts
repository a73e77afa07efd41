// Kubernetes source: the Gateway API objects of our GatewayClasses, the Services and EndpointSlices they
// route to and our ScaleToZeroPolicies -> the model, plus the status every object we own should have. Pure:
// no I/O and no clock (`now` and the objects' generations come in with the input), so the same input always
// gives the same output and the runtime can skip status writes that would change nothing.
//
// Stages: classes and Gateways (gateways.ts) -> Routes' rules (routes.ts) and backendRefs (backends.ts) ->
// attachment to Listeners (attachment.ts) -> Envoy listeners and virtual hosts (virtual-hosts.ts) ->
// model backends with endpoints and policies (backends.ts, policies.ts) -> statuses (status.ts).
import type { BackendModel, GatewayModel } from '../../model/gateway-model.ts';
import { CORE_SUPPORTED_FEATURES, GATEWAY_API_VERSION, POLICY_API_VERSION, POLICY_KIND, REASON } from './api.ts';
import { attachedRouteCounts, attachRoute, droppedRulesMessage, namespaceLabels, resolveKindConflicts } from './attachment.ts';
import { backendContext, buildBackends, resolveBackendRef, type RefResolution } from './backends.ts';
import { analyseGateways, classifyGatewayClasses } from './gateways.ts';
import { compareStrings, namespaceOf } from './objects.ts';
import { policyStatus, resolvePolicies } from './policies.ts';
import { collectRoutes } from './routes.ts';
import type { RuleSpec } from './rules.ts';
import { gatewayClassStatus, gatewayStatus, routeStatus, type ResolvedRefsSummary } from './status.ts';
import type { KubeObject, StatusUpdate, TranslateInput, TranslateOutput } from './types.ts';
import { buildListeners, type ServedRoute } from './virtual-hosts.ts';

export type { StatusUpdate, TranslateInput, TranslateOutput } from './types.ts';

export function translate(input: TranslateInput): TranslateOutput {
  const statuses: StatusUpdate[] = [];

  const classes = classifyGatewayClasses(input);
  for (const v of classes) {
    statuses.push(update(v.cls, 'GatewayClass', gatewayClassStatus(v, input.supportedFeatures ?? CORE_SUPPORTED_FEATURES, input.now)));
  }
  const gateways = analyseGateways(input, classes);
  const gatewaysByKey = new Map(gateways.map((g) => [g.key, g]));

  const ctx = backendContext(input.services, input.referenceGrants);
  const labels = namespaceLabels(input.namespaces);
  const routes = collectRoutes(input).map((route): ServedRoute => {
    const refs = new Map<RuleSpec, RefResolution[]>(route.rules.map((rule) => [rule, rule.backendRefs.map((ref) => resolveBackendRef(ctx, route, ref))]));
    return { route, parents: attachRoute(route, gatewaysByKey, labels), refs };
  });
  resolveKindConflicts(routes);

  const built = buildListeners(gateways, routes);
  const { backends, nameOf } = buildBackends(built.uses, input.endpointSlices);
  for (const listener of built.listeners) {
    for (const vh of listener.virtualHosts) {
      for (const route of vh.routes) {
        if (route.action.kind === 'forward') route.action.backends = route.action.backends.map((b) => ({ ...b, backend: nameOf.get(b.backend)! }));
      }
    }
  }

  const policies = resolvePolicies(input.policies, input.services);
  attachPolicies(backends, built.uses, nameOf, policies.byService);
  const reach = serviceReach(built.reach);

  const counts = attachedRouteCounts(routes);
  for (const g of gateways) statuses.push(update(g.gateway, 'Gateway', gatewayStatus(g, counts, input.now)));
  for (const served of routes) {
    const status = ownedRouteStatus(served, input.controllerName, input.now);
    if (status) statuses.push(update(served.route.route, served.route.kind, status));
  }
  for (const outcome of policies.outcomes) {
    statuses.push(update(outcome.policy, POLICY_KIND, policyStatus(outcome, reach, input.controllerName, input.now, input.runtimeConditions?.get(`${outcome.policy.metadata.namespace ?? ''}/${outcome.policy.metadata.name}`)), POLICY_API_VERSION));
  }

  const model: GatewayModel = { listeners: built.listeners, backends };
  return { model, statuses: statuses.sort(compareUpdates) };
}

const KIND_ORDER = ['GatewayClass', 'Gateway', 'HTTPRoute', 'GRPCRoute', POLICY_KIND];

/** By kind (classes, Gateways, Routes, policies), then namespace and name. */
function compareUpdates(a: StatusUpdate, b: StatusUpdate): number {
  return KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || compareStrings(`${a.namespace ?? ''}/${a.name}`, `${b.namespace ?? ''}/${b.name}`);
}

function update(obj: KubeObject, kind: string, status: Record<string, unknown>, apiVersion = GATEWAY_API_VERSION): StatusUpdate {
  const namespaced = kind !== 'GatewayClass';
  return {
    apiVersion: obj.apiVersion ?? apiVersion,
    kind,
    ...(namespaced ? { namespace: namespaceOf(obj) } : {}),
    name: obj.metadata.name,
    status,
  };
}

/**
 * A Route's status when it is ours to write: it names one of our Gateways, or still carries an entry of ours
 * that must now go (its parentRef was removed, or the Gateway left our class).
 */
function ownedRouteStatus(served: ServedRoute, controllerName: string, now: string): Record<string, unknown> | undefined {
  const { route, parents } = served;
  const hadOurs = (route.route.status?.parents ?? []).some((p) => p.controllerName === controllerName);
  if (parents.length === 0 && !hadOurs) return undefined;
  return routeStatus(route, parents, resolvedRefs(served), droppedRulesMessage(route), controllerName, now);
}

/** ResolvedRefs over every backendRef of every rule: the first failure's reason, every failure's message. */
function resolvedRefs(served: ServedRoute): ResolvedRefsSummary {
  const failures = [...served.refs.values()].flat().filter((r): r is Extract<RefResolution, { ok: false }> => !r.ok);
  if (failures.length === 0) return { ok: true, reason: REASON.ResolvedRefs, message: 'all references are resolved' };
  const messages = [...new Set(failures.map((f) => f.message))];
  const shown = messages.slice(0, 8).join('; ');
  return { ok: false, reason: failures[0]!.reason, message: messages.length > 8 ? `${shown}; and ${messages.length - 8} more` : shown };
}

function attachPolicies(
  backends: BackendModel[],
  uses: ReadonlyMap<string, { key: { namespace: string; service: string } }>,
  nameOf: ReadonlyMap<string, string>,
  byService: ReadonlyMap<string, NonNullable<BackendModel['scaleToZero']>>,
): void {
  const byName = new Map(backends.map((b) => [b.name, b]));
  for (const [id, use] of uses) {
    const policy = byService.get(`${use.key.namespace}/${use.key.service}`);
    const backend = byName.get(nameOf.get(id)!);
    if (policy && backend) backend.scaleToZero = structuredClone(policy);
  }
}

/** "{namespace}/{service}" -> keys of the Gateways routing to any of its ports. */
function serviceReach(byBackend: ReadonlyMap<string, ReadonlySet<string>>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [id, gateways] of byBackend) {
    const service = id.split('/').slice(0, 2).join('/');
    const set = out.get(service) ?? new Set<string>();
    for (const g of gateways) set.add(g);
    out.set(service, set);
  }
  return out;
}
