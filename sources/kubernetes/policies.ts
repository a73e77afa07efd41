// ScaleToZeroPolicy (scaletozero.dev/v1alpha1), a direct policy attached to Services (GEP-713): every model
// backend of a targeted Service is held while scaled to zero and woken by scaling the policy's workload.
// One Service, one policy: when several target it, the oldest wins and the others are Conflicted for it.
//
// Status (GEP-713 PolicyAncestorStatus): the ancestor is each of our Gateways through which a Route reaches a
// targeted Service (Gateway API recommends the Gateway: the policy's effect is per data plane); a target no
// Gateway reaches yet, or that does not exist, is reported with the Service itself as the ancestor (a
// policy's target is also an ancestor), so every outcome is visible somewhere.
import type { HealthCheck, ScaleToZeroPolicy as ScaleToZeroModel } from '../../model/gateway-model.ts';
import {
  MAX_HOLD_TIMEOUT_MS, MAX_MAX_HELD, MAX_RETRY_AFTER_SECONDS, MIN_HOLD_TIMEOUT_MS, MIN_MAX_HELD, MIN_RETRY_AFTER_SECONDS,
} from '../../filter/assembly/config/rules.ts';
import { COND, CORE_GROUP, GATEWAY_GROUP, REASON, SERVICE_KIND, POLICY_KIND } from './api.ts';
import { cond, mergeConditions, type DesiredCondition } from './conditions.ts';
import { compareAge, compareStrings, namespaceOf, objectKey } from './objects.ts';
import type { ParentReference, PolicyAncestorStatus, ScaleToZeroPolicy, Service } from './types.ts';

/** Defaults and bounds, the same as the CRD's schema (deploy/crds/scaletozero.dev_scaletozeropolicies.yaml). */
export const POLICY_FIELDS = {
  wakeReplicas: { min: 1, max: 1000, default: 1 },
  // The buffer bounds are the filter's own (filter/assembly/config/rules.ts).
  holdTimeoutMs: { min: MIN_HOLD_TIMEOUT_MS, max: MAX_HOLD_TIMEOUT_MS, default: 30_000 },
  maxHeld: { min: MIN_MAX_HELD, max: MAX_MAX_HELD, default: 1000 },
  retryAfterSeconds: { min: MIN_RETRY_AFTER_SECONDS, max: MAX_RETRY_AFTER_SECONDS, default: 5 },
  wakeTimeoutMs: { min: 1, max: 3_600_000, default: 60_000 },
  idleAfterMs: { min: 0, max: 604_800_000, default: 900_000 },
} as const;
export const PROBE_TIMEOUT = { min: 1, max: 60_000, default: 1000 } as const;
export const MAX_TARGET_REFS = 16;
/** PolicyStatus.ancestors holds at most this many entries, all controllers together. */
export const MAX_ANCESTORS = 16;

type TargetState = 'applied' | 'notFound' | 'conflicted';

interface TargetOutcome {
  service: string;
  state: TargetState;
  /** For a Conflicted target: the policy that has the Service. */
  winner?: string;
}

export interface PolicyOutcome {
  policy: ScaleToZeroPolicy;
  /** Why the policy cannot be used at all; undefined when it can. */
  invalid: string | undefined;
  targets: TargetOutcome[];
}

export interface PolicyResolution {
  outcomes: PolicyOutcome[];
  /** "{namespace}/{service}" -> the policy in force for it, as the model wants it. */
  byService: Map<string, ScaleToZeroModel>;
}

export function resolvePolicies(policies: readonly ScaleToZeroPolicy[], services: readonly Service[]): PolicyResolution {
  const existing = new Set(services.map(objectKey));
  const owner = new Map<string, string>();
  const byService = new Map<string, ScaleToZeroModel>();
  const outcomes = [...policies].sort(compareAge).map((policy): PolicyOutcome => {
    const problems = validatePolicy(policy);
    if (problems.length > 0) return { policy, invalid: problems.join('; '), targets: [] };
    const namespace = namespaceOf(policy);
    const model = scaleToZeroModel(policy);
    const names = [...new Set((policy.spec.targetRefs ?? []).map((t) => t.name))];
    const targets = names.map((name): TargetOutcome => {
      const key = `${namespace}/${name}`;
      if (!existing.has(key)) return { service: name, state: 'notFound' };
      const winner = owner.get(key);
      if (winner !== undefined) return { service: name, state: 'conflicted', winner };
      owner.set(key, objectKey(policy));
      byService.set(key, model);
      return { service: name, state: 'applied' };
    });
    return { policy, invalid: undefined, targets };
  });
  return { outcomes, byService };
}

/**
 * What the CRD schema already rejects, checked again: the translation must not trust that the schema was
 * installed, and an unusable policy must say why rather than be half-applied.
 */
