// snapshots/proto-writer.ts against protobufjs's fromObject + encode, byte for byte: the benchmark's configs
// (every resource), shapes only some deployments produce (wake calls over TLS, the proxyless snapshot), then
// each wire feature on a message type of the test's own (every scalar type at its edges, packed and unpacked
// repeated fields, maps, Any with and without '@type', Struct/Value, wrappers, lengths of one, two and three
// bytes), and the shapes the writer leaves to protobufjs, which wire.ts then encodes with protobufjs.
// The golden tests run the same comparison over every resource of every golden case (test/support/same-bytes.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import protobuf from 'protobufjs';
import { xdsGatewayConfig, CHANGE_PORTS } from '../../../bench/lib/xds-configs.ts';
import { buildProxylessSnapshot } from '../../../snapshots/api-listener.ts';
import { buildSnapshot } from '../../../snapshots/build.ts';
import { CONTROL_PLANE_CLUSTER } from '../../../snapshots/names.ts';
import { isUnsupported, writeMessage } from '../../../snapshots/proto-writer.ts';
import type { Resource } from '../../../snapshots/resource.ts';
import { PUSH_ORDER } from '../../../snapshots/type-urls.ts';
import { encodeMessage, encodeResource, encodeWithProtobufjs, protobufjsFallbacks, resourceType } from '../../../snapshots/wire.ts';
import { validateGatewayConfig } from '../../../sources/file/parse.ts';
import { fileConfigToModel } from '../../../sources/file/to-model.ts';
import { expectWriterMatchesProtobufjs } from '../../support/same-bytes.ts';
import { seededRandom } from '../../support/seeded-random.ts';

function snapshotOf(config: unknown, extra: { held?: string[]; wake?: Parameters<typeof buildSnapshot>[0]['wake'] } = {}) {
  const valid = validateGatewayConfig(config);
  if (!valid.ok) throw new Error(JSON.stringify(valid.errors));
  const snapshot = buildSnapshot({ model: fileConfigToModel(valid.value), held: new Set(extra.held ?? []), generation: 7, filterWasmPath: '/f.wasm', ...(extra.wake ? { wake: extra.wake } : {}) });
  if (!snapshot.ok) throw new Error(JSON.stringify(snapshot.errors));
  return snapshot.value;
}

