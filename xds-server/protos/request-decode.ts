// Reads the two request types every ADS stream receives (DiscoveryRequest, DeltaDiscoveryRequest) without
// protobufjs's message objects: Envoy's EDS request and its ACK at 5,000 hosts each carry 5,000 resource names,
// and both are on a cold load's critical path (the EDS response waits for the request's decode; the load ends
// with the ACK). protobufjs builds a message, then toObject copies it into a second object and array; its
// generated decode runs interpreted in a fresh process. Here the names go straight into the array the
// session keeps.
//
// The result is exactly what protobufjs's decode + toObject gave (codec.ts's options): the same fields, the
// same values, the same errors for the same bad input, because the reading rules are protobufjs's own
// (test/unit/ads/request-decode.test.ts holds the two paths to the same result over random, truncated and
// garbage messages; test/e2e/request-decode.e2e.ts over a real Envoy's requests):
// - a field is recognised by its number alone, whatever its wire type (a string field read as a length and
//   bytes), unknown fields are skipped by wire type (groups too, to the nesting limit);
// - a string's length is clamped at the end of the message (a truncated last string is shortened, not an
//   error), and decoded as Buffer's utf8Slice decodes it (invalid UTF-8 becomes U+FFFD);
// - a singular field given twice keeps the last value; a map entry's key and value default to '';
// - a varint is read as protobufjs's uint32 reads it (a 10-byte varint's last 5 bytes skipped unread).
// The messages inside a request (node, error_detail, resource locators) are rare (Envoy sends the node once
// per stream) and are read by protobufjs itself, from the same position of the same buffer.
import { isAscii } from 'node:buffer';
import protobuf from 'protobufjs';
import { messageType } from './load.ts';
import type { DeltaDiscoveryRequest, DiscoveryRequest, NodeInfo } from './codec.ts';

type GeneratedDecode = (reader: protobuf.Reader, length: number, end: undefined, depth: number) => protobuf.Message;
type GeneratedToObject = (message: protobuf.Message, options: protobuf.IConversionOptions, depth: number) => Record<string, unknown>;

interface NestedType {
  decode: GeneratedDecode;
  toObject: GeneratedToObject;
}

/** The message type of one of a request type's fields, as protobufjs resolved it. */
function fieldType(request: string, field: string): NestedType {
  const type = messageType(request).fields[field]?.resolvedType;
  if (!(type instanceof protobuf.Type)) throw new Error(`${request}.${field} is not a message field`);
  // setup() replaces decode and toObject by the generated functions, which take the nesting depth.
  type.setup();
  const decode = type.decode as unknown as GeneratedDecode;
  const toObject = type.toObject as unknown as GeneratedToObject;
  // Called as the type's methods (the generated decode makes its message with `new this.ctor`).
  return { decode: decode.bind(type), toObject: toObject.bind(type) };
}

const SOTW = 'envoy.service.discovery.v3.DiscoveryRequest';
const DELTA = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
interface RequestTypes {
  node: NestedType;
  status: NestedType;
  locator: NestedType;
}
function requestTypes(request: string, locatorField: string): RequestTypes {
  return { node: fieldType(request, 'node'), status: fieldType(request, 'error_detail'), locator: fieldType(request, locatorField) };
}
let sotwTypes: RequestTypes | undefined;
let deltaTypes: RequestTypes | undefined;
function sotw(): RequestTypes {
  return (sotwTypes ??= requestTypes(SOTW, 'resource_locators'));
}
function delta(): RequestTypes {
  return (deltaTypes ??= requestTypes(DELTA, 'resource_locators_subscribe'));
}

const SOTW_OPTIONS: protobuf.IConversionOptions = { defaults: true, arrays: true, longs: Number, enums: String };
const DELTA_OPTIONS: protobuf.IConversionOptions = { defaults: true, arrays: true, objects: true, longs: Number, enums: String };
/** protobufjs's nesting limit (util.recursionLimit), for groups skipped inside a request. */
const RECURSION_LIMIT = 100;

// The message being read: one at a time (nothing here waits), so plain module state, which V8 keeps fast.
let buf: Buffer & { utf8Slice(start: number, end: number): string; latin1Slice(start: number, end: number): string } = Buffer.alloc(0) as never;
let pos = 0;
let len = 0;