export function validatePolicy(policy: ScaleToZeroPolicy): string[] {
  const spec = policy.spec ?? {};
  const problems: string[] = [];
  const targets = spec.targetRefs;
  if (!Array.isArray(targets) || targets.length === 0 || targets.length > MAX_TARGET_REFS) {
    problems.push(`targetRefs must list 1 to ${MAX_TARGET_REFS} Services`);
  } else {
    for (const t of targets) {
      // group and kind default as in the CRD: "" and Service.
      if ((t.group ?? CORE_GROUP) !== CORE_GROUP || (t.kind ?? SERVICE_KIND) !== SERVICE_KIND || typeof t.name !== 'string' || t.name === '') {
        problems.push(`targetRef ${t.group ?? CORE_GROUP}/${t.kind ?? SERVICE_KIND}/${t.name} is not a core Service`);
      }
    }
  }
  const scale = spec.scaleTargetRef;
  if (!scale || !nonEmpty(scale.apiVersion) || !nonEmpty(scale.kind) || !nonEmpty(scale.name)) {
    problems.push('scaleTargetRef needs apiVersion, kind and name');
  }
  for (const [field, bounds] of Object.entries(POLICY_FIELDS)) {
    const value = spec[field as keyof typeof POLICY_FIELDS];
    if (value !== undefined && !inBounds(value, bounds)) problems.push(`${field} must be an integer from ${bounds.min} to ${bounds.max}`);
  }
  if (spec.heldResponseHeader !== undefined && typeof spec.heldResponseHeader !== 'boolean') problems.push('heldResponseHeader must be true or false');
  const probe = spec.readinessProbe;
  if (probe) {
    const kinds = [probe.httpGet, probe.grpc, probe.tcpSocket].filter((k) => k !== undefined && k !== null).length;
    if (kinds !== 1) problems.push('readinessProbe needs exactly one of httpGet, grpc, tcpSocket');
    if (probe.httpGet && !(probe.httpGet.path ?? '/').startsWith('/')) problems.push('readinessProbe.httpGet.path must start with "/"');
    if (probe.timeoutMs !== undefined && !inBounds(probe.timeoutMs, PROBE_TIMEOUT)) {
      problems.push(`readinessProbe.timeoutMs must be an integer from ${PROBE_TIMEOUT.min} to ${PROBE_TIMEOUT.max}`);
    }
  }
  return problems;
}

function nonEmpty(v: unknown): boolean {
  return typeof v === 'string' && v !== '';
}

function inBounds(value: unknown, bounds: { min: number; max: number }): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= bounds.min && value <= bounds.max;
}

/** The model's policy for every backend of a targeted Service (call only on a valid policy). */
export function scaleToZeroModel(policy: ScaleToZeroPolicy): ScaleToZeroModel {
  const spec = policy.spec;
  const get = (field: keyof typeof POLICY_FIELDS): number => spec[field] ?? POLICY_FIELDS[field].default;
  const target = spec.scaleTargetRef!;
  return {
    buffer: { holdTimeoutMs: get('holdTimeoutMs'), maxHeld: get('maxHeld'), retryAfterSeconds: get('retryAfterSeconds') },
    exclusiveDomains: [],
    workload: {
      kind: 'kubernetes',
      target: { apiVersion: target.apiVersion!, kind: target.kind!, namespace: namespaceOf(policy), name: target.name! },
      wakeReplicas: get('wakeReplicas'),
    },
    health: healthCheck(policy),
    wakeTimeoutMs: get('wakeTimeoutMs'),
    idleAfterMs: get('idleAfterMs'),
    ...(spec.heldResponseHeader === true ? { heldHeader: true as const } : {}),
    declaredBy: { kind: POLICY_KIND, namespace: namespaceOf(policy), name: policy.metadata.name },
  };
}

function healthCheck(policy: ScaleToZeroPolicy): HealthCheck {
  const probe = policy.spec.readinessProbe;
  const timeoutMs = probe?.timeoutMs ?? PROBE_TIMEOUT.default;
  if (probe?.httpGet) return { kind: 'http', path: probe.httpGet.path ?? '/', timeoutMs };
  if (probe?.grpc) return { kind: 'grpc', service: probe.grpc.service ?? '', timeoutMs };
  return { kind: 'tcp', timeoutMs };
}

/**
 * The policy's status.ancestors: other controllers' entries as they are, then ours. `reach` maps
 * "{namespace}/{service}" to the keys of our Gateways that route to it.
 */
/** Condition types the runtime sets on a policy (through TranslateInput.runtimeConditions). */
/**
 * Conditions only the runtime sees. `Draining`: the leader is scaling the workload down (new requests are held
 * on every replica's Envoys until it is done); the other replicas read it from the policy's status.
 */