describe('protobuf writer (snapshots/proto-writer.ts)', () => {
  describe('gives protobufjs\'s bytes for every resource', () => {
    for (const hosts of [1_000, 5_000]) {
      it(`of the xDS benchmark's ${hosts}-host config`, function () {
        this.timeout(60_000);
        const snapshot = snapshotOf(xdsGatewayConfig(hosts));
        let count = 0;
        for (const kind of PUSH_ORDER) {
          for (const r of snapshot.resources[kind].values()) {
            expectWriterMatchesProtobufjs(kind, r);
            count++;
          }
        }
        // One cluster and one endpoint assignment per host, a listener, its routes, the filter config.
        expect(count).to.equal(2 * hosts + 3);
      });
    }

    it('of its one-host change and of held hosts of every protocol, HTTP/2 options and the filter\'s entries', () => {
      const changed = xdsGatewayConfig(1_000, CHANGE_PORTS[1]);
      const hosts = (changed.hosts as Record<string, unknown>[]).map((h, i) => (i < 3 ? { ...h, protocol: (['http1', 'http2', 'grpc'] as const)[i] } : h));
      const snapshot = snapshotOf({ ...changed, hosts }, { held: ['h0', 'h1', 'h2', 'h10'] });
      for (const kind of PUSH_ORDER) for (const r of snapshot.resources[kind].values()) expectWriterMatchesProtobufjs(kind, r);
    });

    it('with wake calls over mutual TLS (the control plane\'s cluster and its transport socket)', () => {
      const snapshot = snapshotOf(xdsGatewayConfig(3), {
        held: ['h1'],
        wake: { address: 'control-plane.internal', port: 9902, leaseMs: 1000, timeoutMs: 2000, tls: { certificateSds: '/etc/stz/cert.json', caSds: '/etc/stz/ca.json' } },
      });
      expect(snapshot.resources.cluster.get(CONTROL_PLANE_CLUSTER)).to.have.property('transport_socket');
      for (const kind of PUSH_ORDER) for (const r of snapshot.resources[kind].values()) expectWriterMatchesProtobufjs(kind, r);
    });

    it('of the proxyless gRPC snapshot (API listeners)', () => {
      const valid = validateGatewayConfig({
        listener: { port: 10000 },
        hosts: [{ name: 'rpc', domains: ['rpc.test'], protocol: 'grpc', endpoints: [{ address: '127.0.0.1', port: 9000 }] }],
      });
      if (!valid.ok) throw new Error(JSON.stringify(valid.errors));
      const snapshot = buildProxylessSnapshot({ model: fileConfigToModel(valid.value), held: new Set(), generation: 1, filterWasmPath: '/f.wasm' });
      if (!snapshot.ok) throw new Error(JSON.stringify(snapshot.errors));
      expect(snapshot.value.resources.listener.size).to.equal(1);
      for (const kind of PUSH_ORDER) for (const r of snapshot.value.resources[kind].values()) expectWriterMatchesProtobufjs(kind, r);
    });
  });

  describe('each wire feature, on a message type of its own', () => {
    let dir: string;
    let Sample: protobuf.Type;
    before(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'proto-writer-'));
      const file = path.join(dir, 'sample.proto');
      writeFileSync(file, SAMPLE_PROTO);
      const root = new protobuf.Root();
      root.loadSync(file, { keepCase: true });
      root.resolveAll();
      Sample = root.lookupType('test.writer.Sample');
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const same = (value: Record<string, unknown>): Buffer => {
      const expected = Buffer.from(Sample.encode(Sample.fromObject(value)).finish());
      const written = writeMessage(Sample, value);
      if (isUnsupported(written)) expect.fail(`left to protobufjs: ${written.unsupported}`);
      if (!written.equals(expected)) {
        const at = written.findIndex((b, i) => b !== expected[i]);
        expect.fail(`${written.length} bytes written, protobufjs ${expected.length}; first difference at ${at}: ${written.subarray(at, at + 16).toString('hex')} vs ${expected.subarray(at, at + 16).toString('hex')}`);
      }
      return written;
    };
    const leftToProtobufjs = (value: Record<string, unknown>): string => {
      const written = writeMessage(Sample, value);
      if (!isUnsupported(written)) expect.fail(`written (${written.toString('hex')}), not left to protobufjs`);
      return written.unsupported;
    };

    it('writes nothing for an empty object and skips undefined and null fields', () => {
      expect(same({}).length).to.equal(0);
      expect(same({ s: undefined, i32: null, child: null, list: null, tags: undefined }).length).to.equal(0);
    });

    it('writes a field that is set to its default (proto3 JSON as protobufjs reads it)', () => {
      expect(same({ s: '', i32: 0, b: false, d: 0, color: 'COLOR_UNSET' }).length).to.be.greaterThan(0);
      same({ child: {} });
    });

    it('32-bit integers at their edges: int32 (negative: ten bytes), uint32, sint32, fixed32, sfixed32', () => {
      for (const n of [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 31 - 1, -1, -2, -(2 ** 31)]) same({ i32: n, s32: n, sf32: n });
      for (const n of [0, 1, 127, 128, 2 ** 28, 2 ** 31, 2 ** 32 - 1]) same({ u32: n, f32: n });
      expect(same({ i32: -1 }).length).to.equal(11);
    });

    it('64-bit integers as numbers and as decimal strings: int64, uint64, sint64, fixed64, sfixed64', () => {
      for (const n of [0, 1, 127, 128, 2 ** 32, 2 ** 35 + 3, Number.MAX_SAFE_INTEGER, -1, -(2 ** 40), Number.MIN_SAFE_INTEGER]) {
        same({ i64: n, s64: n, sf64: n });
        same({ i64: String(n), s64: String(n), sf64: String(n) });
      }
      for (const n of [0, 1, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]) same({ u64: n, f64: n });
      same({ i64: '9223372036854775807', s64: '-9223372036854775808', sf64: '-9223372036854775808', u64: '18446744073709551615', f64: '18446744073709551615' });
      same({ i64: '-9223372036854775808', s64: '9223372036854775807', sf64: '9223372036854775807' });
    });

    it('floating point and booleans', () => {
      for (const n of [0, -0, 1.5, -2.25, 1e300, Number.MIN_VALUE, Infinity, -Infinity, NaN, 0.1]) same({ d: n, f: n });
      same({ b: true });
      same({ b: false });
    });

    it('strings: ASCII, two-, three- and four-byte UTF-8, lengths of one, two and three bytes', () => {
      for (const s of ['a', 'é', 'ünïcödé hôst', '日本語のホスト名', 'emoji 🚀 and 𝄞', 'x'.repeat(63), 'x'.repeat(64), 'x'.repeat(127), 'x'.repeat(128), 'é'.repeat(70), 'y'.repeat(16_384), '🚀'.repeat(5_000)]) {
        same({ s });
        same({ names: [s, s] });
      }
    });

    it('bytes, and a nested message whose length needs one, two and three bytes', () => {
      same({ raw: new Uint8Array([0, 1, 2, 255]) });
      same({ raw: Buffer.alloc(0) });
      for (const n of [0, 100, 126, 127, 200, 16_380, 20_000, 3_000_000]) same({ child: { s: 'z'.repeat(n) } });
      // Several levels of nesting, each patching its length after the one inside it grew.
      same({ child: { child: { child: { s: 'q'.repeat(20_000), i32: -5 }, names: ['a'.repeat(300)] }, i32: 1 } });
    });

    it('enums by name and by number, negative values, and repeated enums', () => {
      same({ color: 'RED' });
      same({ color: 2 });
      same({ color: 'NEGATIVE' });
      same({ colors: ['RED', 'GREEN', 'COLOR_UNSET', 'NEGATIVE'] });
    });

    it('repeated fields: packed numbers (empty too), unpacked numbers, strings and messages', () => {
      same({ packed_ints: [1, 2, 300, -1, 0] });
      same({ packed_ints: [] });
      same({ packed_doubles: [1.5, -0, 1e10] });
      same({ packed_bools: [true, false, true] });
      same({ packed_sint64: [-1, '12345678901234', 0] });
      same({ unpacked_ints: [1, 2, 3] });
      same({ names: ['a', '', 'b'] });
      same({ children: [{ s: 'x' }, {}, { i32: 5, child: { b: true } }] });
      same({ children: [] });
    });

    it('maps: string to scalar, to enum, to message and to Any (in key order, integer-like keys first)', () => {
      same({ labels: { b: 'two', a: 'one', '10': 'ten', '2': 'two', '': 'empty' } });
      same({ labels: {} });
      same({ counts: { x: 1, y: -1, z: 0 } });
      same({ color_by_name: { r: 'RED', g: 2 } });
      same({ children_by_name: { first: { s: 'one' }, empty: {} } });
      same({ any_by_name: { wrapped: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'v' } } });
    });

    it('Any: packed from "@type" (with and without a type.googleapis.com/ prefix, a leading dot), nested, and plain', () => {
      same({ any: { '@type': 'type.googleapis.com/test.writer.Sample', s: 'inner', i32: 3 } });
      same({ any: { '@type': 'test.writer.Sample', s: 'no prefix' } });
      same({ any: { '@type': '.test.writer.Sample', s: 'leading dot' } });
      same({ any: { '@type': 'example.com/x/test.writer.Sample' } });
      same({ any: { '@type': 'type.googleapis.com/test.writer.Sample', any: { '@type': 'type.googleapis.com/google.protobuf.UInt32Value', value: 7 } } });
      same({ anys: [{ '@type': 'type.googleapis.com/google.protobuf.BoolValue', value: false }, { '@type': 'type.googleapis.com/google.protobuf.Empty' }] });
      // No '@type': the Any's own fields, as they are.
      same({ any: { type_url: 'type.googleapis.com/x.Y', value: new Uint8Array([8, 1]) } });
    });

    it('Any as the message itself, and the same "@type" looked up in the root of each Any type', () => {
      const Any = Sample.root.lookupType('google.protobuf.Any');
      const packed = { '@type': 'type.googleapis.com/test.writer.Sample', s: 'top', i32: -7 };
      const written = writeMessage(Any, packed);
      if (isUnsupported(written)) expect.fail(written.unsupported);
      expect(written.equals(Buffer.from(Any.encode(Any.fromObject(packed)).finish()))).to.equal(true);
      // Envoy's root has no test.writer.Sample: its Any leaves that '@type' to protobufjs, this root's writes it.
      const envoyAny = resourceType('cluster').root.lookupType('google.protobuf.Any');
      expect(isUnsupported(writeMessage(envoyAny, packed))).to.equal(true);
      expect(isUnsupported(writeMessage(Any, packed))).to.equal(false);
    });

    it('well-known types: Struct and Value (camelCase fields, as protobufjs defines them), Duration, wrappers', () => {
      same({
        meta: {
          fields: {
            name: { stringValue: 'x' },
            n: { numberValue: 1.25 },
            ok: { boolValue: true },
            none: { nullValue: 'NULL_VALUE' },
            nested: { structValue: { fields: { a: { stringValue: 'b' } } } },
            list: { listValue: { values: [{ numberValue: 1 }, { stringValue: 'two' }, { listValue: { values: [] } }] } },
          },
        },
      });
      same({ timeout: { seconds: 15 }, short: { seconds: 0, nanos: 500_000_000 }, limit: { value: 0 }, big: { value: '123456789012' }, flag: { value: false }, label: { value: 'é' } });
      same({ timeout: { seconds: -3, nanos: -1 } });
    });

    it('oneof members as protobufjs writes them (each one set is written)', () => {
      same({ as_text: 'x' });
      same({ as_number: 0 });
      same({ as_text: 'x', as_number: '7' });
    });

    it('fields in number order, whatever the order of the object\'s keys or of the declarations', () => {
      const written = same({ as_text: 'last', child: { s: 'middle' }, s: 'first', nothing: {} });
      expect(written[0]).to.equal((1 << 3) | 2);
    });

    it('an object that is not a plain one (a class instance with a getter) field by field, as protobufjs reads it', () => {
      // A plain object of a type with many fields is written from its own keys; any other is read field by
      // field, as protobufjs's fromObject reads it: a getter on the class (not enumerable) included.
      class Shaped {
        u32 = 7;
        child = { s: 'own' };
        get s(): string {
          return 'from a getter';
        }
      }
      const written = same(new Shaped() as unknown as Record<string, unknown>);
      expect(written.includes(Buffer.from('from a getter'))).to.equal(true);
      // Inherited enumerable values of a plain object's prototype chain are read too.
      same(Object.assign(Object.create({ s: 'inherited', color: 'RED' }) as Record<string, unknown>, { u32: 7 }));
    });

    it('keys out of number order at every level of nesting, repeated messages too', () => {
      same({ children: [{ i32: 2, s: 'b', child: { u32: 3, s: 'c' } }, { b: true, s: 'd' }], child: { child: { i32: 1, s: 'a' }, s: 'x' }, i32: 7, s: 'first' });
    });

    it('objects that are not plain: inherited fields (an accessor of a class too) as protobufjs reads them; a null-prototype object by its keys', () => {
      class WithAccessor {
        i32 = 5;
        get s(): string {
          return 'from the prototype';
        }
      }
      const written = same(new WithAccessor() as unknown as Record<string, unknown>);
      expect(written.includes(Buffer.from('from the prototype'))).to.equal(true);
      same(Object.assign(Object.create({ s: 'inherited', u32: 9 }) as Record<string, unknown>, { i32: 1 }));
      same(Object.assign(Object.create(null) as Record<string, unknown>, { i32: 1, s: 'no prototype' }));
    });

    it('a type with a field named like a property of every object reads that field as protobufjs does', () => {
      const root = protobuf.parse('syntax = "proto3"; package odd; message Odd { string valueOf = 1; string s = 2; }', { keepCase: true }).root;
      root.resolveAll();
      const Odd = root.lookupType('odd.Odd');
      // protobufjs reads Object.prototype.valueOf for the absent field: whatever it makes of it, the same bytes.
      expect(Buffer.from(encodeMessage(Odd, { s: 'x' }))).to.deep.equal(Buffer.from(Odd.encode(Odd.fromObject({ s: 'x' })).finish()));
    });

    it('a frozen map shared by many messages: protobufjs\'s bytes each time, in any field and at any depth; an unfrozen one read afresh', () => {
      const shared = Object.freeze({ a: Object.freeze({ s: 'x', labels: Object.freeze({ k: 'v' }) }), b: Object.freeze({ i32: 3 }) });
      for (let i = 0; i < 3; i++) same({ children_by_name: shared, child: { children_by_name: shared } });
      same({ children: [{ children_by_name: shared }, { s: 'between' }, { children_by_name: shared }] });
      // The same object as the value of another map field: written for that field, not copied from the other.
      const both = Object.freeze({ k: 'RED' });
      same({ labels: both, color_by_name: both, child: { color_by_name: both, labels: both } });
      // Frozen, but not what is in it: read afresh too.
      const inner: Record<string, unknown> = { s: 'before' };
      const shallow = Object.freeze({ a: inner });
      for (let i = 0; i < 3; i++) same({ children_by_name: shallow });
      inner.s = 'after';
      expect(same({ children_by_name: shallow }).includes(Buffer.from('after'))).to.equal(true);
      const open: Record<string, Record<string, unknown>> = { a: { s: 'first' } };
      same({ children_by_name: open });
      open.a = { s: 'changed' };
      open.c = { i32: 1 };
      expect(same({ children_by_name: open }).includes(Buffer.from('changed'))).to.equal(true);
    });

    it('a frozen map written before is not copied where its nesting goes past protobufjs\'s depth limit', () => {
      let nested: Record<string, unknown> = {};
      for (let i = 0; i < 20; i++) nested = { child: nested };
      const shared = Object.freeze({ deep: deepFreeze(nested) });
      same({ children_by_name: shared });
      let deep: Record<string, unknown> = { children_by_name: shared };
      for (let i = 0; i < 70; i++) deep = { child: deep };
      same(deep);
      for (let i = 0; i < 30; i++) deep = { child: deep };
      expect(leftToProtobufjs(deep)).to.match(/deeper/);
    });

    it('leaves to protobufjs what protobufjs would coerce, and says what', () => {
      expect(leftToProtobufjs({ color: 'PURPLE' })).to.match(/color.*not a value of its enum/);
      expect(leftToProtobufjs({ colors: ['RED', 'PURPLE'] })).to.match(/colors/);
      expect(leftToProtobufjs({ i32: '5' })).to.match(/i32: not an int32/);
      expect(leftToProtobufjs({ i32: 1.5 })).to.match(/i32/);
      expect(leftToProtobufjs({ i32: 2 ** 31 })).to.match(/i32/);
      expect(leftToProtobufjs({ u32: -1 })).to.match(/u32/);
      expect(leftToProtobufjs({ u64: -1 })).to.match(/u64/);
      expect(leftToProtobufjs({ i64: 2 ** 60 })).to.match(/i64/);
      expect(leftToProtobufjs({ i64: '9223372036854775808' })).to.match(/i64: out of range/);
      expect(leftToProtobufjs({ i64: '1e3' })).to.match(/i64/);
      expect(leftToProtobufjs({ s: 5 })).to.match(/s: not a string/);
      expect(leftToProtobufjs({ b: 'true' })).to.match(/b: not a boolean/);
      expect(leftToProtobufjs({ d: '1.5' })).to.match(/d: not a number/);
      expect(leftToProtobufjs({ raw: 'AAEC' })).to.match(/raw/);
      expect(leftToProtobufjs({ names: 'a' })).to.match(/names: not an array/);
      expect(leftToProtobufjs({ child: [] })).to.match(/child: not an object/);
      expect(leftToProtobufjs({ child: 'x' })).to.match(/child: not an object/);
      expect(leftToProtobufjs({ labels: { a: null } })).to.match(/labels/);
      expect(leftToProtobufjs({ s: 'lone \ud800 surrogate' })).to.match(/surrogate/);
      expect(leftToProtobufjs({ any: { '@type': 'type.googleapis.com/test.writer.Nowhere' } })).to.match(/names no message type/);
      expect(leftToProtobufjs({ any: { '@type': 'type.googleapis.com/google.protobuf.Any' } })).to.match(/Any itself/);
      let deep: Record<string, unknown> = {};
      for (let i = 0; i < 150; i++) deep = { child: deep };
      expect(leftToProtobufjs(deep)).to.match(/deeper/);
    });

    it('a lone surrogate in a string longer than 40 characters is written as Buffer writes it, as protobufjs does', () => {
      same({ s: `${'x'.repeat(50)}\ud800` });
    });

    it('random messages (seeded): whatever it writes is protobufjs\'s bytes', () => {
      const random = seededRandom(12);
      let written = 0;
      for (let i = 0; i < 2_000; i++) {
        const value = randomSample(random, 3);
        const result = writeMessage(Sample, value);
        if (isUnsupported(result)) continue;
        written++;
        const expected = Buffer.from(Sample.encode(Sample.fromObject(value)).finish());
        if (!result.equals(expected)) expect.fail(`differs from protobufjs for ${JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('hex')}` : v))}`);
      }
      // Most of them are written by the writer: the comparison is not empty.
      expect(written).to.be.greaterThan(1_500);
    });
  });

  describe('encodeResource (snapshots/wire.ts)', () => {
    it('encodes with the writer, and a shape the writer leaves alone with protobufjs, to the same bytes', () => {
      const before = protobufjsFallbacks();
      const plain: Resource = { name: 'c1', type: 'EDS', connect_timeout: { seconds: 2 } };
      expect(Buffer.from(encodeResource('cluster', plain)).equals(Buffer.from(encodeWithProtobufjs(resourceType('cluster'), plain)))).to.equal(true);
      expect(protobufjsFallbacks()).to.equal(before);
      // A UInt32Value spelled as a string: protobufjs coerces it to a number; the writer leaves it to protobufjs.
      const coerced: Resource = { name: 'c2', type: 'EDS', per_connection_buffer_limit_bytes: { value: '1024' } };
      const bytes = Buffer.from(encodeResource('cluster', coerced));
      expect(protobufjsFallbacks()).to.equal(before + 1);
      expect(bytes.equals(Buffer.from(encodeWithProtobufjs(resourceType('cluster'), coerced)))).to.equal(true);
    });

    it('throws what protobufjs throws for a shape neither can encode', () => {
      const broken: Resource = { name: 'c3', connect_timeout: 5 };
      expect(() => encodeResource('cluster', broken)).to.throw(/object expected/);
    });
  });
});

function randomSample(random: () => number, depth: number): Record<string, unknown> {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (max: number): number => Math.floor(random() * max);
  const str = (): string => Array.from({ length: pick([0, 1, 5, 39, 40, 63, 64, 130]) }, () => pick(['a', 'Z', '/', ' ', 'é', '中', '🚀', '\u0000', '\u007f', '\u0080'])).join('');
  const i32 = (): number => pick([0, 1, -1, 127, 128, 2 ** 31 - 1, -(2 ** 31), int(1_000_000) - 500_000]);
  const u32 = (): number => pick([0, 1, 127, 128, 2 ** 32 - 1, int(2 ** 32)]);
  const i64 = (): number | string => pick([0, 1, -1, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER, -(2 ** 45), '-9223372036854775808', '9223372036854775807', String(int(1e9))]);
  const u64 = (): number | string => pick([0, 1, 2 ** 50, Number.MAX_SAFE_INTEGER, '18446744073709551615', String(int(1e12))]);
  const num = (): number => pick([0, -0, 1.5, -1e-300, 1e300, NaN, Infinity, random() * 1000 - 500]);
  const color = (): string | number => pick(['COLOR_UNSET', 'RED', 'GREEN', 'NEGATIVE', 0, 1, 2, -3, 7]);
  const child = (): Record<string, unknown> => (depth > 0 ? randomSample(random, depth - 1) : {});
  const any = (): Record<string, unknown> => pick([
    () => ({ '@type': 'type.googleapis.com/test.writer.Sample', ...child() }),
    () => ({ '@type': 'type.googleapis.com/google.protobuf.UInt32Value', value: u32() }),
    () => ({ '@type': 'type.googleapis.com/google.protobuf.StringValue', value: str() }),
    () => ({ type_url: str(), value: new Uint8Array(int(4)).fill(int(256)) }),
  ])();
  const generators: Record<string, () => unknown> = {
    s: str, i32, u32, s32: i32, f32: u32, sf32: i32, i64, u64, s64: i64, f64: u64, sf64: i64,
    b: () => random() < 0.5, d: num, f: num, raw: () => new Uint8Array(int(300)).map(() => int(256)), color,
    colors: () => Array.from({ length: int(4) }, color), child, children: () => Array.from({ length: int(3) }, child),
    names: () => Array.from({ length: int(4) }, str), packed_ints: () => Array.from({ length: int(5) }, i32),
    unpacked_ints: () => Array.from({ length: int(5) }, i32), packed_doubles: () => Array.from({ length: int(5) }, num),
    packed_bools: () => Array.from({ length: int(5) }, () => random() < 0.5), packed_sint64: () => Array.from({ length: int(5) }, i64),
    labels: () => Object.fromEntries(Array.from({ length: int(4) }, () => [str(), str()])),
    counts: () => Object.fromEntries(Array.from({ length: int(4) }, () => [str(), i32()])),
    color_by_name: () => Object.fromEntries(Array.from({ length: int(3) }, () => [str(), color()])),
    children_by_name: () => Object.fromEntries(Array.from({ length: int(3) }, () => [str(), child()])),
    any_by_name: () => Object.fromEntries(Array.from({ length: int(3) }, () => [str(), any()])),
    any, anys: () => Array.from({ length: int(3) }, any),
    meta: () => ({ fields: { k: pick([{ stringValue: str() }, { numberValue: num() }, { boolValue: true }, { nullValue: 'NULL_VALUE' }, { listValue: { values: [{ stringValue: str() }] } }]) } }),
    timeout: () => ({ seconds: i64(), nanos: i32() }), limit: () => ({ value: u32() }), big: () => ({ value: u64() }),
    flag: () => ({ value: random() < 0.5 }), label: () => ({ value: str() }), nothing: () => ({}),
    as_text: str, as_number: i64,
  };
  const value: Record<string, unknown> = {};
  for (const [name, generate] of Object.entries(generators)) if (random() < 0.2) value[name] = generate();
  return value;
}

const SAMPLE_PROTO = `
syntax = "proto3";
package test.writer;
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/wrappers.proto";

enum Color {
  COLOR_UNSET = 0;
  RED = 1;
  GREEN = 2;
  NEGATIVE = -3;
}

message Sample {
  // Declared out of number order: protobufjs writes by number.
  oneof choice {
    string as_text = 2000;
    int64 as_number = 2001;
  }
  Sample child = 18;
  string s = 1;
  int32 i32 = 2;
  uint32 u32 = 3;
  sint32 s32 = 4;
  fixed32 f32 = 5;
  sfixed32 sf32 = 6;
  int64 i64 = 7;
  uint64 u64 = 8;
  sint64 s64 = 9;
  fixed64 f64 = 10;
  sfixed64 sf64 = 11;
  bool b = 12;
  double d = 13;
  float f = 14;
  bytes raw = 15;
  Color color = 16;
  repeated Color colors = 17;
  repeated Sample children = 19;
  repeated string names = 20;
  repeated int32 packed_ints = 21;
  repeated int32 unpacked_ints = 22 [packed = false];
  repeated double packed_doubles = 23;
  repeated bool packed_bools = 24;
  repeated sint64 packed_sint64 = 25;
  map<string, string> labels = 26;
  map<string, sint32> counts = 27;
  map<string, Color> color_by_name = 28;
  map<string, Sample> children_by_name = 29;
  map<string, google.protobuf.Any> any_by_name = 30;
  google.protobuf.Any any = 31;
  repeated google.protobuf.Any anys = 32;
  google.protobuf.Struct meta = 33;
  google.protobuf.Duration timeout = 34;
  google.protobuf.Duration short = 35;
  google.protobuf.UInt32Value limit = 36;
  google.protobuf.UInt64Value big = 37;
  google.protobuf.BoolValue flag = 38;
  google.protobuf.StringValue label = 39;
  google.protobuf.Empty nothing = 40;
}
`;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
