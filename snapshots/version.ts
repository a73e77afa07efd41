import { createHash } from 'node:crypto';
import type { Resource } from './resource.ts';
import type { ResourceKind } from './type-urls.ts';
import { encodeResource } from './wire.ts';

/**
 * A type's version is a hash of its resources' wire form (snapshots/wire.ts): the same content always gets the
 * same version (across restarts of the control plane too), so Envoy is not sent what it already has.
 *
 * The bytes hashed are the very bytes sent, encoded once per resource object, so a snapshot's versions cost no
 * serialisation of their own (a canonical JSON form was hashed before: at 5,000 hosts it took as long as the
 * encoding itself, on the way to every cold load's first push). One hash runs over every resource's name and
 * bytes (a hash object per resource cost ~20 µs each, 0.1 s at 5,000 hosts). The work is proportional to what
 * changed, but for hashing bytes: builders hand out the same (frozen) object for unchanged input
 * (snapshots/memo.ts), whose encoding is remembered, so a one-host change encodes that host's resources only.
 */
export function versionOf(kind: ResourceKind, resources: ReadonlyMap<string, Resource>): string {
  const known = versions.get(resources)?.[kind];
  if (known !== undefined) return known;
  const entries = [...resources].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // The same bytes as one hash.update() per name and per resource (which this was), gathered into one buffer
  // first: 10,000 updates at 5,000 hosts cost more than the hashing itself.
  const heads = entries.map(([name, resource]) => {
    const bytes = encodeResource(kind, resource);
    return { head: `${name}\u0000${bytes.length}\u0000`, bytes };
  });
  let size = 0;
  for (const h of heads) size += Buffer.byteLength(h.head) + h.bytes.length;
  const all = Buffer.allocUnsafe(size);
  let at = 0;
  for (const h of heads) {
    at += all.write(h.head, at);
    all.set(h.bytes, at);
    at += h.bytes.length;
  }
  const version = createHash('sha256').update(all).digest('hex').slice(0, 16);
  versions.set(resources, { ...versions.get(resources), [kind]: version });
  return version;
}

/**
 * Versions by the very map they were worked out from: a snapshot's maps are never changed once built, and
 * a publish hands the same map to two snapshots (a first phase that adds only clusters, then the full one).
 */
const versions = new WeakMap<ReadonlyMap<string, Resource>, Partial<Record<ResourceKind, string>>>();

const serialised = new WeakMap<object, string>();

/**
 * JSON with every object's keys sorted, so equal content always serialises the same. Same output as
 * JSON.stringify for plain data (undefined members left out, undefined in arrays as null); a frozen object's
 * serialisation is remembered, since it cannot change.
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? 'null';
}

function write(value: unknown): string | undefined {
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
  if (Object.isFrozen(object)) serialised.set(object, out);
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
