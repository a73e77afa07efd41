// Protobuf wire bytes written straight from a resource in proto3-JSON form (snake_case names, enums by name,
// '@type' on every Any), the bytes protobufjs writes for `type.encode(type.fromObject(resource))`, without
// building protobufjs's message objects and its writer's list of operations first. At 5,000 hosts that path
// (fromObject, encode, and the garbage both leave) was the largest share of a cold load's CPU, most of it in
// a process whose per-type generated functions had not been optimised yet; this is one small interpreter,
// driven by the protobufjs reflection of the loaded protos (field numbers, wire types, enum values), with the
// reflection read once per message type into a plan.
//
// Byte-identical to protobufjs, which decides which fields appear: a field is written when the object has it
// (not undefined or null), whatever its value (a set `false` or `0` is written), in field-number order;
// repeated fields and maps when non-empty; packed where the field is packed. Anything whose bytes protobufjs
// would derive by coercion (a number spelled as a string, an enum name it does not know, base64 for bytes, a
// map with non-string keys, ...) is not guessed at: the writer answers `unsupported` and the caller encodes
// that resource with protobufjs instead (snapshots/wire.ts). test/unit/snapshots/proto-writer.test.ts holds
// the two paths to the same bytes.
import protobuf from 'protobufjs';

export interface Unsupported {
  unsupported: string;
}

/** The resource's bytes, or why this writer does not write it (then protobufjs must). */
export function writeMessage(type: protobuf.Type, value: Record<string, unknown>): Buffer | Unsupported {
  out = scratch;
  at = 0;
  top = 0;
  deepest = 0;
  try {
    const plan = planOf(type);
    if (plan.isAny) writeAny(type, plan, value, 0);
    else writeFields(plan, value, 0);
    const bytes = Buffer.allocUnsafe(at);
    bytes.set(out.subarray(0, at));
    return bytes;
  } catch (err) {
    if (err instanceof NotWritten) return { unsupported: err.message };
    throw err;
  } finally {
    // A resource larger than the scratch buffer grew a buffer of its own for this call: not kept.
    out = scratch;
  }
}

export function isUnsupported(result: Buffer | Unsupported): result is Unsupported {
  return !(result instanceof Uint8Array);
}

class NotWritten extends Error {}

function unsupported(why: string): never {
  throw new NotWritten(why);
}

// ---- plans: what the reflection says about each field, read once per message type ----

const enum Wire {
  Varint = 0,
  Fixed64 = 1,
  Delimited = 2,
  Fixed32 = 5,
}

/** How a value is written; a scalar's proto type, or a message, or an enum (written as int32). */
const enum Kind {
  Double,
  Float,
  Int32,
  Uint32,
  Sint32,
  Fixed32,
  Sfixed32,
  Int64,
  Uint64,
  Sint64,
  Fixed64,
  Sfixed64,
  Bool,
  String,
  Bytes,
  Enum,
  Message,
}

const SCALAR_KINDS: Record<string, Kind> = {
  double: Kind.Double,
  float: Kind.Float,
  int32: Kind.Int32,
  uint32: Kind.Uint32,
  sint32: Kind.Sint32,
  fixed32: Kind.Fixed32,
  sfixed32: Kind.Sfixed32,
  int64: Kind.Int64,
  uint64: Kind.Uint64,
  sint64: Kind.Sint64,
  fixed64: Kind.Fixed64,
  sfixed64: Kind.Sfixed64,
  bool: Kind.Bool,
  string: Kind.String,
  bytes: Kind.Bytes,
};

function wireOf(kind: Kind): Wire {
  switch (kind) {
    case Kind.Double:
    case Kind.Fixed64:
    case Kind.Sfixed64:
      return Wire.Fixed64;
    case Kind.Float:
    case Kind.Fixed32:
    case Kind.Sfixed32:
      return Wire.Fixed32;
    case Kind.String:
    case Kind.Bytes:
    case Kind.Message:
      return Wire.Delimited;
    default:
      return Wire.Varint;
  }
}

const enum Shape {
  Single,
  Repeated,
  Packed,
  Map,
}

interface FieldPlan {
  name: string;
  shape: Shape;
  kind: Kind;
  /** The field's key (number and wire type) as a varint; for a packed field, with the delimited wire type. */
  tag: number;
  /** Enum values by name (own properties only). */
  enumValues: Record<string, number> | undefined;
  messageType: protobuf.Type | undefined;
  /** The message type's plan, once first needed (plans refer to each other; recursive types exist). */
  plan: Plan | undefined;
  /** Map entries: the value's kind and tag inside the entry (key is always field 1, a string here). */
  valueTag: number;
}

