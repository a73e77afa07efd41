// Identity and age of Kubernetes objects, the tie-breakers Gateway API uses everywhere: the oldest object
// (creationTimestamp) first, then "{namespace}/{name}" in alphabetical order.
import type { KubeObject } from './types.ts';

export function namespaceOf(obj: KubeObject): string {
  return obj.metadata.namespace ?? 'default';
}

export function objectKey(obj: KubeObject): string {
  return `${namespaceOf(obj)}/${obj.metadata.name}`;
}

/** Milliseconds since the epoch; an object without a (valid) timestamp counts as the newest. */
export function creationTime(obj: KubeObject): number {
  const t = Date.parse(obj.metadata.creationTimestamp ?? '');
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

/** Plain code-point order: locale-independent, so every process sorts alike. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareAge(a: KubeObject, b: KubeObject): number {
  const ta = creationTime(a);
  const tb = creationTime(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return compareStrings(objectKey(a), objectKey(b));
}
