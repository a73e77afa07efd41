// The ADS service's own request reader (xds-server/protos/request-decode.ts) gives what protobufjs's decode +
// toObject gave for the same bytes: the same object (fields, values, key order), or an error with the same
// message, over seeded random requests (node with metadata, error_detail, unknown fields of every wire type,
// fields repeated or with another wire type, non-ASCII and invalid UTF-8 strings, the delta map) and over
// their truncations and corruptions.
import { isAscii } from 'node:buffer';
import { expect } from 'chai';
import {
  decodeDeltaDiscoveryRequest,
  decodeDeltaDiscoveryRequestByProtobufjs,
  decodeDiscoveryRequest,
  decodeDiscoveryRequestByProtobufjs,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
} from '../../../xds-server/protos/codec.ts';
import { messageType } from '../../../xds-server/protos/load.ts';
import { seededRandom } from '../../support/seeded-random.ts';

class Bytes {
  private readonly parts: number[] = [];
  varint(n: number, extraBytes = 0): this {
    // extraBytes > 0 writes a non-minimal varint (continuation bytes of zero), which decoders must accept.
    let v = BigInt(n);
    do {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      this.parts.push(v > 0n || extraBytes > 0 ? b | 0x80 : b);
    } while (v > 0n);
    for (let i = 0; i < extraBytes; i++) this.parts.push(i === extraBytes - 1 ? 0 : 0x80);
    return this;
  }
  tag(field: number, wire: number, extraBytes = 0): this {
    return this.varint(field * 8 + wire, extraBytes);
  }
  raw(bytes: Uint8Array | number[]): this {
    for (const b of bytes) this.parts.push(b);
    return this;
  }
  delimited(field: number, bytes: Uint8Array | number[]): this {
    return this.tag(field, 2).varint(bytes.length).raw(bytes);
  }
  string(field: number, s: string | Buffer): this {
    return this.delimited(field, typeof s === 'string' ? Buffer.from(s) : s);
  }
  get length(): number {
    return this.parts.length;
  }
  done(): Buffer {
    return Buffer.from(this.parts);
  }
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

/**
 * Half the seeds write mostly ASCII (as an Envoy's requests after the first are: no byte above 127 when every
 * length is below 128), which our reader reads by another path.
 */
let asciiOnly = false;

function randomString(rnd: () => number): string | Buffer {
  const r = Math.floor(rnd() * 8);
  switch (asciiOnly && (r === 1 || r === 2 || r === 3) ? 7 : r) {
    case 0:
      return '';
    case 1:
      return 'é✓ 名前 🙂'.slice(0, 1 + Math.floor(rnd() * 8));
    case 2:
      // Invalid UTF-8: a lone continuation byte, a truncated sequence.
      return Buffer.from([0x61, 0x80, 0xe2, 0x82, 0x62]);
    case 3:
      return 'x'.repeat(100 + Math.floor(rnd() * 300)); // a length of two varint bytes
    default:
      return `backend-${Math.floor(rnd() * 100_000)}`;
  }
}

function nodeBytes(rnd: () => number): Uint8Array {
  const node = messageType('envoy.config.core.v3.Node');
  const fields: Record<string, unknown> = {};
  if (rnd() < 0.3) fields['scaletozero.dev/gateway'] = { stringValue: 'default/gw' };
  if (rnd() < 0.3) fields.n = { numberValue: rnd() * 10 };
  if (rnd() < 0.3) fields.nested = { structValue: { fields: { b: { boolValue: true }, l: { listValue: { values: [{ stringValue: asciiOnly ? 'e' : 'é' }, { nullValue: 0 }] } } } } };
  const value: Record<string, unknown> = { id: `envoy-${Math.floor(rnd() * 10)}`, cluster: rnd() < 0.5 ? 'gw' : '' };
  if (rnd() < 0.7) value.metadata = { fields };
  if (rnd() < 0.5) value.user_agent_name = 'envoy';
  if (rnd() < 0.3) value.user_agent_version = '1.40.0';
  if (rnd() < 0.3) value.user_agent_build_version = { version: { major_number: 1, minor_number: 40, patch: 0 } };
  if (rnd() < 0.3) value.client_features = ['envoy.lb.does_not_support_overprovisioning', 'xds.config.resource-in-sotw'];
  if (rnd() < 0.3) value.locality = { region: 'r', zone: 'z' };
  if (rnd() < 0.3) value.extensions = [{ name: 'envoy.filters.http.wasm', category: 'envoy.filters.http', type_urls: ['a', 'b'] }];
  return node.encode(node.fromObject(value)).finish();
}

function statusBytes(rnd: () => number): Uint8Array {
  const status = messageType('google.rpc.Status');
  const value: Record<string, unknown> = { code: Math.floor(rnd() * 17), message: String(randomString(rnd)) };
  if (rnd() < 0.3) value.details = [{ type_url: 'type.googleapis.com/x.Y', value: Buffer.from([1, 2, 3]) }];
  return status.encode(status.fromObject(value)).finish();
}

function unknownField(b: Bytes, rnd: () => number): void {
  const field = asciiOnly ? 10 : pick(rnd, [10, 15, 99, 1000, 536870911]);
  switch (Math.floor(rnd() * (asciiOnly ? 5 : 6))) {
    case 0:
      b.tag(field, 0).varint(Math.floor(rnd() * (asciiOnly ? 128 : 2 ** 32)));
      break;
    case 1:
      b.tag(field, 1).raw([1, 2, 3, 4, 5, 6, 7, 8]);
      break;
    case 2:
      // A packed repeated varint field we do not know, as its bytes.
      b.delimited(field, asciiOnly ? [1, 2, 3] : new Bytes().varint(1).varint(300).varint(2 ** 31).done());
      break;
    case 3:
      b.tag(field, 5).raw([1, 2, 3, 4]);
      break;
    case 4:
      // A group, with a nested group and a varint inside.
      b.tag(field, 3).tag(1, 0).varint(5).tag(2, 3).tag(3, 5).raw([0, 0, 0, 0]).tag(2, 4).tag(field, 4);
      break;
    default:
      // A 10-byte varint, whose last 5 bytes protobufjs skips.
      b.tag(field, 0).raw([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  }
}

/** A state-of-the-world request's bytes: its fields in random order, some repeated, some unknown ones between. */
function randomSotw(rnd: () => number): Buffer {
  const b = new Bytes();
  const count = Math.floor(rnd() * 12);
  for (let i = 0; i < count; i++) {
    const r = rnd();
    if (r < 0.1) b.string(1, randomString(rnd));
    else if (r < 0.2) b.delimited(2, nodeBytes(rnd));
    else if (r < 0.45) {
      const n = Math.floor(rnd() * 40);
      for (let j = 0; j < n; j++) b.string(3, randomString(rnd));
    } else if (r < 0.55) b.string(4, pick(rnd, ['type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment', '']));
    else if (r < 0.62) b.string(5, String(Math.floor(rnd() * 1000)));
    else if (r < 0.7) b.delimited(6, statusBytes(rnd));
    else if (r < 0.73) b.delimited(7, new Bytes().string(1, 'xdstp').string(2, 'id').done());
    else if (r < 0.76) b.tag(3, 2, 1).varint(3).raw([0x61, 0x62, 0x63]); // a name whose tag is a non-minimal varint
    else if (r < 0.79) b.tag(1, 0).varint(3).raw([0x61, 0x62, 0x63]); // version_info with a varint's wire type
    else unknownField(b, rnd);
  }
  return b.done();
}

function randomDelta(rnd: () => number): Buffer {
  const b = new Bytes();
  const count = Math.floor(rnd() * 12);
  for (let i = 0; i < count; i++) {
    const r = rnd();
    if (r < 0.1) b.delimited(1, nodeBytes(rnd));
    else if (r < 0.2) b.string(2, pick(rnd, ['type.googleapis.com/envoy.config.cluster.v3.Cluster', '']));
    else if (r < 0.35) {
      const n = Math.floor(rnd() * 30);
      for (let j = 0; j < n; j++) b.string(3, randomString(rnd));
    } else if (r < 0.45) {
      const n = Math.floor(rnd() * 10);
      for (let j = 0; j < n; j++) b.string(4, randomString(rnd));
    } else if (r < 0.6) {
      const entry = new Bytes();
      const shape = Math.floor(rnd() * 6);
      const key = pick(rnd, ['a', 'b', '1', '20', '__proto__', 'constructor', asciiOnly ? 'e' : 'é']);
      if (shape !== 0) entry.string(1, key);
      if (shape !== 1) entry.string(2, `v${Math.floor(rnd() * 5)}`);
      if (shape === 3) entry.string(2, 'later'); // a value given twice: the last one counts
      if (shape === 4) unknownField(entry, rnd);
      if (shape === 5) entry.string(1, key).string(1, 'k2'); // two keys: the last one counts
      b.delimited(5, entry.done());
    } else if (r < 0.67) b.string(6, String(Math.floor(rnd() * 1000)));
    else if (r < 0.74) b.delimited(7, statusBytes(rnd));
    else if (r < 0.78) b.delimited(pick(rnd, [8, 9]), new Bytes().string(1, 'xdstp').done());
    else unknownField(b, rnd);
  }
  return b.done();
}

type Outcome = { ok: true; value: unknown; keys: string } | { ok: false; error: string };

function outcome(decode: (b: Buffer) => unknown, bytes: Buffer): Outcome {
  try {
    const value = decode(bytes);
    // Key order too (deep.equal does not look at it): JSON with every nested object's keys in their order.
    return { ok: true, value, keys: JSON.stringify(value, (_k, v: unknown) => (Buffer.isBuffer(v) ? [...v] : v)) };
  } catch (err) {
    return { ok: false, error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

function expectSame(ours: (b: Buffer) => unknown, theirs: (b: Buffer) => unknown, bytes: Buffer, what: string): Outcome {
  const a = outcome(ours, bytes);
  const b = outcome(theirs, bytes);
  expect(a.ok, `${what}: ours ${a.ok ? 'read it' : `threw ${(a as { error: string }).error}`}, protobufjs ${b.ok ? 'read it' : `threw ${(b as { error: string }).error}`} (bytes ${bytes.toString('hex')})`).to.equal(b.ok);
  if (a.ok && b.ok) {
    expect(a.value, `${what} (bytes ${bytes.toString('hex')})`).to.deep.equal(b.value);
    expect(a.keys, what).to.equal(b.keys);
  } else if (!a.ok && !b.ok) expect(a.error, `${what} (bytes ${bytes.toString('hex')})`).to.equal(b.error);
  return a;
}

const variants = [
  { name: 'DiscoveryRequest', ours: decodeDiscoveryRequest, theirs: decodeDiscoveryRequestByProtobufjs, generate: randomSotw },
  { name: 'DeltaDiscoveryRequest', ours: decodeDeltaDiscoveryRequest, theirs: decodeDeltaDiscoveryRequestByProtobufjs, generate: randomDelta },
] as const;

describe('ADS request decoding (our reader against protobufjs)', () => {
  for (const v of variants) {
    describe(v.name, () => {
      it('reads 600 seeded random requests as protobufjs does', () => {
        let read = 0;
        let ascii = 0;
        for (let seed = 1; seed <= 600; seed++) {
          asciiOnly = seed % 2 === 0;
          const bytes = v.generate(seededRandom(seed));
          if (expectSame(v.ours, v.theirs, bytes, `seed ${seed}`).ok) read++;
          if (isAscii(bytes)) ascii++;
        }
        // Most random requests are valid (the generator writes well-formed fields): the comparison is not
        // only of errors; and both kinds of message (all ASCII or not) are compared.
        expect(read).to.be.greaterThan(500);
        expect(ascii).to.be.within(150, 450);
      });

      it('refuses or reads every truncation of random requests as protobufjs does', () => {
        let refused = 0;
        for (let seed = 1000; seed < 1030; seed++) {
          asciiOnly = seed % 2 === 0;
          const bytes = v.generate(seededRandom(seed));
          for (let cut = 0; cut < bytes.length; cut++) {
            if (!expectSame(v.ours, v.theirs, bytes.subarray(0, cut), `seed ${seed} cut at ${cut}`).ok) refused++;
          }
        }
        expect(refused).to.be.greaterThan(100);
      });

      it('refuses or reads corrupted and random bytes as protobufjs does', () => {
        let refused = 0;
        for (let seed = 2000; seed < 2400; seed++) {
          const rnd = seededRandom(seed);
          asciiOnly = seed % 2 === 0;
          const bytes = Buffer.from(v.generate(rnd));
          for (let k = 0; k < 1 + Math.floor(rnd() * 4) && bytes.length > 0; k++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
          if (!expectSame(v.ours, v.theirs, bytes, `seed ${seed} corrupted`).ok) refused++;
          const garbage = Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
          if (!expectSame(v.ours, v.theirs, garbage, `seed ${seed} garbage`).ok) refused++;
        }
        expect(refused).to.be.greaterThan(100);
      });
    });
  }

  it('stops at the same nesting depth as protobufjs (groups in an unknown field, Structs in the node)', () => {
    for (const v of variants) {
      const outcomes: boolean[] = [];
      for (const depth of [99, 100, 101, 102]) {
        const b = new Bytes().string(v.name === 'DiscoveryRequest' ? 4 : 2, 't');
        for (let i = 0; i < depth; i++) b.tag(20, 3);
        for (let i = 0; i < depth; i++) b.tag(20, 4);
        outcomes.push(expectSame(v.ours, v.theirs, b.done(), `${v.name}: groups ${depth} deep`).ok);
        // Written by hand: protobufjs's fromObject has a depth limit of its own. A Value holding a Struct
        // (struct_value = 5) holding one entry (fields = 1: key 1, value 2), depth / 2 times.
        let value = new Bytes().string(3, 'leaf').done(); // string_value = 3
        for (let i = 0; i < depth / 2; i++) {
          const struct = new Bytes().delimited(1, new Bytes().string(1, 'k').delimited(2, value).done()).done();
          value = new Bytes().delimited(5, struct).done();
        }
        const metadata = new Bytes().delimited(1, new Bytes().string(1, 'k').delimited(2, value).done()).done();
        const nodeBytes = new Bytes().string(1, 'n').delimited(3, metadata).done(); // id = 1, metadata = 3
        outcomes.push(expectSame(v.ours, v.theirs, new Bytes().delimited(v.name === 'DiscoveryRequest' ? 2 : 1, nodeBytes).done(), `${v.name}: Structs ${depth} deep`).ok);
      }
      // Both limits are reached within these depths: the comparison covers both sides of each.
      expect(outcomes).to.include(true).and.to.include(false);
    }
  });

  it('reads what the test clients encode (5,000 names, a node with metadata, a NACK)', () => {
    const names = Array.from({ length: 5000 }, (_, i) => `h${i}`);
    const node = { id: 'envoy-1', cluster: 'gw', user_agent_name: 'envoy', metadata: { fields: { 'scaletozero.dev/gateway': { stringValue: 'ns/gw' } } } };
    const sotw = encodeDiscoveryRequest({ version_info: 'v1', node, resource_names: names, type_url: 't', response_nonce: '3', error_detail: { code: 3, message: 'bad é' } });
    const read = expectSame(decodeDiscoveryRequest, decodeDiscoveryRequestByProtobufjs, sotw, 'sotw');
    expect(read.ok && (read.value as { resource_names: string[] }).resource_names).to.have.length(5000);
    const delta = encodeDeltaDiscoveryRequest({ node, type_url: 't', resource_names_subscribe: names, resource_names_unsubscribe: ['a'], initial_resource_versions: { h1: 'v', __proto__: 'x' } as Record<string, string> });
    expectSame(decodeDeltaDiscoveryRequest, decodeDeltaDiscoveryRequestByProtobufjs, delta, 'delta');
  });
});