/**
 * The whole message as text when it is all ASCII (Envoy's requests are), so a short string is cut from it by a
 * builtin rather than decoded by a call into C++ (~4x faster for 5,000 names): the same characters. Only below
 * V8's SlicedString::kMinLength (13): a shorter substring is a copy, while a longer one would be a slice that
 * keeps the whole message alive for as long as the name is kept.
 */
let text = '';
const SLICE_MIN_LENGTH = 13;

function begin(bytes: Buffer): void {
  buf = bytes as typeof buf;
  pos = 0;
  len = bytes.length;
  text = isAscii(bytes) ? buf.latin1Slice(0, len) : '';
}

function outOfRange(wanted?: number): RangeError {
  return RangeError(`index out of range: ${pos} + ${wanted || 1} > ${len}`);
}

function uint32(): number {
  if (len - pos < 5) {
    if (pos >= len) throw outOfRange();
    if (buf[pos]! >= 128) return uint32NearEnd();
  }
  let b = buf[pos++]!;
  let value = b & 127;
  if (b < 128) return value;
  b = buf[pos++]!;
  value = (value | ((b & 127) << 7)) >>> 0;
  if (b < 128) return value;
  b = buf[pos++]!;
  value = (value | ((b & 127) << 14)) >>> 0;
  if (b < 128) return value;
  b = buf[pos++]!;
  value = (value | ((b & 127) << 21)) >>> 0;
  if (b < 128) return value;
  b = buf[pos++]!;
  value = (value | ((b & 15) << 28)) >>> 0;
  if (b < 128) return value;
  // A longer varint: its remaining 5 bytes are skipped, not read.
  if ((pos += 5) > len) {
    pos = len;
    throw outOfRange(10);
  }
  return value;
}

/** Fewer than 5 bytes left: at most 4 are read, each checked against the end. */
function uint32NearEnd(): number {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if (pos >= len) throw outOfRange();
    const b = buf[pos++]!;
    value = (value | ((b & 127) << (i * 7))) >>> 0;
    if (b < 128) return value;
  }
  throw outOfRange();
}

function string(): string {
  let n: number;
  const b = buf[pos]!;
  // The common case, a length below 128, read inline.
  if (pos < len && b < 128) {
    n = b;
    pos++;
  } else n = uint32();
  const start = pos;
  pos = Math.min(pos + n, len);
  return text !== '' && pos - start < SLICE_MIN_LENGTH ? text.substring(start, pos) : buf.utf8Slice(start, pos);
}

/** Field 3 (or 4) of both requests: a run of names, each tag one byte, read in one loop. */
function names(into: string[], tag: number): void {
  into.push(string());
  while (pos < len && buf[pos] === tag) {
    pos++;
    into.push(string());
  }
}

function skip(n: number): void {
  if (pos + n > len) throw outOfRange(n);
  pos += n;
}

function skipType(wireType: number, depth: number): void {
  if (depth > RECURSION_LIMIT) throw Error('maximum nesting depth exceeded');
  switch (wireType) {
    case 0:
      do {
        if (pos >= len) throw outOfRange();
      } while (buf[pos++]! & 128);
      break;
    case 1:
      skip(8);
      break;
    case 2:
      skip(uint32());
      break;
    case 3:
      while ((wireType = uint32() & 7) !== 4) skipType(wireType, depth + 1);
      break;
    case 5:
      skip(4);
      break;
    default:
      throw Error(`invalid wire type ${wireType} at offset ${pos}`);
  }
}

let reader: protobuf.Reader | undefined;

/** A message field, read by protobufjs from where we are (as its own decode would read it, one level down). */
function message(type: NestedType): protobuf.Message {
  const length = uint32();
  reader ??= protobuf.Reader.create(Buffer.alloc(0));
  reader.buf = buf;
  reader.pos = pos;
  reader.len = len;
  try {
    const decoded = type.decode(reader, length, undefined, 1);
    pos = reader.pos;
    return decoded;
  } finally {
    // Not kept alive by the reader until the next nested message.
    reader.buf = EMPTY;
  }
}
const EMPTY = Buffer.alloc(0);

function end(): void {
  buf = EMPTY as typeof buf;
  text = '';
}

