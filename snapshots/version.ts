import { createHash } from 'node:crypto';
import type { Resource } from './resource.ts';

/**
 * A type's version is a hash of its resources' canonical form: the same content always gets the same
 * version (across restarts of the control plane too), so Envoy is not sent what it already has.
 */
export function versionOf(resources: ReadonlyMap<string, Resource>): string {
  const hash = createHash('sha256');
  for (const [name, resource] of [...resources].sort(([a], [b]) => a.localeCompare(b))) {
    hash.update(name);
    hash.update('\u0000');
    hash.update(canonicalJson(resource));
    hash.update('\u0000');
  }
  return hash.digest('hex').slice(0, 16);
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