export const RUNTIME_CONDITIONS = ['WorkloadScalable', 'ReplicasOwned', 'Draining'] as const;

export function policyStatus(
  outcome: PolicyOutcome,
  reach: ReadonlyMap<string, ReadonlySet<string>>,
  controllerName: string,
  now: string,
  /** What only the runtime can see (the workload cannot be scaled, another writer owns its replicas). */
  runtime: readonly DesiredCondition[] = [],
): { ancestors: PolicyAncestorStatus[] } {
  const { policy } = outcome;
  const namespace = namespaceOf(policy);
  const previous = policy.status?.ancestors ?? [];
  const foreign = previous.filter((a) => a.controllerName !== controllerName);
  const ours = new Map<string, { ref: ParentReference; conditions: DesiredCondition[] }>();

  if (outcome.invalid !== undefined) {
    for (const t of (policy.spec?.targetRefs ?? []).filter((r) => typeof r?.name === 'string' && r.name !== '')) {
      const ref = { group: t.group ?? CORE_GROUP, kind: t.kind ?? SERVICE_KIND, namespace, name: t.name };
      ours.set(refKey(ref), { ref, conditions: [cond(COND.Accepted, false, REASON.Invalid, outcome.invalid)] });
    }
  } else {
    const perAncestor = new Map<string, { ref: ParentReference; targets: TargetOutcome[] }>();
    const add = (ref: ParentReference, t: TargetOutcome): void => {
      const entry = perAncestor.get(refKey(ref)) ?? { ref, targets: [] };
      entry.targets.push(t);
      perAncestor.set(refKey(ref), entry);
    };
    for (const t of outcome.targets) {
      const gateways = [...(reach.get(`${namespace}/${t.service}`) ?? [])].sort(compareStrings);
      if (gateways.length === 0) add({ group: CORE_GROUP, kind: SERVICE_KIND, namespace, name: t.service }, t);
      for (const g of gateways) {
        const [gwNamespace, gwName] = g.split('/') as [string, string];
        add({ group: GATEWAY_GROUP, kind: 'Gateway', namespace: gwNamespace, name: gwName }, t);
      }
    }
    // Gateways first, by namespace/name; then Services, in targetRefs order.
    const all = [...perAncestor.values()];
    const ordered = [
      ...all.filter((a) => a.ref.kind === 'Gateway').sort((a, b) => compareStrings(refKey(a.ref), refKey(b.ref))),
      ...all.filter((a) => a.ref.kind !== 'Gateway'),
    ];
    for (const { ref, targets } of ordered) ours.set(refKey(ref), { ref, conditions: [ancestorCondition(targets), ...runtime] });
  }

  const room = Math.max(0, MAX_ANCESTORS - foreign.length);
  const mine = [...ours.values()].slice(0, room).map(({ ref, conditions }): PolicyAncestorStatus => {
    const before = previous.find((a) => a.controllerName === controllerName && refKey(normalRef(a.ancestorRef, namespace)) === refKey(ref));
    return { ancestorRef: ref, controllerName, conditions: mergeConditions(before?.conditions, conditions, [COND.Accepted, ...RUNTIME_CONDITIONS], policy.metadata.generation, now) };
  });
  return { ancestors: [...foreign, ...mine] };
}

function ancestorCondition(targets: readonly TargetOutcome[]): DesiredCondition {
  const notFound = targets.filter((t) => t.state === 'notFound');
  const conflicted = targets.filter((t) => t.state === 'conflicted');
  const applied = targets.filter((t) => t.state === 'applied');
  const parts: string[] = [];
  if (applied.length > 0) parts.push(`applies to Service ${applied.map((t) => t.service).join(', ')}`);
  for (const t of conflicted) parts.push(`Service ${t.service} is already targeted by the older policy ${t.winner}`);
  if (notFound.length > 0) parts.push(`Service ${notFound.map((t) => t.service).join(', ')} not found`);
  const message = parts.join('; ');
  if (conflicted.length > 0) return cond(COND.Accepted, false, REASON.Conflicted, message);
  if (notFound.length > 0) return cond(COND.Accepted, false, REASON.TargetNotFound, message);
  return cond(COND.Accepted, true, REASON.Accepted, message);
}

function normalRef(ref: ParentReference, namespace: string): ParentReference {
  return { group: ref.group ?? GATEWAY_GROUP, kind: ref.kind ?? 'Gateway', namespace: ref.namespace ?? namespace, name: ref.name };
}

function refKey(ref: ParentReference): string {
  return `${ref.group ?? ''}/${ref.kind ?? ''}/${ref.namespace ?? ''}/${ref.name}`;
}