interface Plan {
  fields: FieldPlan[];
  /**
   * Each field's index in `fields` by name, to walk an object's own keys instead of every field of its type
   * (a RouteAction has ~45 fields, a route's object 1-3 keys: at 5,000 virtual hosts that was ~0.5 million
   * lookups of absent properties per route table). Undefined when a field's name is also a property of
   * Object.prototype (reading such a field finds the inherited one, which a walk of the keys would miss).
   */
  byName: Map<string, number> | undefined;
  /** google.protobuf.Any: protobufjs packs an object with '@type' (see writeAny). */
  isAny: boolean;
  /** For an Any: what each '@type' names, looked up from this Any type (another root may name other types). */
  anyTargets: Map<string, AnyTarget | null> | undefined;
  /** Why this type cannot be written here, found when its plan was made. */
  refused: string | undefined;
}

const plans = new WeakMap<protobuf.Type, Plan>();

/** Whether the type's plan has been made (for the codec warm-up's test). */
export function isPlanned(type: protobuf.Type): boolean {
  return plans.has(type);
}

function planOf(type: protobuf.Type): Plan {
  let plan = plans.get(type);
  if (plan === undefined) {
    plan = makePlan(type);
    plans.set(type, plan);
  }
  return plan;
}

function makePlan(type: protobuf.Type): Plan {
  const isAny = type.fullName === '.google.protobuf.Any';
  const fields: FieldPlan[] = [];
  let refused: string | undefined;
  // protobufjs writes known fields sequentially by field number, whatever their declaration order.
  for (const field of [...type.fieldsArray].sort((a, b) => a.id - b.id)) {
    field.resolve();
    const why = refusal(field);
    if (why !== undefined) {
      refused ??= `${type.fullName}.${field.name}: ${why}`;
      continue;
    }
    const resolved = field.resolvedType;
    const kind = resolved instanceof protobuf.Enum ? Kind.Enum : resolved instanceof protobuf.Type ? Kind.Message : SCALAR_KINDS[field.type]!;
    const map = field instanceof protobuf.MapField;
    const packed = !map && field.repeated && field.packed && kind !== Kind.String && kind !== Kind.Bytes && kind !== Kind.Message;
    const shape = map ? Shape.Map : packed ? Shape.Packed : field.repeated ? Shape.Repeated : Shape.Single;
    const wire = map || packed ? Wire.Delimited : wireOf(kind);
    fields.push({
      name: field.name,
      shape,
      kind,
      tag: ((field.id << 3) | wire) >>> 0,
      enumValues: resolved instanceof protobuf.Enum ? ownValues(resolved) : undefined,
      messageType: resolved instanceof protobuf.Type ? resolved : undefined,
      plan: undefined,
      valueTag: map ? ((2 << 3) | wireOf(kind)) >>> 0 : 0,
    });
  }
  const byName = fields.some((f) => f.name in Object.prototype) ? undefined : new Map(fields.map((f, i) => [f.name, i]));
  return { fields, byName, isAny, anyTargets: isAny ? new Map() : undefined, refused };
}

function refusal(field: protobuf.Field): string | undefined {
  if (field.required) return 'a proto2 required field';
  if (field.delimited) return 'a group (delimited encoding)';
  if (field instanceof protobuf.MapField && field.keyType !== 'string') return `a map with ${field.keyType} keys`;
  const resolved = field.resolvedType;
  if (!(resolved instanceof protobuf.Enum) && !(resolved instanceof protobuf.Type) && SCALAR_KINDS[field.type] === undefined) return `unknown type ${field.type}`;
  return undefined;
}

function ownValues(e: protobuf.Enum): Record<string, number> {
  const values: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [name, number] of Object.entries(e.values)) values[name] = number;
  return values;
}

// ---- the writer: one growable buffer, nested lengths patched in place ----

const SCRATCH_BYTES = 64 * 1024;
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
let out: Buffer = scratch;
let at = 0;

/** protobufjs refuses deeper nesting (util.recursionLimit); so does this writer, for protobufjs to say why. */
const DEPTH_LIMIT = 100;

function ensure(n: number): void {
  if (at + n <= out.length) return;
  const grown = Buffer.allocUnsafeSlow(Math.max(out.length * 2, at + n));
  grown.set(out.subarray(0, at));
  out = grown;
}

function varint(n: number): void {
  ensure(5);
  if (n < 0x80) {
    out[at++] = n;
    return;
  }
  while (n > 0x7f) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at++] = n;
}

