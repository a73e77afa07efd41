import { createHash } from 'node:crypto';
import { isReusedOutput } from './memo.ts';
import type { Resource } from './resource.ts';

/**
 * A type's version is a hash of its resources' canonical form: the same content always gets the same
 * version (across restarts of the control plane too), so Envoy is not sent what it already has.
 *
 * The work is proportional to what changed: a type's version hashes each resource's own hash, a frozen
 * resource is hashed once, and a builder output reused from one build to the next (snapshots/memo.ts) is
 * serialised once. So a one-host change re-serialises that host's resources and the route table's frame
 * (its unchanged virtual hosts' serialisations are remembered), not every host.
 */
export function versionOf(resources: ReadonlyMap<string, Resource>): string {
  const hash = createHash('sha256');
  for (const [name, resource] of [...resources].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    hash.update(name);
    hash.update('\u0000');
    hash.update(resourceHash(resource));
    hash.update('\u0000');
  }
  return hash.digest('hex').slice(0, 16);
}

const hashes = new WeakMap<object, string>();

/** The hash of one resource's canonical form; remembered for a frozen resource. */
export function resourceHash(resource: Resource): string {
  const known = hashes.get(resource);
  if (known !== undefined) return known;
  // The resource's own serialisation is not remembered: its hash is, and a resource is never part of another.
  const hash = createHash('sha256').update(write(resource, false) ?? 'null').digest('hex');
  if (Object.isFrozen(resource)) hashes.set(resource, hash);
  return hash;
}

const serialised = new WeakMap<object, string>();

/**
 * JSON with every object's keys sorted, so equal content always serialises the same. Same output as
 * JSON.stringify for plain data (undefined members left out, undefined in arrays as null). The serialisation
 * of a reused builder output (frozen: it cannot change) is remembered, as later builds serialise it again
 * as a part of theirs; that of the frozen objects inside one is not (memory, not time: they are only ever
 * serialised as a part of it).
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? 'null';
}

function write(value: unknown, remember = true): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return JSON.stringify(value);
    case 'object':
      break;
    case 'bigint':
      throw new TypeError('a BigInt cannot be serialised as JSON');
    default:
      return undefined;
  }
  const object = value as object;
  const known = serialised.get(object);
  if (known !== undefined) return known;
  let out: string;
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') {
    out = canonicalJson((object as { toJSON: () => unknown }).toJSON());
  } else if (Array.isArray(object)) {
    out = `[${object.map((v: unknown) => write(v) ?? 'null').join(',')}]`;
  } else {
    const parts: string[] = [];
    for (const key of sortedKeys(object)) {
      const v = write((object as Record<string, unknown>)[key]);
      if (v !== undefined) parts.push(`${JSON.stringify(key)}:${v}`);
    }
    out = `{${parts.join(',')}}`;
  }
  if (remember && isReusedOutput(object)) serialised.set(object, out);
  return out;
}

// Sorted, then (as a JavaScript object orders its own keys) integer-like keys first, in numeric order: the
// order this serialisation has always had, so versions of unchanged content stay what they were.
function sortedKeys(object: object): string[] {
  const keys = Object.keys(object).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const indices = keys.filter(isArrayIndex);
  if (indices.length === 0) return keys;
  return [...indices.sort((a, b) => Number(a) - Number(b)), ...keys.filter((k) => !isArrayIndex(k))];
}

function isArrayIndex(key: string): boolean {
  return /^(0|[1-9]\d*)$/.test(key) && Number(key) < 4294967295;
}