export function readDiscoveryRequest(bytes: Buffer): DiscoveryRequest {
  begin(bytes);
  try {
    let version = '';
    let typeUrl = '';
    let nonce = '';
    const resourceNames: string[] = [];
    let node: protobuf.Message | undefined;
    let errorDetail: protobuf.Message | undefined;
    let locators: protobuf.Message[] | undefined;
    while (pos < len) {
      const t = uint32();
      switch (t >>> 3) {
        case 1:
          version = string();
          break;
        case 2:
          node = message(sotw().node);
          break;
        case 3:
          names(resourceNames, t === 0x1a ? 0x1a : -1);
          break;
        case 4:
          typeUrl = string();
          break;
        case 5:
          nonce = string();
          break;
        case 6:
          errorDetail = message(sotw().status);
          break;
        case 7:
          (locators ??= []).push(message(sotw().locator));
          break;
        default:
          skipType(t & 7, 0);
      }
    }
    const request: DiscoveryRequest = { version_info: version, resource_names: resourceNames, type_url: typeUrl, response_nonce: nonce };
    return withNested(request, sotw(), SOTW_OPTIONS, node, errorDetail, locators);
  } finally {
    end();
  }
}

export function readDeltaDiscoveryRequest(bytes: Buffer): DeltaDiscoveryRequest {
  begin(bytes);
  try {
    let typeUrl = '';
    let nonce = '';
    const subscribe: string[] = [];
    const unsubscribe: string[] = [];
    let versions: Record<string, string> | undefined;
    let node: protobuf.Message | undefined;
    let errorDetail: protobuf.Message | undefined;
    let locators: protobuf.Message[] | undefined;
    while (pos < len) {
      const t = uint32();
      switch (t >>> 3) {
        case 1:
          node = message(delta().node);
          break;
        case 2:
          typeUrl = string();
          break;
        case 3:
          names(subscribe, t === 0x1a ? 0x1a : -1);
          break;
        case 4:
          names(unsubscribe, t === 0x22 ? 0x22 : -1);
          break;
        case 5:
          versions ??= {};
          mapEntry(versions);
          break;
        case 6:
          nonce = string();
          break;
        case 7:
          errorDetail = message(delta().status);
          break;
        case 8:
        case 9:
          (locators ??= []).push(message(delta().locator));
          break;
        default:
          skipType(t & 7, 0);
      }
    }
    const request: DeltaDiscoveryRequest = {
      type_url: typeUrl,
      resource_names_subscribe: subscribe,
      resource_names_unsubscribe: unsubscribe,
      initial_resource_versions: versions ?? {},
      response_nonce: nonce,
    };
    return withNested(request, delta(), DELTA_OPTIONS, node, errorDetail, locators);
  } finally {
    end();
  }
}

/**
 * The request with its nested messages converted as protobufjs's toObject converts them, in its order (node,
 * error_detail, locators), which decides the error on a too deep one. Locators are converted for that check
 * only: no caller reads them.
 */
function withNested<R extends { node?: NodeInfo; error_detail?: { code?: number; message?: string } }>(
  request: R,
  types: RequestTypes,
  options: protobuf.IConversionOptions,
  node: protobuf.Message | undefined,
  errorDetail: protobuf.Message | undefined,
  locators: protobuf.Message[] | undefined,
): R {
  if (node) request.node = types.node.toObject(node, options, 1) as NodeInfo;
  if (errorDetail) request.error_detail = types.status.toObject(errorDetail, options, 1) as R['error_detail'];
  if (locators) for (const l of locators) types.locator.toObject(l, options, 1);
  return request;
}

/** One entry of initial_resource_versions (map<string, string>): key 1, value 2, either may be absent. */
function mapEntry(into: Record<string, string>): void {
  const outer = len;
  const entryEnd = uint32() + pos;
  if (entryEnd > len) throw RangeError('index out of range');
  len = entryEnd;
  let key = '';
  let value = '';
  while (pos < entryEnd) {
    const t = uint32();
    switch (t >>> 3) {
      case 1:
        key = string();
        break;
      case 2:
        value = string();
        break;
      default:
        skipType(t & 7, 0);
    }
  }
  if (pos !== entryEnd) throw RangeError('index out of range');
  len = outer;
  // An own '__proto__' entry, as protobufjs makes it, rather than the object's prototype.
  if (key === '__proto__') Object.defineProperty(into, key, { enumerable: true, configurable: true, writable: true });
  into[key] = value;
}