/** A varint of up to 64 bits (two's complement for negatives), from BigInt. */
function varint64(n: bigint): void {
  ensure(10);
  let v = BigInt.asUintN(64, n);
  while (v > 0x7fn) {
    out[at++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  out[at++] = Number(v);
}

/** A non-negative integer up to 2^53 as a varint (protobufjs writes the same for a Long of that value). */
function varintSafe(n: number): void {
  if (n <= 0xffffffff) {
    varint(n >>> 0);
    return;
  }
  ensure(10);
  while (n > 0x7f) {
    out[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
}

function fixed32(n: number): void {
  ensure(4);
  out[at++] = n & 0xff;
  out[at++] = (n >>> 8) & 0xff;
  out[at++] = (n >>> 16) & 0xff;
  out[at++] = n >>> 24;
}

function fixed64(n: bigint): void {
  const v = BigInt.asUintN(64, n);
  fixed32(Number(v & 0xffffffffn));
  fixed32(Number(v >> 32n));
}

const f32 = new Float32Array(1);
const f32Bytes = new Uint8Array(f32.buffer);
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function float(n: number): void {
  f32[0] = n;
  ensure(4);
  for (let i = 0; i < 4; i++) out[at++] = f32Bytes[littleEndian ? i : 3 - i]!;
}

function double(n: number): void {
  f64[0] = n;
  ensure(8);
  for (let i = 0; i < 8; i++) out[at++] = f64Bytes[littleEndian ? i : 7 - i]!;
}

/** Starts a length-delimited value: one byte kept for its length, which endDelimited fills in. */
function beginDelimited(): number {
  ensure(1);
  return at++;
}

function endDelimited(start: number): void {
  const length = at - start - 1;
  if (length < 0x80) {
    out[start] = length;
    return;
  }
  // The length needs more than the one byte kept: move the value up to make room.
  let size = 1;
  for (let n = length; n > 0x7f; n >>>= 7) size++;
  ensure(size - 1);
  out.copyWithin(start + size, start + 1, at);
  at += size - 1;
  let n = length;
  let p = start;
  while (n > 0x7f) {
    out[p++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[p] = n;
}

// Strings up to this length are written by a loop while they are ASCII; longer ones, or any other, by Buffer.
const SHORT_STRING = 64;

function string(s: string): void {
  const n = s.length;
  if (n < SHORT_STRING) {
    ensure(n + 1);
    const start = at;
    out[at++] = n; // n < 128: its length is one byte while every character is one byte
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      out[at++] = c;
    }
    if (ascii) return;
    at = start;
  }
  // protobufjs writes a lone surrogate of a short string as three bytes of its own, Buffer as U+FFFD: leave
  // such a string to protobufjs rather than choose.
  if (n < 40 && hasLoneSurrogate(s)) unsupported('a string with a lone UTF-16 surrogate');
  const length = Buffer.byteLength(s, 'utf8');
  varint(length);
  ensure(length);
  at += out.write(s, at, length, 'utf8');
}

function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c & 0xfc00) === 0xd800) {
      if (i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
      else return true;
    } else if ((c & 0xfc00) === 0xdc00) return true;
  }
  return false;
}

function bytes(b: Uint8Array): void {
  varint(b.length);
  ensure(b.length);
  out.set(b, at);
  at += b.length;
}

// ---- messages ----

/**
 * Field indices of the objects being written, one segment per nesting level: an object's fields present in it,
 * sorted by field number (shared, so writing an object allocates nothing).
 */
const present: number[] = [];
let top = 0;

/** The deepest nesting written since it was last reset (writeMap: how deep a cached map goes). */
let deepest = 0;

function writeFields(plan: Plan, value: Record<string, unknown>, depth: number): void {
  if (plan.refused !== undefined) unsupported(plan.refused);
  if (depth > DEPTH_LIMIT) unsupported('nested deeper than protobufjs allows');
  if (depth > deepest) deepest = depth;
  const fields = plan.fields;
  const byName = plan.byName;
  // A plain object (what builders make): only its own keys are looked at; anything else, every field.
  const proto: unknown = byName === undefined ? undefined : Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    writeEachField(fields, value, depth);
    return;
  }
  const base = top;
  for (const key in value) {
    const i = byName!.get(key);
    if (i === undefined) continue;
    // Insertion into number order: objects have a few keys, often in order already.
    let j = top++;
    while (j > base && present[j - 1]! > i) {
      present[j] = present[j - 1]!;
      j--;
    }
    present[j] = i;
  }
  const end = top;
  for (let k = base; k < end; k++) writeField(fields[present[k]!]!, value, depth);
  top = base;
}

function writeEachField(fields: FieldPlan[], value: Record<string, unknown>, depth: number): void {
  for (let i = 0; i < fields.length; i++) writeField(fields[i]!, value, depth);
}

function writeField(f: FieldPlan, value: Record<string, unknown>, depth: number): void {
  const v = value[f.name];
  if (v === undefined || v === null) return;
  switch (f.shape) {
    case Shape.Single:
      varint(f.tag);
      writeValue(f, v, depth);
      break;
    case Shape.Repeated:
      if (!Array.isArray(v)) unsupported(`${f.name}: not an array`);
      for (let j = 0; j < v.length; j++) {
        varint(f.tag);
        writeValue(f, v[j], depth);
      }
      break;
    case Shape.Packed: {
      if (!Array.isArray(v)) unsupported(`${f.name}: not an array`);
      if (v.length === 0) break;
      varint(f.tag);
      const start = beginDelimited();
      for (let j = 0; j < v.length; j++) writeValue(f, v[j], depth);
      endDelimited(start);
      break;
    }
    case Shape.Map:
      writeMap(f, v, depth);
      break;
  }
}

/**
 * A frozen map's bytes, per map field: builders share one frozen object for what many resources say alike (the
 * filter switched off on a virtual host or route: one per host at 5,000 hosts, a third of a route table's
 * bytes), so it is written once and copied after. A frozen object cannot change, so its bytes cannot either.
 * Kept from a map's second write on: a map frozen with the one resource that holds it is never kept twice.
 */
const frozenMaps = new WeakMap<FieldPlan, WeakMap<object, { bytes: Buffer; height: number }>>();
const writtenOnce = new WeakSet<object>();

function writeMap(f: FieldPlan, v: unknown, depth: number): void {
  if (typeof v !== 'object' || Array.isArray(v)) unsupported(`${f.name}: a map that is not an object`);
  const map = v as Record<string, unknown>;
  if (!Object.isFrozen(map)) {
    writeMapEntries(f, map, depth);
    return;
  }
  let known = frozenMaps.get(f);
  const cached = known?.get(map);
  // Written before at a depth that leaves its own nesting within protobufjs's limit here too.
  if (cached !== undefined && depth + cached.height <= DEPTH_LIMIT) {
    ensure(cached.bytes.length);
    out.set(cached.bytes, at);
    at += cached.bytes.length;
    return;
  }
  // Kept only when nothing in it can change either (checked once: frozen objects stay frozen).
  if (!writtenOnce.has(map)) {
    writtenOnce.add(map);
    writeMapEntries(f, map, depth);
    return;
  }
  if (!deeplyFrozen(map)) {
    writeMapEntries(f, map, depth);
    return;
  }
  const start = at;
  const deepestBefore = deepest;
  deepest = depth;
  writeMapEntries(f, map, depth);
  const height = deepest - depth;
  deepest = Math.max(deepest, deepestBefore);
  if (known === undefined) {
    known = new WeakMap();
    frozenMaps.set(f, known);
  }
  known.set(map, { bytes: Buffer.from(out.subarray(start, at)), height });
}

function deeplyFrozen(value: object): boolean {
  if (!Object.isFrozen(value)) return false;
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== null && typeof v === 'object' && !deeplyFrozen(v)) return false;
  }
  return true;
}

