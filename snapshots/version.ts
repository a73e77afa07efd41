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
  // Names only, sorted by UTF-16 code units (the default order for strings): no [name, resource] pair per entry.
  for (const name of [...resources.keys()].sort()) {
    hash.update(name);
    hash.update('\u0000');
    hash.update(resourceHash(resources.get(name)!));
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
  const text = serialised.get(resource) ?? serialise(resource);
  const hash = createHash('sha256').update(text).digest('hex');
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
 *
 * Written as a flat list of pieces joined once (not a string per object joined into its parent's): a nested
 * join copies every byte once per level, which at 5,000 hosts made ~150 MiB of garbage per build.
 */
export function canonicalJson(value: unknown): string {
  const pieces: string[] = [];
  if (!writeTo(value, pieces)) return 'null';
  return pieces.length === 1 ? pieces[0]! : pieces.join('');
}

/** An object's canonical JSON, not remembered. */
function serialise(object: object): string {
  const pieces: string[] = [];
  writeObject(object, pieces);
  return pieces.join('');
}

/** Appends a value's canonical JSON; false (nothing appended) where JSON has no value (undefined, a function). */
function writeTo(value: unknown, out: string[]): boolean {
  if (value === null) {
    out.push('null');
    return true;
  }
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      out.push(JSON.stringify(value));
      return true;
    case 'object':
      break;
    case 'bigint':
      throw new TypeError('a BigInt cannot be serialised as JSON');
    default:
      return false;
  }
  const object = value as object;
  let known = serialised.get(object);
  if (known === undefined && isReusedOutput(object)) {
    known = serialise(object);
    serialised.set(object, known);
  }
  if (known !== undefined) out.push(known);
  else writeObject(object, out);
  return true;
}

function writeObject(object: object, out: string[]): void {
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') {
    if (!writeTo((object as { toJSON: () => unknown }).toJSON(), out)) out.push('null');
  } else if (Array.isArray(object)) {
    out.push('[');
    for (let i = 0; i < object.length; i++) {
      if (i > 0) out.push(',');
      if (!writeTo(object[i], out)) out.push('null');
    }
    out.push(']');
  } else {
    out.push('{');
    let first = true;
    for (const key of sortedKeys(object)) {
      const mark = out.length;
      if (!first) out.push(',');
      out.push(keyJson(key));
      if (writeTo((object as Record<string, unknown>)[key], out)) first = false;
      else out.length = mark;
    }
    out.push('}');
  }
}

// `"key":` for each key seen: keys are mostly field names, a small vocabulary (bounded all the same).
const keyJsonCache = new Map<string, string>();
function keyJson(key: string): string {
  let json = keyJsonCache.get(key);
  if (json === undefined) {
    json = `${JSON.stringify(key)}:`;
    if (keyJsonCache.size < 4096) keyJsonCache.set(key, json);
  }
  return json;
}

// Sorted, then (as a JavaScript object orders its own keys) integer-like keys first, in numeric order: the
// order this serialisation has always had, so versions of unchanged content stay what they were.
function sortedKeys(object: object): string[] {
  const keys = sortInPlace(Object.keys(object));
  // An array index starts with a digit: most objects have none, and skip the test.
  if (!keys.some((k) => k.charCodeAt(0) <= 57 && k.charCodeAt(0) >= 48)) return keys;
  const indices = keys.filter(isArrayIndex);
  if (indices.length === 0) return keys;
  return [...indices.sort((a, b) => Number(a) - Number(b)), ...keys.filter((k) => !isArrayIndex(k))];
}

/**
 * By UTF-16 code units, as Array.prototype.sort orders strings. An object has a few keys: an insertion sort
 * in place allocates nothing, where sort() copies the array each time (~40 MiB per build at 5,000 hosts).
 */
function sortInPlace(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
  return keys;
}

function isArrayIndex(key: string): boolean {
  return /^(0|[1-9]\d*)$/.test(key) && Number(key) < 4294967295;
}
