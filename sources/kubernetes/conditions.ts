// Conditions: what we want said, merged into what the object already says. A condition keeps its previous
// lastTransitionTime while its status stays the same (as apimachinery's meta.SetStatusCondition does), so an
// unchanged object gets an unchanged status; condition types we do not manage are kept where they are
// (Gateway API: "Implementations MUST NOT remove or reorder Conditions that they are not directly
// responsible for").
import type { Condition } from './types.ts';

/** A condition before it is merged: no timestamp yet. */
export interface DesiredCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export function cond(type: string, status: boolean, reason: string, message: string): DesiredCondition {
  return { type, status, reason, message };
}

/**
 * The merged list: previous conditions in their order, ours replaced in place; ours not there before appended
 * in the order given; previous conditions of a type in `managed` that we no longer want, dropped.
 */
export function mergeConditions(
  previous: readonly Condition[] | undefined,
  desired: readonly DesiredCondition[],
  managed: readonly string[],
  generation: number | undefined,
  now: string,
): Condition[] {
  const old = new Map((previous ?? []).map((c) => [c.type, c]));
  const finished = new Map<string, Condition>();
  for (const d of desired) {
    const status = d.status ? 'True' : 'False';
    const before = old.get(d.type);
    finished.set(d.type, {
      type: d.type,
      status,
      reason: d.reason,
      message: d.message,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: before !== undefined && before.status === status ? before.lastTransitionTime : now,
    });
  }
  const out: Condition[] = [];
  for (const c of previous ?? []) {
    const mine = finished.get(c.type);
    if (mine) {
      out.push(mine);
      finished.delete(c.type);
    } else if (!managed.includes(c.type)) {
      out.push(c);
    }
  }
  return [...out, ...finished.values()];
}