function writeMapEntries(f: FieldPlan, map: Record<string, unknown>, depth: number): void {
  for (const key of Object.keys(map)) {
    if (key === '__proto__') unsupported(`${f.name}: a map key "__proto__"`);
    const entry = map[key];
    // protobufjs converts an absent or null message value by throwing, a scalar by writing its coercion.
    if (entry === undefined || entry === null) unsupported(`${f.name}.${key}: no value`);
    varint(f.tag);
    const start = beginDelimited();
    varint((1 << 3) | Wire.Delimited); // the entry's key: field 1, a string
    string(key);
    varint(f.valueTag);
    writeValue(f, entry, depth);
    endDelimited(start);
  }
}

function writeValue(f: FieldPlan, v: unknown, depth: number): void {
  switch (f.kind) {
    case Kind.Message: {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) unsupported(`${f.name}: not an object`);
      const plan = (f.plan ??= planOf(f.messageType!));
      const start = beginDelimited();
      if (plan.isAny) writeAny(f.messageType!, plan, v as Record<string, unknown>, depth + 1);
      else writeFields(plan, v as Record<string, unknown>, depth + 1);
      endDelimited(start);
      return;
    }
    case Kind.String:
      if (typeof v !== 'string') unsupported(`${f.name}: not a string`);
      string(v);
      return;
    case Kind.Bool:
      if (typeof v !== 'boolean') unsupported(`${f.name}: not a boolean`);
      ensure(1);
      out[at++] = v ? 1 : 0;
      return;
    case Kind.Enum: {
      let n: number | undefined;
      if (typeof v === 'string') n = f.enumValues![v];
      else if (isInt32(v)) n = v;
      if (n === undefined) unsupported(`${f.name}: ${JSON.stringify(v)} is not a value of its enum`);
      int32(n);
      return;
    }
    case Kind.Uint32:
    case Kind.Fixed32:
      if (!isUint32(v)) unsupported(`${f.name}: not a uint32`);
      if (f.kind === Kind.Uint32) varint(v);
      else fixed32(v);
      return;
    case Kind.Int32:
    case Kind.Sint32:
    case Kind.Sfixed32:
      if (!isInt32(v)) unsupported(`${f.name}: not an int32`);
      if (f.kind === Kind.Int32) int32(v);
      else if (f.kind === Kind.Sint32) varint(((v << 1) ^ (v >> 31)) >>> 0);
      else fixed32(v);
      return;
    case Kind.Double:
    case Kind.Float:
      if (typeof v !== 'number') unsupported(`${f.name}: not a number`);
      if (f.kind === Kind.Double) double(v);
      else float(v);
      return;
    case Kind.Bytes:
      if (!(v instanceof Uint8Array)) unsupported(`${f.name}: bytes that are not a Uint8Array`);
      bytes(v);
      return;
    default:
      write64(f, v);
  }
}

