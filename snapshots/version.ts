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
  // In code-unit order. The maps the builders make are in name order, which is code-unit order
  // (model/name-order.ts): checked, not sorted again; a map made some other way is sorted here.
  const names = [...resources.keys()];
  for (let i = 1; i < names.length; i++) {
    if (names[i - 1]! > names[i]!) {
      names.sort(); // without a comparator: by UTF-16 code units, as `<` compares
      break;
    }
  }
  // The same bytes as one hash.update() per name and per resource (which this was), gathered into one buffer
  // first: 10,000 updates at 5,000 hosts cost more than the hashing itself. Each name is followed by NUL, its
  // resource's length in decimal digits and NUL, written here byte by byte while the name is ASCII (10,000
  // calls into Buffer for the heads cost more than the rest of this function).
  const encoded: Uint8Array[] = new Array<Uint8Array>(names.length);
  let size = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const bytes = encodeResource(kind, resources.get(name)!);
    encoded[i] = bytes;
    size += utf8Length(name) + decimalDigits(bytes.length) + 2 + bytes.length;
  }
  const all = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const bytes = encoded[i]!;
    at = writeUtf8(all, at, name);
    all[at++] = 0;
    at = writeDecimal(all, at, bytes.length);
    all[at++] = 0;
    all.set(bytes, at);
    at += bytes.length;
  }
  if (at !== size) throw new Error(`versionOf: wrote ${at} of ${size} bytes`);
  const version = createHash('sha256').update(all).digest('hex').slice(0, 16);
  versions.set(resources, { ...versions.get(resources), [kind]: version });
  return version;
}

function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

function writeDecimal(out: Buffer, at: number, n: number): number {
  const end = at + decimalDigits(n);
  for (let p = end - 1; p >= at; p--) {
    out[p] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}

function writeUtf8(out: Buffer, at: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return at - i + out.write(s, at - i, 'utf8');
    out[at++] = c;
  }
  return at;
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
