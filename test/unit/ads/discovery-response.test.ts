// The hand-written DiscoveryResponse (codec.ts) is byte for byte what protobufjs writes for the same message.
import { expect } from 'chai';
import { TYPE_URLS } from '../../../snapshots/type-urls.ts';
import { decodeDiscoveryResponse, encodeDiscoveryResponse, type EncodedResource } from '../../../xds-server/protos/codec.ts';
import { messageType } from '../../../xds-server/protos/load.ts';

function byProtobufjs(typeUrl: string, version: string, nonce: string, resources: EncodedResource[]): Buffer {
  const type = messageType('envoy.service.discovery.v3.DiscoveryResponse');
  return Buffer.from(type.encode(type.fromObject({ version_info: version, type_url: typeUrl, nonce, resources: resources.map((r) => ({ type_url: typeUrl, value: r.bytes })) })).finish());
}

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) % 256);

describe('DiscoveryResponse encoding', () => {
  const cases: [string, string, string, EncodedResource[]][] = [
    ['no resources', 'v1', '1', []],
    ['empty version and nonce', '', '', [{ name: 'a', bytes: bytes(3, 1) }]],
    ['an empty resource', 'v', '2', [{ name: 'a', bytes: new Uint8Array(0) }]],
    ['lengths of one, two and three varint bytes', '1796069679436.9c8fd29b29da5f41', '99999', [bytes(1, 2), bytes(127, 3), bytes(128, 4), bytes(16_383, 5), bytes(16_384, 6), bytes(300_000, 7)].map((b, i) => ({ name: `r${i}`, bytes: b }))],
    ['a non-ASCII version', 'vé✓', '7', [{ name: 'a', bytes: bytes(10, 8) }]],
  ];
  for (const [what, version, nonce, resources] of cases) {
    it(`writes the same bytes as protobufjs: ${what}`, () => {
      const ours = encodeDiscoveryResponse('cluster', version, nonce, resources);
      expect(ours.equals(byProtobufjs(TYPE_URLS.cluster, version, nonce, resources))).to.equal(true);
      const decoded = decodeDiscoveryResponse(ours);
      expect(decoded).to.include({ version_info: version, type_url: TYPE_URLS.cluster, nonce });
      expect(decoded.resources.map((r) => Buffer.from(r.value).equals(Buffer.from(resources[decoded.resources.indexOf(r)]!.bytes)))).to.not.include(false);
      expect(decoded.resources).to.have.length(resources.length);
    });
  }
});