function isInt32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff;
}

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function int32(n: number): void {
  // A negative int32 is sign-extended to 64 bits on the wire: ten bytes.
  if (n >= 0) varint(n);
  else varint64(BigInt(n));
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** The 64-bit kinds: a safe integer, or a string of decimal digits (int64 in proto3 JSON), in range. */
function write64(f: FieldPlan, v: unknown): void {
  const unsigned = f.kind === Kind.Uint64 || f.kind === Kind.Fixed64;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && (f.kind === Kind.Int64 || f.kind === Kind.Uint64)) {
    varintSafe(v);
    return;
  }
  let n: bigint;
  if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === 'string' && /^-?[0-9]{1,20}$/.test(v)) n = BigInt(v);
  else unsupported(`${f.name}: not a 64-bit integer`);
  if (unsigned ? n < 0n || n > UINT64_MAX : n < INT64_MIN || n > INT64_MAX) unsupported(`${f.name}: out of range`);
  switch (f.kind) {
    case Kind.Int64:
    case Kind.Uint64:
      varint64(n);
      return;
    case Kind.Sint64:
      varint64(n >= 0n ? n << 1n : ((-n) << 1n) - 1n);
      return;
    default:
      fixed64(n);
  }
}

interface AnyTarget {
  typeUrl: string;
  type: protobuf.Type;
}

/**
 * An Any, as protobufjs's Any wrapper packs it: with a '@type', the named message (looked up from the Any
 * type, as protobufjs does) is written as `value` and '@type' as `type_url` (a leading '.' dropped, a '/'
 * added when there is none); without one, the Any's own fields as they are.
 */
function writeAny(anyType: protobuf.Type, plan: Plan, value: Record<string, unknown>, depth: number): void {
  const name = value['@type'];
  if (!name) {
    writeFields(plan, value, depth);
    return;
  }
  if (typeof name !== 'string') unsupported(`'@type' is not a string`);
  const targets = plan.anyTargets!;
  let target = targets.get(name);
  if (target === undefined) {
    const found = anyType.lookup(name.substring(name.lastIndexOf('/') + 1));
    let typeUrl = name.charAt(0) === '.' ? name.slice(1) : name;
    if (!typeUrl.includes('/')) typeUrl = `/${typeUrl}`;
    target = found instanceof protobuf.Type ? { typeUrl, type: found } : null;
    targets.set(name, target);
  }
  if (target === null) unsupported(`'@type' ${name} names no message type`);
  varint((1 << 3) | Wire.Delimited);
  string(target.typeUrl);
  varint((2 << 3) | Wire.Delimited);
  const start = beginDelimited();
  const inner = planOf(target.type);
  // An Any naming Any: protobufjs unpacks the same object again and again, until it refuses the depth.
  if (inner.isAny) unsupported(`'@type' ${name} is an Any itself`);
  writeFields(inner, value, depth + 1);
  endDelimited(start);
}
